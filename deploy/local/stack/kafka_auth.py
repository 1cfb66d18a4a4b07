"""A secured broker for the local stack (`eddyline up --kafka-security sasl-ssl`): TLS with the
stack's own CA, SCRAM users, and ACLs enforced by KRaft's StandardAuthorizer.

Listeners (deploy/templates/kafka-server.properties.j2):
- CLIENT on `kafka_port` (and EXTERNAL on `kafka_external_address`, for pods): SASL_SSL,
  SCRAM-SHA-512 or SCRAM-SHA-256;
- INTERNAL on 127.0.0.1 (`kafka_internal_port`): the broker's own traffic (transaction markers)
  and the stack's ACL set-up, SASL_PLAINTEXT as `admin`;
- CONTROLLER on 127.0.0.1: KRaft, SASL_PLAINTEXT with PLAIN as `admin` (KRaft cannot check SCRAM
  there: the credentials live in the metadata the controller serves).
Only `User:admin` is a super user, so no listener hands out rights to an anonymous connection.

Users, created when the storage is formatted (`StorageTool format --add-scram`), their passwords
random for each stack and kept in `users.json`:
- `admin`: super user, for the broker itself and the ACL set-up only;
- `eddyline`: ALL on every topic, group, transactional id and the cluster (granted once the
  broker answers) — the identity of the stack's processes, the CLI and the tests;
- `stranger`: authenticates, has no ACL — tests show a missing ACL is named.

Under `<state>/kafka/`: `tls/` (mode 0700: ca.crt/.key, broker.crt/.key, the broker's PEM key
store, users.json, all 0600 but the certificates) and `client.properties` (0600), the `eddyline`
client configuration every process the stack starts reads through EDDYLINE_KAFKA_CONFIG.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import time
from pathlib import Path

from confluent_kafka import KafkaException

# confluent-kafka re-exports these without naming them public (mypy's strict re-export check).
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)
from pydantic import SecretStr

from deploy import kafka_io, kafka_security, pki
from deploy.errors import ComponentStartError, StackError
from deploy.kafka_security import KafkaSecurity
from deploy.settings import StackSettings

ADMIN = "admin"
USER = "eddyline"
STRANGER = "stranger"
USERS = (ADMIN, USER, STRANGER)
MECHANISM = "SCRAM-SHA-512"
# SCRAM-SHA-256 is enabled too: a client that only speaks it still gets in as the same user.
CLIENT_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
CA_NAME = "eddyline-kafka-ca"
BROKER = "broker"
# The cluster resource's name in ACLs (the only one Kafka has).
CLUSTER = "kafka-cluster"


# -- where things are --------------------------------------------------------------------------


def kafka_dir(state_dir: Path) -> Path:
    return state_dir.resolve() / "kafka"


def tls_dir(state_dir: Path) -> Path:
    return kafka_dir(state_dir) / "tls"


def ca_file(state_dir: Path) -> Path:
    return tls_dir(state_dir) / "ca.crt"


def keystore_file(state_dir: Path) -> Path:
    """The broker's PEM key store: its unencrypted PKCS#8 key, its certificate, the CA's."""
    return tls_dir(state_dir) / f"{BROKER}.keystore.pem"


def users_file(state_dir: Path) -> Path:
    return tls_dir(state_dir) / "users.json"


def formatted_file(state_dir: Path) -> Path:
    """The cluster id of the storage the users were added to (see check_storage)."""
    return tls_dir(state_dir) / "users.cluster-id"


def client_config_file(state_dir: Path) -> Path:
    return kafka_dir(state_dir) / "client.properties"


def internal_bootstrap(settings: StackSettings) -> str:
    if settings.kafka_internal_port is None:
        raise ValueError("kafka_internal_port must be chosen before the broker is configured")
    return f"127.0.0.1:{settings.kafka_internal_port}"


# -- files readable by their owner only ----------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """`text` in `path`, mode 0600 from the start (never readable by others, even briefly),
    replaced atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


# -- certificates --------------------------------------------------------------------------------


def broker_sans(settings: StackSettings) -> list[str]:
    """The names clients may reach the broker by: the stack's host, loopback, and the external
    address (pods) when there is one; each once, as `IP:` or `DNS:`."""
    names = [settings.host, "127.0.0.1", "localhost"]
    if settings.kafka_external_address is not None:
        names.append(settings.kafka_external_address)
    return [_san(n) for n in dict.fromkeys(names)]


def _san(name: str) -> str:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name}"


def ensure_certificates(settings: StackSettings) -> None:
    """The stack's CA (made once), and a broker certificate for broker_sans (made again when
    those changed, e.g. an external address added later; the CA, which clients trust, stays)."""
    tls = _private_dir(tls_dir(settings.state_dir))
    if not (tls / "ca.crt").exists() or not (tls / "ca.key").exists():
        pki.make_ca(tls, CA_NAME)
    wanted = pki.server_extensions(broker_sans(settings))
    ext = tls / f"{BROKER}.ext"
    cert = tls / f"{BROKER}.crt"
    if not cert.exists() or not ext.exists() or ext.read_text() != wanted:
        pki.signed_cert(tls, BROKER, f"/CN={settings.host}", wanted)
    store = (tls / f"{BROKER}.key").read_text() + cert.read_text() + (tls / "ca.crt").read_text()
    if not keystore_file(settings.state_dir).exists() or (
        keystore_file(settings.state_dir).read_text() != store
    ):
        _write_private(keystore_file(settings.state_dir), store)


# -- users ---------------------------------------------------------------------------------------


