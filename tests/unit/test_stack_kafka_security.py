"""The local stack's secured broker (`eddyline up --kafka-security sasl-ssl`), without a broker:
the rendered server.properties (PLAINTEXT byte for byte as before), the certificates and users
kept in the state folder (real openssl), the format command, the processes' environments and
what the stack's state and the CLI say about it. The broker itself:
tests/integration/test_stack_kafka_security.py."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy import kafka_security
from deploy.cli import stack as stack_cli
from deploy.cli.app import app
from deploy.errors import StackError
from deploy.kafka_security import KafkaSecurity
from deploy.local.stack import components, ephemeral, kafka_auth, render
from deploy.local.stack.state import StackState, register_stack
from deploy.settings import StackSettings

STATE = Path("/srv/eddyline-state")

# server.properties as rendered before the secured broker existed: PLAINTEXT stacks must get
# exactly this (a changed file would be a changed broker for every existing stack).
PLAIN = """\
# Kafka broker for Eddyline's local stack: one node that is both broker and KRaft controller.
# Rendered by deploy/local/stack/render.py.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{voters}
listeners={listeners}
advertised.listeners={advertised}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map={protocols}
log.dirs={data}

# A single node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Flink's exactly-once KafkaSink asks for transaction.timeout.ms of 1 h by default; the broker
# must allow at least that or every transactional producer fails to initialise.
transaction.max.timeout.ms=3600000
group.initial.rebalance.delay.ms=0
num.partitions=2
auto.create.topics.enable=true
log.retention.hours=168

