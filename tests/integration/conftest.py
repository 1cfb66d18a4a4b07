"""Integration tests: marked, and given the session's local stack (the `stack` fixture lives in
tests/conftest.py, so tests/k8s shares the same one) and, on request, a secured one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deploy import kafka_security
from deploy.errors import EddylineError
from deploy.local.stack import control, state
from tests.integration.stacks import RunningStack, free_settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def secured_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A second local stack whose broker wants SASL_SSL (`--kafka-security sasl-ssl`): TLS with
    the stack's own CA, SCRAM-SHA-512 users, ACLs enforced. One per module that asks for it
    (a module may restart it), stopped at the module's end; no controller (a test runs its own,
    with `kafka_security.CONFIG_ENV` set to `stack.state.kafka_client_config`), one TaskManager.

    Yields the RunningStack. Its client configuration (user `eddyline`, ALL on everything) is
    registered for this process, so deploy.kafka_io clients of `stack.bootstrap_servers` just
    work; `stack.state.kafka_security()` is that KafkaSecurity, and
    `kafka_auth.user_security(stack.settings.state_dir, kafka_auth.STRANGER)` a user who
    authenticates but has no ACL. Its JobManager and TaskManagers run with
    EDDYLINE_KAFKA_CONFIG=`stack.state.kafka_client_config`."""
    settings = free_settings(
        tmp_path_factory.mktemp("secured-stack"),
        kafka_security="sasl-ssl",
        controller=False,
        taskmanagers=1,
    )
    try:
        result = control.up(settings)
    except EddylineError as e:
        pytest.fail(f"the local stack with a secured Kafka did not start: {e}", pytrace=False)
    try:
        state.register_stack(result.state)  # control.up did already; said here for readers
        yield RunningStack(settings, result.state)
    finally:
        control.down(settings.state_dir)
        kafka_security.forget(settings.bootstrap_servers)
