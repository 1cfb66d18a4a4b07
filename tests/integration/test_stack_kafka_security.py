"""The local stack with a secured broker (`eddyline up --kafka-security sasl-ssl`), against the
real Kafka the stack runs: the stack's own user gets in and may do everything, and every other
way in is refused with an error that says why — no TLS, a wrong password, a CA we did not make,
a user without ACLs, an anonymous connection to the broker's own listener. The secrets stay in
the state folder's private files: never in a log, the state file or `eddyline status`."""

from __future__ import annotations

import json
import logging
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from pydantic import SecretStr

from deploy import kafka_io, pki
from deploy.kafka_security import CONFIG_ENV, KafkaSecurity
from deploy.local.stack import control, kafka_auth, state
from tests.integration.cli import eddyline
from tests.integration.stacks import RunningStack

_quiet = logging.getLogger("tests.kafka-security")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def _security(stack: RunningStack) -> KafkaSecurity:
    current = state.load(stack.settings.state_dir)
    assert current is not None
    security = current.kafka_security()
    assert security is not None, "a secured stack records its client configuration"
    return security


def _client(
    bootstrap: str, security: KafkaSecurity | None, errors: list[KafkaError]
) -> AdminClient:
    """An admin client configured by hand (not through the registry, which holds the stack's
    own user for this address), collecting librdkafka's connection errors in `errors`."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "logger": _quiet,
        "error_cb": errors.append,
        **(security.librdkafka() if security is not None else {}),
    }
    return AdminClient(conf)


def _refused(client: AdminClient, errors: list[KafkaError]) -> float:
    """Seconds until a metadata request failed (it must fail); the connection errors are then
    in `errors` (served by poll)."""
    start = time.monotonic()
    with pytest.raises(KafkaException):
        client.list_topics(timeout=5)
    elapsed = time.monotonic() - start
    client.poll(1.0)
    return elapsed


def _texts(errors: list[KafkaError]) -> str:
    return "\n".join(e.str() for e in errors)


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


# -- the stack's own user ----------------------------------------------------------------------


def test_the_stacks_user_creates_produces_and_reads_back(secured_stack: RunningStack) -> None:
    servers = secured_stack.bootstrap_servers
    kafka_io.create_topics(servers, {"secured-events": 2})
    sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(20)]
    assert kafka_io.produce(servers, "secured-events", sent) == 20
    got = kafka_io.read_all(servers, "secured-events", expected=20, idle=0.5, timeout=60)
    assert sorted((r.key, r.value) for r in got) == sorted(sent)
    assert kafka_io.partition_counts(servers, ["secured-events"]) == {"secured-events": 2}


def test_transactions_commit_through_the_brokers_own_listener(
    secured_stack: RunningStack,
) -> None:
    """A transactional producer (what Flink's exactly-once sink is): the broker writes the
    commit markers to itself over INTERNAL, as the admin."""
    servers = secured_stack.bootstrap_servers
    kafka_io.create_topics(servers, {"secured-tx": 1})
    producer = Producer(kafka_io.client_config(servers, **{"transactional.id": "secured-tx-1"}))
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce("secured-tx", value=b"committed")
    producer.commit_transaction(30)
    got = kafka_io.read_all(servers, "secured-tx", expected=1, idle=0.5, read_committed=True)
    assert [r.value for r in got] == [b"committed"]


def test_scram_sha_256_logs_in_as_the_same_user(secured_stack: RunningStack) -> None:
    security = _security(secured_stack).model_copy(update={"mechanism": "SCRAM-SHA-256"})
    errors: list[KafkaError] = []
    client = _client(secured_stack.bootstrap_servers, security, errors)
    assert client.list_topics(timeout=10).brokers
    futures = client.create_topics([NewTopic("secured-sha-256", 1, 1)], operation_timeout=30)
    assert futures["secured-sha-256"].result() is None


# -- every other way in ------------------------------------------------------------------------


def test_a_plaintext_client_gets_no_answer(secured_stack: RunningStack) -> None:
    errors: list[KafkaError] = []
    client = _client(secured_stack.bootstrap_servers, None, errors)
    assert _refused(client, errors) < 15


def test_no_anonymous_connection_on_the_brokers_own_listener(
    secured_stack: RunningStack,
) -> None:
    """INTERNAL is loopback and PLAINTEXT underneath, but wants SASL: a local process without
    the admin's password gets nothing there (only User:admin is a super user)."""
    errors: list[KafkaError] = []
    client = _client(kafka_auth.internal_bootstrap(secured_stack.settings), None, errors)
    _refused(client, errors)


def test_a_wrong_password_is_a_sasl_authentication_error(secured_stack: RunningStack) -> None:
    wrong = _security(secured_stack).model_copy(update={"password": SecretStr("not-it")})
    errors: list[KafkaError] = []
    _refused(_client(secured_stack.bootstrap_servers, wrong, errors), errors)
    text = _texts(errors)
    assert "SASL authentication error" in text, text
    assert "invalid credentials" in text, text


def test_a_ca_we_did_not_make_fails_the_tls_handshake(
    secured_stack: RunningStack, tmp_path: Path
) -> None:
    pki.make_ca(tmp_path, "some-other-ca")
    other = _security(secured_stack).model_copy(update={"ca_location": tmp_path / "ca.crt"})
    errors: list[KafkaError] = []
    _refused(_client(secured_stack.bootstrap_servers, other, errors), errors)
    text = _texts(errors)
    assert "SSL handshake failed" in text, text
    assert "certificate verify failed" in text, text


def test_a_user_without_acls_is_refused_by_topic(secured_stack: RunningStack) -> None:
    servers = secured_stack.bootstrap_servers
    kafka_io.create_topics(servers, {"secured-private": 1})
    stranger = kafka_auth.user_security(secured_stack.settings.state_dir, kafka_auth.STRANGER)
    errors: list[KafkaError] = []
    client = _client(servers, stranger, errors)

    meta = client.list_topics(topic="secured-private", timeout=10)  # authenticated: answers
    found = meta.topics["secured-private"].error
    assert found is not None
    assert found.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    futures = client.create_topics([NewTopic("stranger-topic", 1, 1)], operation_timeout=10)
    with pytest.raises(KafkaException) as refused:
        futures["stranger-topic"].result()
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    delivered: list[KafkaError | None] = []
    producer = Producer(
        {
            "bootstrap.servers": servers,
            "logger": _quiet,
            "message.timeout.ms": 10000,
            **stranger.librdkafka(),
        }
    )
    producer.produce(
        "secured-private", value=b"x", on_delivery=lambda err, _msg: delivered.append(err)
    )
    producer.flush(15)
    assert len(delivered) == 1
    assert delivered[0] is not None
    assert delivered[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, delivered[0].str()
    assert "TOPIC_AUTHORIZATION_FAILED" in str(delivered[0])


# -- the processes, the files and what is shown --------------------------------------------------


def test_the_flink_processes_get_the_client_configuration(secured_stack: RunningStack) -> None:
    current = state.load(secured_stack.settings.state_dir)
    assert current is not None
    assert current.kafka_client_config is not None
    for name in ("jobmanager", "taskmanager-1"):
        pid = current.component(name).pid
        assert pid is not None
        assert psutil.Process(pid).environ()[CONFIG_ENV] == str(current.kafka_client_config)


def test_the_secrets_are_in_private_files_only(secured_stack: RunningStack) -> None:
    state_dir = secured_stack.settings.state_dir
    current = state.load(state_dir)
    assert current is not None
    assert current.kafka_client_config is not None
    private = [
        current.kafka_client_config,
        state_dir / "kafka" / "server.properties",  # the admin's password
        kafka_auth.users_file(state_dir),
        kafka_auth.keystore_file(state_dir),
        kafka_auth.tls_dir(state_dir) / "ca.key",
    ]
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(kafka_auth.tls_dir(state_dir).stat().st_mode) == 0o700


def test_no_password_in_the_logs_the_state_or_status(secured_stack: RunningStack) -> None:
    state_dir = secured_stack.settings.state_dir
    passwords = list(kafka_auth.passwords(state_dir).values())
    done = eddyline("status", "--state-dir", str(state_dir), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr  # healthy: the CLI got in too
    report = json.loads(done.stdout)
    assert report["kafka_security"] == _security(secured_stack).summary()
    assert report["kafka_security"].startswith("SASL_SSL, SCRAM-SHA-512 as eddyline")
    assert report["kafka_client_config"] == str(kafka_auth.client_config_file(state_dir))
    table = eddyline("status", "--state-dir", str(state_dir))
    assert "SASL_SSL" in table.stdout

    places = {"status -o json": done.stdout, "status": table.stdout + table.stderr}
    places[str(state.state_file(state_dir))] = state.state_file(state_dir).read_text()
    for path in (state_dir / "logs").rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_text(errors="replace")
    assert any("kafka" in where for where in places), "the broker's logs were read"
    leaks = [where for where, text in places.items() for p in passwords if p in text]
    assert not leaks, f"a password appears in {leaks}"


def test_up_reports_the_running_stacks_security(secured_stack: RunningStack) -> None:
    state_dir = secured_stack.settings.state_dir
    done = eddyline("up", "--state-dir", str(state_dir), "-o", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["already_running"] is True
    assert report["kafka_security"].startswith("SASL_SSL, SCRAM-SHA-512 as eddyline")
    assert report["kafka_client_config"] == str(kafka_auth.client_config_file(state_dir))
    for password in kafka_auth.passwords(state_dir).values():
        assert password not in done.stdout


# -- last: a restart (the module's stack stays up, with the same users) --------------------------


def test_a_restart_keeps_the_users_topics_and_acls(secured_stack: RunningStack) -> None:
    settings = secured_stack.settings
    before = kafka_auth.users_file(settings.state_dir).read_text()
    ca = kafka_auth.ca_file(settings.state_dir).read_text()
    control.down(settings.state_dir)
    result = control.up(settings)  # grants the ACLs again: a no-op that must not fail
    assert kafka_auth.users_file(settings.state_dir).read_text() == before
    assert kafka_auth.ca_file(settings.state_dir).read_text() == ca
    assert result.state.kafka_client_config == kafka_auth.client_config_file(settings.state_dir)
    servers = settings.bootstrap_servers
    _eventually(
        lambda: kafka_io.partition_counts(servers, ["secured-events"]) == {"secured-events": 2}
    )
    kafka_io.produce(servers, "secured-events", [(b"after", b"restart")])
    got = kafka_io.read_all(servers, "secured-events", expected=21, idle=0.5, timeout=60)
    assert (b"after", b"restart") in [(r.key, r.value) for r in got]
