"""Shared test fixtures: the real local stack (Kafka + Flink), started once per session for
every folder that asks for it (tests/integration, tests/k8s)."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from deploy.errors import EddylineError
from deploy.local.stack import control
from tests.integration.stacks import RunningStack, free_settings


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in this session and in every command it starts, however it was launched. A
    shell starts background jobs (`make test &`) with SIGINT ignored; children inherit that, and
    Python then never raises KeyboardInterrupt: a test stopping a command with SIGINT (as a user's
    Ctrl-C) would wait on one that cannot hear it. A handler, unlike SIG_IGN, is reset by exec."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-cluster tests (tests/cluster) run last: they need the most memory and time, and
    their last test stops the cluster."""
    items.sort(key=lambda item: "tests/cluster" in str(item.path))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One stack for the session. If it cannot start, every test using it fails saying why."""
    settings = free_settings(tmp_path_factory.mktemp("stack"))
    try:
        result = control.up(settings)
    except EddylineError as e:
        pytest.fail(f"the local stack did not start: {e}", pytrace=False)
    try:
        yield RunningStack(settings, result.state)
    finally:
        control.down(settings.state_dir)
