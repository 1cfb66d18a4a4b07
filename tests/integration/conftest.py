"""Integration tests: marked, and given the session's local stack (the `stack` fixture lives in
tests/conftest.py, so tests/k8s shares the same one)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)
