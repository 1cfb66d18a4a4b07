"""The real Kubernetes control plane for tests/k8s, started once per session (see envtest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.k8s.envtest import EnvtestError, Kube, start


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/k8s" in str(item.path):
            item.add_marker(pytest.mark.k8s)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kube]:
    """etcd + kube-apiserver + controller-manager + scheduler + kwok (two fake nodes).

    If it cannot start, every test using it fails saying which component and where its log is.
    """
    try:
        cluster = start(tmp_path_factory.mktemp("kube"))
    except EnvtestError as e:
        failure = str(e)
    else:
        failure = ""
    if failure:  # outside the except block: no chained traceback in the report
        pytest.fail(f"the Kubernetes test control plane did not start: {failure}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()