{extra}"""


def _data() -> str:
    return str((STATE / "kafka" / "data").resolve())


def _props(text: str) -> dict[str, str]:
    return kafka_security.parse_properties(text)


def _secured(**overrides: object) -> StackSettings:
    values: dict[str, object] = {
        "state_dir": STATE,
        "kafka_port": 19092,
        "kafka_controller_port": 19093,
        "kafka_security": "sasl-ssl",
        "kafka_internal_port": 19095,
    }
    values.update(overrides)
    return StackSettings.model_validate(values)


@pytest.fixture
def forget_registered() -> Iterator[list[str]]:
    """Addresses a test registers a configuration for, forgotten after it."""
    registered: list[str] = []
    yield registered
    for servers in registered:
        kafka_security.forget(servers)


# -- server.properties -------------------------------------------------------------------------


def test_plaintext_rendering_is_unchanged() -> None:
    settings = StackSettings(state_dir=STATE, kafka_port=19092, kafka_controller_port=19093)
    assert render.kafka_server_properties(settings) == PLAIN.format(
        voters="localhost:19093",
        listeners="PLAINTEXT://localhost:19092,CONTROLLER://localhost:19093",
        advertised="PLAINTEXT://localhost:19092",
        protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        data=_data(),
        extra="",
    )


def test_plaintext_rendering_with_external_listener_and_extras_is_unchanged() -> None:
    settings = StackSettings(
        state_dir=STATE,
        host="10.0.0.5",
        bind_host="0.0.0.0",
        kafka_external_address="10.88.0.1",
        kafka_external_port=29094,
        kafka_internal_port=19095,  # set, but only a secured broker listens on it
    )
    text = render.kafka_server_properties(settings, {"x.y": "1", "a.b": "2"})
    assert text == PLAIN.format(
        voters="10.0.0.5:9093",
        listeners="PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093,EXTERNAL://10.88.0.1:29094",
        advertised="PLAINTEXT://10.0.0.5:9092,EXTERNAL://10.88.0.1:29094",
        protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
        data=_data(),
        extra="a.b=2\nx.y=1\n",
    )


def test_secured_listeners_clients_over_sasl_ssl_the_broker_on_loopback() -> None:
    props = _props(render.kafka_server_properties(_secured(), admin_password="pw"))
    assert props["listeners"] == (
        "CLIENT://localhost:19092,CONTROLLER://127.0.0.1:19093,INTERNAL://127.0.0.1:19095"
    )
    assert props["advertised.listeners"] == "CLIENT://localhost:19092,INTERNAL://127.0.0.1:19095"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["listener.security.protocol.map"] == (
        "CONTROLLER:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CLIENT:SASL_SSL"
    )
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512,SCRAM-SHA-256"
    assert "PLAIN" not in props["sasl.enabled.mechanisms"].split(",")
    assert props["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert props["listener.name.internal.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"


def test_secured_broker_authorizes_and_only_the_admin_is_super() -> None:
    props = _props(render.kafka_server_properties(_secured(), admin_password="pw"))
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["super.users"] == "User:admin"
    assert "ANONYMOUS" not in props["super.users"]
    assert props["allow.everyone.if.no.acl.found"] == "false"


def test_secured_broker_reads_pem_stores_from_the_state_folder() -> None:
    props = _props(render.kafka_server_properties(_secured(), admin_password="pw"))
    assert props["ssl.keystore.type"] == "PEM"
    assert props["ssl.keystore.location"] == str(kafka_auth.keystore_file(STATE))
    assert props["ssl.truststore.type"] == "PEM"
    assert props["ssl.truststore.location"] == str(kafka_auth.ca_file(STATE))
    assert kafka_auth.keystore_file(STATE).parent == STATE.resolve() / "kafka" / "tls"


def test_secured_broker_logs_in_as_the_admin_on_its_own_listeners() -> None:
    props = _props(render.kafka_server_properties(_secured(), admin_password='p"w'))
    internal = props["listener.name.internal.scram-sha-512.sasl.jaas.config"]
    assert internal.endswith('required username="admin" password="p\\"w";')
    controller = props["listener.name.controller.plain.sasl.jaas.config"]
    assert 'username="admin" password="p\\"w" user_admin="p\\"w";' in controller
    for mechanism in ("scram-sha-512", "scram-sha-256"):
        client = props[f"listener.name.client.{mechanism}.sasl.jaas.config"]
        assert client.endswith("ScramLoginModule required;")  # no credentials on client side


def test_secured_external_listener_is_sasl_ssl_too() -> None:
    settings = _secured(kafka_external_address="10.88.0.1", kafka_external_port=29094)
    props = _props(render.kafka_server_properties(settings, admin_password="pw"))
    assert props["listeners"].endswith(",EXTERNAL://10.88.0.1:29094")
    assert props["advertised.listeners"].endswith(",EXTERNAL://10.88.0.1:29094")
    assert props["listener.security.protocol.map"].endswith(",EXTERNAL:SASL_SSL")
    assert "listener.name.external.scram-sha-512.sasl.jaas.config" in props


def test_extra_properties_still_come_last_when_secured() -> None:
    text = render.kafka_server_properties(_secured(), {"num.partitions": "3"}, admin_password="p")
    assert text.endswith("\nnum.partitions=3\n")


def test_secured_rendering_needs_the_admin_password_and_the_internal_port() -> None:
    with pytest.raises(ValueError, match="admin password"):
        render.kafka_server_properties(_secured())
    with pytest.raises(ValueError, match="kafka_internal_port"):
        render.kafka_server_properties(_secured(kafka_internal_port=None), admin_password="p")


# -- settings ------------------------------------------------------------------------------------


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDDYLINE_KAFKA_SECURITY", "sasl-ssl")
    assert StackSettings(state_dir=STATE).kafka_secured
    monkeypatch.setenv("EDDYLINE_KAFKA_SECURITY", "tls")
    with pytest.raises(ValueError, match="sasl-ssl"):
        StackSettings(state_dir=STATE)


def test_the_internal_port_is_reserved_only_when_secured() -> None:
    assert "kafka internal" not in _secured(kafka_security="none").reserved_ports()
    assert _secured().reserved_ports()["kafka internal"] == 19095
    assert "kafka internal" not in _secured(kafka_internal_port=None).reserved_ports()


def test_throw_away_settings_have_a_free_internal_port(tmp_path: Path) -> None:
    settings = ephemeral.free_settings(tmp_path, kafka_security="sasl-ssl")
    assert settings.kafka_internal_port is not None
    assert settings.kafka_secured


def test_up_help_shows_the_option() -> None:
    done = CliRunner().invoke(app, ["up", "--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0
    assert "--kafka-security" in done.output
    assert "sasl-ssl" in done.output


# -- users, certificates and the client configuration ---------------------------------------------


def test_format_adds_every_user_with_its_mechanisms(tmp_path: Path) -> None:
    passwords = {"admin": "a1", "eddyline": "e1", "stranger": "s1"}
    args = kafka_auth.scram_arguments(passwords)
    pairs = [args[i + 1] for i in range(0, len(args), 2)]
    assert all(args[i] == "--add-scram" for i in range(0, len(args), 2))
    assert pairs == [
        "SCRAM-SHA-512=[name=admin,password=a1]",
        "SCRAM-SHA-512=[name=eddyline,password=e1]",
        "SCRAM-SHA-256=[name=eddyline,password=e1]",
        "SCRAM-SHA-512=[name=stranger,password=s1]",
        "SCRAM-SHA-256=[name=stranger,password=s1]",
    ]
    argv = components.kafka_format(_secured(state_dir=tmp_path), "java", "id", args)
    assert argv[-len(args) :] == args
    assert components.kafka_format(_secured(state_dir=tmp_path), "java", "id")[-1] == (
        "--ignore-formatted"
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sans(cert: Path) -> str:
    done = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_prepare_makes_a_ca_a_broker_certificate_and_private_files(tmp_path: Path) -> None:
    settings = _secured(state_dir=tmp_path, kafka_external_address="10.88.0.1")
    client = kafka_auth.prepare(settings)
    tls = kafka_auth.tls_dir(tmp_path)
    assert _mode(tls) == 0o700
    for private in ("ca.key", "broker.key", "broker.keystore.pem", "users.json"):
        assert _mode(tls / private) == 0o600, private
    assert client == kafka_auth.client_config_file(tmp_path)
    assert _mode(client) == 0o600
    sans = _sans(tls / "broker.crt")
    for name in ("DNS:localhost", "IP Address:127.0.0.1", "IP Address:10.88.0.1"):
        assert name in sans
    store = kafka_auth.keystore_file(tmp_path).read_text()
    assert store.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    assert store.count("BEGIN CERTIFICATE") == 2  # the broker's and the CA's
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", str(tls / "ca.crt"), str(tls / "broker.crt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr


def test_the_client_configuration_is_the_eddyline_user_over_sasl_ssl(tmp_path: Path) -> None:
    client = kafka_auth.prepare(_secured(state_dir=tmp_path))
    security = KafkaSecurity.from_file(client)
    password = json.loads(kafka_auth.users_file(tmp_path).read_text())["eddyline"]
    assert security.protocol == "SASL_SSL"
    assert security.mechanism == "SCRAM-SHA-512"
    assert security.username == "eddyline"
    assert security.password is not None
    assert security.password.get_secret_value() == password
    assert security.ca_location == kafka_auth.ca_file(tmp_path)
    stranger = kafka_auth.user_security(tmp_path, kafka_auth.STRANGER)
    assert stranger.username == "stranger"
    assert stranger.password != security.password


def test_passwords_are_random_per_stack_and_kept(tmp_path: Path) -> None:
    first = kafka_auth.passwords(tmp_path / "a")
    assert kafka_auth.passwords(tmp_path / "a") == first
    other = kafka_auth.passwords(tmp_path / "b")
    assert set(first) == {"admin", "eddyline", "stranger"}
    assert len(set(first.values())) == 3
    assert not set(first.values()) & set(other.values())
    assert all(len(p) >= 30 for p in first.values())


def test_a_restart_keeps_the_ca_and_a_new_address_gets_a_new_broker_certificate(
    tmp_path: Path,
) -> None:
    kafka_auth.prepare(_secured(state_dir=tmp_path))
    tls = kafka_auth.tls_dir(tmp_path)
    ca, broker, users = ((tls / n).read_text() for n in ("ca.crt", "broker.crt", "users.json"))
    kafka_auth.prepare(_secured(state_dir=tmp_path))
    assert (tls / "broker.crt").read_text() == broker
    kafka_auth.prepare(_secured(state_dir=tmp_path, kafka_external_address="10.88.0.1"))
    assert (tls / "ca.crt").read_text() == ca
    assert (tls / "users.json").read_text() == users
    assert (tls / "broker.crt").read_text() != broker
    assert "IP Address:10.88.0.1" in _sans(tls / "broker.crt")


def test_storage_formatted_without_the_users_is_refused(tmp_path: Path) -> None:
    settings = _secured(state_dir=tmp_path)
    data = tmp_path / "kafka" / "data"
    kafka_auth.check_storage(settings, data)  # nothing formatted yet: fine
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")
    with pytest.raises(StackError, match=r"formatted without the stack's SCRAM users") as err:
        kafka_auth.check_storage(settings, data)
    assert str(data) in str(err.value)
    kafka_auth.passwords(tmp_path)
    kafka_auth.record_storage(settings, data)
    kafka_auth.check_storage(settings, data)


def test_a_user_of_a_stack_never_secured_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"users\.json"):
        kafka_auth.user_security(tmp_path)


def test_acls_give_the_stacks_user_everything() -> None:
    bindings = kafka_auth.acl_bindings()
    assert {(b.restype.name, b.name) for b in bindings} == {
        ("TOPIC", "*"),
        ("GROUP", "*"),
        ("TRANSACTIONAL_ID", "*"),
        ("BROKER", "kafka-cluster"),
    }
    assert {b.principal for b in bindings} == {"User:eddyline"}
    assert {(b.operation.name, b.permission_type.name) for b in bindings} == {("ALL", "ALLOW")}


# -- the processes and the state ---------------------------------------------------------------


def test_every_client_process_gets_the_client_configuration(tmp_path: Path) -> None:
    settings = _secured(state_dir=tmp_path)
    wanted = str(kafka_auth.client_config_file(tmp_path))
    specs = [
        components.jobmanager(settings),
        components.taskmanager(settings, 1, 16000),
        components.controller(settings),
    ]
    for spec in specs:
        assert spec.env[kafka_security.CONFIG_ENV] == wanted, spec.name
    assert kafka_security.CONFIG_ENV not in components.kafka(settings, "java").env
    plain = _secured(state_dir=tmp_path, kafka_security="none")
    assert kafka_security.CONFIG_ENV not in components.jobmanager(plain).env
    assert kafka_security.CONFIG_ENV not in components.controller(plain).env


def _state(tmp_path: Path, client: Path | None, external: str | None = None) -> StackState:
    return StackState(
        supervisor_pid=1,
        flink_url="http://localhost:1",
        bootstrap_servers="localhost:19192",
        external_bootstrap_servers=external,
        kafka_client_config=client,
    )


def test_register_stack_makes_its_addresses_use_its_configuration(
    tmp_path: Path, forget_registered: list[str]
) -> None:
    client = kafka_auth.prepare(_secured(state_dir=tmp_path))
    current = _state(tmp_path, client, external="10.88.0.1:19194")
    forget_registered += ["localhost:19192", "10.88.0.1:19194"]
    security = register_stack(current)
    assert security is not None
    assert security.username == "eddyline"
    assert kafka_security.for_servers("localhost:19192") == security
    assert kafka_security.for_servers("10.88.0.1:19194") == security
    assert current.kafka_summary() == security.summary()


def test_a_plaintext_stack_registers_nothing(
    tmp_path: Path, forget_registered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(kafka_security.CONFIG_ENV, raising=False)
    current = _state(tmp_path, None)
    assert register_stack(current) is None
    assert current.kafka_security() is None
    assert current.kafka_summary() == "PLAINTEXT"
    assert not kafka_security.for_servers("localhost:19192").secured


def test_the_cli_documents_say_how_but_never_the_password(tmp_path: Path) -> None:
    client = kafka_auth.prepare(_secured(state_dir=tmp_path))
    doc = stack_cli._kafka_access(_state(tmp_path, client))
    assert doc["kafka_client_config"] == str(client)
    assert str(doc["kafka_security"]).startswith("SASL_SSL, SCRAM-SHA-512 as eddyline")
    text = json.dumps(doc)
    for password in kafka_auth.passwords(tmp_path).values():
        assert password not in text
    plain = stack_cli._kafka_access(_state(tmp_path, None))
    assert plain == {"kafka_security": "PLAINTEXT", "kafka_client_config": None}
