"""Eddyline against a broker that wants SASL over TLS (the `secured_stack`: SCRAM users, the stack's
own CA, ACLs enforced): the exactly-once ledger through the controller, the controller's Kafka
checks, refusals named where a user looks, and no secret in any log, status or Flink answer."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from deploy import kafka_io, kafka_security
from deploy.datagen.generator import GeneratorConfig, orders
from deploy.errors import KafkaAccessError
from deploy.flink import inputs
from deploy.kafka_security import KafkaSecurity
from deploy.local.stack import kafka_auth
from deploy.spec import FlinkJob
from tests import oracles
from tests.integration.cli import eddyline
from tests.integration.jobrun import (
    Topics,
    canonical_values,
    produce,
    read_inputs,
    read_output,
)
from tests.integration.managed import Managed, flinkjob
from tests.integration.stacks import RunningStack

ORDERS = GeneratorConfig(seed=21, events=3_000, skus=30, duplicate=0.03, malformed=0.02)


def client_config(stack: RunningStack) -> Path:
    path = stack.state.kafka_client_config
    assert path is not None, "the secured stack recorded no client configuration"
    return path


def passwords(stack: RunningStack) -> dict[str, str]:
    found = kafka_auth.load_passwords(stack.settings.state_dir)
    assert found, "the secured stack recorded no SCRAM users"
    return found


def written(path: Path, security: KafkaSecurity) -> Path:
    path.write_text(kafka_security.render_properties(security))
    path.chmod(0o600)
    return path


@pytest.fixture
def managed(secured_stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    """A controller of the test's own, configured only through EDDYLINE_KAFKA_CONFIG."""
    m = Managed(
        secured_stack,
        tmp_path,
        env={kafka_security.CONFIG_ENV: str(client_config(secured_stack))},
    )
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


def _ledger(name: str, stack: RunningStack, topics: Topics) -> dict[str, Any]:
    """A FlinkJob for the exactly-once ledger over the test's own topics."""
    return flinkjob(
        name,
        "jobs.ledger",
        [*topics.common_args(stack), "--orders-topic", topics.orders],
        kafka={"inputTopics": [topics.orders], "outputTopics": [topics.output]},
    )


def _refused(job: FlinkJob) -> bool:
    return any(c.type == "KafkaAccess" and c.status == "False" for c in job.status.conditions)


def test_the_ledger_is_exactly_once_through_the_controller_on_a_sasl_ssl_broker(
    secured_stack: RunningStack, managed: Managed
) -> None:
    """Source, exactly-once transactional sink, the controller's co-partition check and lag
    read, and the CLI: all through SCRAM over TLS. Read back with read_committed, every
    movement is applied exactly once; then nothing anywhere shows a password."""
    stack = secured_stack
    topics = Topics.fresh("stock-levels")
    kafka_io.create_topics(
        stack.bootstrap_servers, {topics.orders: 2, topics.output: 2, topics.dead: 1}
    )
    produce(stack, orders(ORDERS), {"orders": topics.orders})
    expected = oracles.ledger(read_inputs(stack, topics.orders))
    name = f"ledger-{topics.run}"
    submitted = managed.submit(_ledger(name, stack, topics))
    assert submitted.returncode == 0, submitted.stderr
    job = managed.wait_running(name, 1)
    records = read_output(stack, topics.output, sum(expected.output.values()), read_committed=True)
    assert canonical_values(records) == expected.output

    # The controller's own Kafka reads on this broker: the inputs check and the group's lag.
    spec = job.spec
    assert inputs.input_problems(spec, stack.bootstrap_servers) == inputs.Precheck()
    kafka_io.create_topics(stack.bootstrap_servers, {topics.clicks: 1})
    joined = spec.model_copy(
        update={
            "kafka": spec.kafka.model_copy(
                update={"input_topics": [topics.orders, topics.clicks], "copartitioned": True}
            )
        }
    )
    problem = inputs.input_problems(joined, stack.bootstrap_servers).problem
    assert "not co-partitioned" in str(problem)
    lag = kafka_io.consumer_lag(stack.bootstrap_servers, f"test-{topics.run}", [topics.orders])
    assert lag is not None
    assert lag >= 0

    # No secret in what a user or an operator can see.
    secrets = passwords(stack)
    seen = _everything_shown(stack, managed, name, job.status.job_id or "")
    for where, text in seen.items():
        for user, password in secrets.items():
            assert password not in text, f"{user}'s password is in {where}"
    assert len(seen) > 20, sorted(seen)