def load_passwords(state_dir: Path) -> dict[str, str] | None:
    """Each user's password, or None when the stack never had users (or the file is unreadable)."""
    try:
        data = json.loads(users_file(state_dir).read_text())
        return {name: str(data[name]) for name in USERS}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def passwords(state_dir: Path) -> dict[str, str]:
    """The users' passwords kept in the state folder, else new random ones, kept there."""
    known = load_passwords(state_dir)
    if known is not None:
        return known
    new = {name: secrets.token_urlsafe(24) for name in USERS}
    _private_dir(tls_dir(state_dir))
    _write_private(users_file(state_dir), json.dumps(new))
    return new


def scram_arguments(passwords: dict[str, str]) -> list[str]:
    """`StorageTool format` arguments adding each user's SCRAM credentials (admin: SHA-512, the
    inter-broker mechanism; the others: every client mechanism)."""
    args: list[str] = []
    for name in USERS:
        mechanisms = (MECHANISM,) if name == ADMIN else CLIENT_MECHANISMS
        for mechanism in mechanisms:
            args += ["--add-scram", f"{mechanism}=[name={name},password={passwords[name]}]"]
    return args


def user_security(state_dir: Path, user: str = USER) -> KafkaSecurity:
    """How `user` connects to the stack's client listeners: SASL_SSL, SCRAM-SHA-512, the CA."""
    known = load_passwords(state_dir)
    if known is None or user not in known:
        raise StackError(
            f"no Kafka user {user!r} in {users_file(state_dir)}: the stack was never started "
            "with --kafka-security sasl-ssl in this state folder"
        )
    return KafkaSecurity(
        protocol="SASL_SSL",
        mechanism=MECHANISM,
        username=user,
        password=SecretStr(known[user]),
        ca_location=ca_file(state_dir),
        source=f"{users_file(state_dir)} ({user})",
    )


def admin_security(state_dir: Path) -> KafkaSecurity:
    """The super user on the INTERNAL listener (loopback, no TLS)."""
    known = load_passwords(state_dir)
    if known is None:
        raise StackError(f"no Kafka users in {users_file(state_dir)}")
    return KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        mechanism=MECHANISM,
        username=ADMIN,
        password=SecretStr(known[ADMIN]),
        source=f"{users_file(state_dir)} ({ADMIN})",
    )


# -- before the broker starts --------------------------------------------------------------------


def prepare(settings: StackSettings) -> Path:
    """Certificates, passwords and the `eddyline` client configuration; returns its path."""
    ensure_certificates(settings)
    passwords(settings.state_dir)
    path = client_config_file(settings.state_dir)
    text = kafka_security.render_properties(user_security(settings.state_dir))
    if not path.exists() or path.read_text() != text:
        _write_private(path, text)
    return path


def _cluster_id(meta: Path) -> str | None:
    try:
        return kafka_security.parse_properties(meta.read_text()).get("cluster.id")
    except OSError:
        return None


def check_storage(settings: StackSettings, data_dir: Path) -> None:
    """StackError when the KRaft storage was formatted without this stack's users (first started
    with --kafka-security none): its users cannot be added afterwards without a super user."""
    found = _cluster_id(data_dir / "meta.properties")
    if found is None:
        return  # not formatted yet: format_kafka_storage adds the users
    try:
        recorded = formatted_file(settings.state_dir).read_text().strip()
    except OSError:
        recorded = None
    if recorded != found:
        raise StackError(
            f"the Kafka storage in {data_dir} was formatted without the stack's SCRAM users "
            "(it was started with --kafka-security none): use a new --state-dir, or delete "
            f"{data_dir} (its topics go with it) to start secured"
        )


def record_storage(settings: StackSettings, data_dir: Path) -> None:
    """Remember that the storage in `data_dir` holds the users (after formatting it with them)."""
    found = _cluster_id(data_dir / "meta.properties")
    if found is not None:
        formatted_file(settings.state_dir).write_text(found + "\n")


# -- once the broker answers ---------------------------------------------------------------------


def acl_bindings(user: str = USER) -> list[AclBinding]:
    """Everything for `user`: every topic, group and transactional id, and the cluster
    (IdempotentWrite, Create, Describe… for exactly-once producers and the admin client)."""
    resources = [
        (ResourceType.TOPIC, "*"),
        (ResourceType.GROUP, "*"),
        (ResourceType.TRANSACTIONAL_ID, "*"),
        (ResourceType.BROKER, CLUSTER),
    ]
    return [
        AclBinding(
            kind,
            name,
            ResourcePatternType.LITERAL,
            f"User:{user}",
            "*",
            AclOperation.ALL,
            AclPermissionType.ALLOW,
        )
        for kind, name in resources
    ]


def grant(settings: StackSettings, log: Path, timeout: float = 60.0) -> None:
    """Give `eddyline` its ACLs, as `admin` over the INTERNAL listener; creating an ACL that
    exists is a no-op, so every start grants them again. ComponentStartError naming `log`."""
    bootstrap = internal_bootstrap(settings)
    kafka_security.register(bootstrap, admin_security(settings.state_dir))
    client = kafka_io.admin(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        try:
            for future in client.create_acls(acl_bindings(), request_timeout=10).values():
                future.result()
            return
        except KafkaException as e:
            if time.monotonic() > deadline:
                raise ComponentStartError(
                    "kafka",
                    f"could not grant User:{USER} its ACLs through the internal listener "
                    f"{bootstrap}: {e}",
                    log,
                ) from e
            time.sleep(1.0)