def _everything_shown(
    stack: RunningStack, managed: Managed, name: str, job_id: str
) -> dict[str, str]:
    """Every log file of the stack and the test's controller, the job's status and `describe`,
    and Flink's REST answers about the cluster and the job."""
    seen: dict[str, str] = {}
    for folder in (stack.settings.state_dir / "logs", managed.state_dir):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix in (".log", ".out", ".json", ".txt", ""):
                seen[str(path)] = path.read_text(errors="replace")
    seen["status"] = managed.job(name).status.model_dump_json()
    for args in (
        ("describe", name, "-o", "json"),
        ("list", "-o", "json"),
        ("status", "-o", "json"),
    ):
        shown = managed.cli(*args)
        seen[" ".join(args)] = shown.stdout + shown.stderr
    with httpx.Client(base_url=stack.flink_url, timeout=30) as flink:
        paths = [
            "/config", "/jobmanager/config", "/jobmanager/environment", "/taskmanagers",
            "/jobs/overview", f"/jobs/{job_id}", f"/jobs/{job_id}/plan", f"/jobs/{job_id}/config",
            f"/jobs/{job_id}/exceptions", f"/jobs/{job_id}/checkpoints",
            f"/jobs/{job_id}/checkpoints/config", "/jars",
        ]  # fmt: skip
        detail = flink.get(f"/jobs/{job_id}").json()
        paths += [f"/jobs/{job_id}/vertices/{v['id']}" for v in detail["vertices"]]
        for tm in flink.get("/taskmanagers").json()["taskmanagers"]:
            paths += [f"/taskmanagers/{tm['id']}", f"/taskmanagers/{tm['id']}/log"]
        paths += ["/jobmanager/log", "/jobmanager/stdout"]
        for url in paths:
            seen[f"Flink {url}"] = flink.get(url).text
    return seen


def test_a_wrong_password_is_named_on_the_flinkjob_and_nothing_starts(
    secured_stack: RunningStack, tmp_path: Path
) -> None:
    """The controller's credentials are refused: the FlinkJob says which broker refused it and
    Kafka's reason (a KafkaAccess condition and a KafkaRefused event), and no Flink job starts."""
    stack = secured_stack
    mine = KafkaSecurity.from_file(client_config(stack))
    wrong = written(
        tmp_path / "wrong.properties",
        mine.model_copy(update={"password": SecretStr("not-the-password")}),
    )
    topics = Topics.fresh("stock-levels")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.orders: 2, topics.output: 2})
    m = Managed(stack, tmp_path, env={kafka_security.CONFIG_ENV: str(wrong)})
    m.start_controller()
    try:
        name = f"wrong-{topics.run}"
        submitted = m.submit(_ledger(name, stack, topics))
        assert submitted.returncode == 0, submitted.stderr
        job = m.wait(name, _refused, "name Kafka's refusal", timeout=120)
        [access] = [c for c in job.status.conditions if c.type == "KafkaAccess"]
        assert access.reason == "Refused"
        assert f"Kafka at {stack.bootstrap_servers}" in access.message
        assert "Authentication failed" in access.message, access.message
        refused = [e for e in job.status.events if e.reason == "KafkaRefused"]
        assert [e.type for e in refused[:1]] == ["Warning"]
        assert job.status.job_id is None
        assert m.live_flink_jobs() == []
        assert "not-the-password" not in (m.controller.tail(400) if m.controller else "")
    finally:
        m.close()


def test_a_missing_acl_and_an_unknown_ca_are_named(
    secured_stack: RunningStack, tmp_path: Path
) -> None:
    """`stranger` authenticates but may not describe the topic: the error says so, rather than
    the topic seeming not to exist. A client that does not trust the broker's CA is told its
    certificate could not be verified."""
    stack = secured_stack
    topics = Topics.fresh("orders")
    kafka_io.create_topics(stack.bootstrap_servers, {topics.orders: 2})
    stranger = kafka_auth.user_security(stack.settings.state_dir, kafka_auth.STRANGER)
    kafka_security.register(stack.bootstrap_servers, stranger)
    try:
        with pytest.raises(KafkaAccessError) as e:
            kafka_io.partition_counts(stack.bootstrap_servers, [topics.orders], timeout=10)
        assert f"Kafka at {stack.bootstrap_servers} refused to describe topic" in str(e.value)
        assert "authoriz" in str(e.value).lower()
    finally:
        kafka_security.register(
            stack.bootstrap_servers, KafkaSecurity.from_file(client_config(stack))
        )

    other_ca = _another_ca(tmp_path)
    mine = KafkaSecurity.from_file(client_config(stack))
    untrusting = written(
        tmp_path / "other-ca.properties", mine.model_copy(update={"ca_location": other_ca})
    )
    result = eddyline(
        "generate", "--bootstrap-servers", stack.bootstrap_servers, "--profile", "orders",
        "--events", "10", "--orders-topic", topics.orders, "-o", "json",
        env={kafka_security.CONFIG_ENV: str(untrusting)},
        timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"Kafka at {stack.bootstrap_servers} refused the connection" in errors[0]
    assert "certificate verify failed" in errors[0], errors[0]


def _another_ca(folder: Path) -> Path:
    key, cert = folder / "other-ca.key", folder / "other-ca.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=not-the-stacks-ca",
         "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


def test_status_shows_how_the_stack_connects_without_a_secret(
    secured_stack: RunningStack,
) -> None:
    shown = eddyline("status", "-o", "json", "--state-dir", str(secured_stack.settings.state_dir))
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert "SASL_SSL" in json.dumps(doc)
    for password in passwords(secured_stack).values():
        assert password not in shown.stdout
