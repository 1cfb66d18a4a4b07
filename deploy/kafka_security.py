"""How Eddyline authenticates to Kafka: one client configuration for the jobs, the controller and
the tools.

Given once — a client properties file (`EDDYLINE_KAFKA_CONFIG`) and/or `KAFKA_*` environment
variables (on Kubernetes, the chart fills them from a Secret) — and turned into:

- librdkafka settings (`librdkafka()`): the controller's admin and lag clients, `top`, `generate`,
  the demo and the tests, through `kafka_io.client_config`;
- Java client properties (`java()`): the jobs' Kafka tables and the DataStream connectors,
  including the exactly-once sink's transactional producer.

Secrets are `SecretStr`: `repr`, `str`, `summary()` and pydantic dumps never show them; only the
two renderings above hold them in clear, because the clients need them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

from deploy.errors import PermanentError

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[str, ...] = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: tuple[str, ...] = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

CONFIG_ENV = "EDDYLINE_KAFKA_CONFIG"
# Environment variable → the properties-file key it sets. KAFKA_SASL_USERNAME/PASSWORD are the
# names the chart's `kafka.existingSecret` has always documented.
ENV_KEYS: dict[str, str] = {
    "KAFKA_SECURITY_PROTOCOL": "security.protocol",
    "KAFKA_SASL_MECHANISM": "sasl.mechanism",
    "KAFKA_SASL_USERNAME": "sasl.username",
    "KAFKA_SASL_PASSWORD": "sasl.password",
    "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    "KAFKA_SSL_CERTIFICATE_LOCATION": "ssl.certificate.location",
    "KAFKA_SSL_KEY_LOCATION": "ssl.key.location",
    "KAFKA_SSL_KEY_PASSWORD": "ssl.key.password",
}
KEYS = frozenset(ENV_KEYS.values())

# flink-sql-connector-kafka shades the Kafka client: a JAAS login module must be named by its
# shaded class, or the connector fails with "class not found" inside the TaskManager.
SHADED_PREFIX = "org.apache.flink.kafka.shaded."
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


class KafkaConfigError(PermanentError, ValueError):
    """A Kafka client configuration that cannot work; the message lists every problem."""


class KafkaSecurity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol = "PLAINTEXT"
    mechanism: Mechanism | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_location: Path | None = None
    certificate_location: Path | None = None
    key_location: Path | None = None
    key_password: SecretStr | None = None
    # Where it was read from, for error messages ("KAFKA_* environment", a file's path).
    source: str = "defaults"

    # -- reading ---------------------------------------------------------------------------------

    @classmethod
    def from_properties(cls, values: Mapping[str, str], source: str) -> KafkaSecurity:
        """From `key=value` pairs with the keys of ENV_KEYS' values (librdkafka's names);
        KafkaConfigError listing every unknown key, bad value and missing companion."""
        problems = [
            f"{source}: unknown key {k!r} (known: {', '.join(sorted(KEYS))})"
            for k in values
            if k not in KEYS
        ]
        get = {k: v.strip() for k, v in values.items() if k in KEYS and v.strip()}
        protocol = get.get("security.protocol", "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            problems.append(
                f"{source}: security.protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}"
            )
            protocol = "PLAINTEXT"
        mechanism = get.get("sasl.mechanism")
        if mechanism is not None:
            mechanism = mechanism.upper()
            if mechanism not in MECHANISMS:
                problems.append(
                    f"{source}: sasl.mechanism {mechanism!r} is not one of {', '.join(MECHANISMS)}"
                )
                mechanism = None
        if problems:
            raise KafkaConfigError("; ".join(problems))
        path = {
            k: Path(get[k]) if k in get else None
            for k in ("ssl.ca.location", "ssl.certificate.location", "ssl.key.location")
        }
        secret = {
            k: SecretStr(get[k]) if k in get else None
            for k in ("sasl.password", "ssl.key.password")
        }
        found = cls(
            protocol=protocol,
            mechanism=mechanism,
            username=get.get("sasl.username"),
            password=secret["sasl.password"],
            ca_location=path["ssl.ca.location"],
            certificate_location=path["ssl.certificate.location"],
            key_location=path["ssl.key.location"],
            key_password=secret["ssl.key.password"],
            source=source,
        )
        found.check()
        return found

    @classmethod
    def from_file(cls, path: Path) -> KafkaSecurity:
        try:
            text = path.read_text()
        except OSError as e:
            raise KafkaConfigError(
                f"{path}: cannot read the Kafka client configuration: {e}"
            ) from e
        return cls.from_properties(parse_properties(text), str(path))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSecurity:
        """The file named by EDDYLINE_KAFKA_CONFIG, then KAFKA_* variables over it; PLAINTEXT
        when neither is set."""
        env = os.environ if env is None else env
        values: dict[str, str] = {}
        sources: list[str] = []
        if env.get(CONFIG_ENV):
            path = Path(env[CONFIG_ENV])
            try:
                values.update(parse_properties(path.read_text()))
            except OSError as e:
                raise KafkaConfigError(f"{CONFIG_ENV}={path}: cannot read it: {e}") from e
            sources.append(str(path))
        given = {ENV_KEYS[k]: v for k, v in env.items() if k in ENV_KEYS and v.strip()}
        if given:
            values.update(given)
            sources.append("KAFKA_* environment variables")
        if not values:
            return cls()
        return cls.from_properties(values, " + ".join(sources))

    def check(self) -> None:
        """KafkaConfigError listing every setting that cannot work together."""
        problems: list[str] = []
        sasl = self.protocol.startswith("SASL_")
        if sasl:
            if self.mechanism is None:
                problems.append(f"{self.protocol} needs sasl.mechanism ({', '.join(MECHANISMS)})")
            if not self.username:
                problems.append(f"{self.protocol} needs sasl.username (KAFKA_SASL_USERNAME)")
            if self.password is None:
                problems.append(f"{self.protocol} needs sasl.password (KAFKA_SASL_PASSWORD)")
        elif self.mechanism or self.username or self.password:
            problems.append(f"SASL settings are given but security.protocol is {self.protocol}")
        tls = self.protocol in ("SSL", "SASL_SSL")
        files = {
            "ssl.ca.location": self.ca_location,
            "ssl.certificate.location": self.certificate_location,
            "ssl.key.location": self.key_location,
        }
        if not tls and any(files.values()):
            problems.append(f"TLS files are given but security.protocol is {self.protocol}")
        if (self.certificate_location is None) != (self.key_location is None):
            problems.append(
                "a client certificate needs both ssl.certificate.location and ssl.key.location"
            )
        problems += [f"{k}: {p} does not exist" for k, p in files.items() if p and not p.exists()]
        if problems:
            raise KafkaConfigError(f"{self.source}: " + "; ".join(problems))

    # -- rendering -------------------------------------------------------------------------------

    @property
    def secured(self) -> bool:
        return self.protocol != "PLAINTEXT"

    def summary(self) -> str:
        """What a log line or `describe` may say: never a secret."""
        parts: list[str] = [self.protocol]
        if self.mechanism:
            parts.append(f"{self.mechanism} as {self.username}")
        if self.ca_location:
            parts.append(f"CA {self.ca_location}")
        if self.certificate_location:
            parts.append(f"client certificate {self.certificate_location}")
        return ", ".join(parts)

    def librdkafka(self) -> dict[str, str]:
        """confluent-kafka (librdkafka) settings; empty for PLAINTEXT."""
        if not self.secured:
            return {}
        conf = {"security.protocol": self.protocol.lower()}
        if self.mechanism:
            conf["sasl.mechanism"] = self.mechanism
            conf["sasl.username"] = self.username or ""
            conf["sasl.password"] = self.password.get_secret_value() if self.password else ""
        if self.ca_location:
            conf["ssl.ca.location"] = str(self.ca_location)
        if self.certificate_location and self.key_location:
            conf["ssl.certificate.location"] = str(self.certificate_location)
            conf["ssl.key.location"] = str(self.key_location)
            if self.key_password:
                conf["ssl.key.password"] = self.key_password.get_secret_value()
        return conf

    def java(self, shaded: bool = True) -> dict[str, str]:
        """Java Kafka client properties (for Flink's connector: prefix each with `properties.`);
        empty for PLAINTEXT. The CA is a PEM trust store by path (mount it at the same path on every
        Flink pod); a client key and certificate go inline."""
        if not self.secured:
            return {}
        conf: dict[str, str] = {"security.protocol": self.protocol}
        if self.mechanism:
            module = (SHADED_PREFIX if shaded else "") + _LOGIN_MODULES[self.mechanism]
            password = self.password.get_secret_value() if self.password else ""
            conf["sasl.mechanism"] = self.mechanism
            conf["sasl.jaas.config"] = (
                f"{module} required username={_jaas(self.username or '')} "
                f"password={_jaas(password)};"
            )
        if self.ca_location:
            conf["ssl.truststore.type"] = "PEM"
            conf["ssl.truststore.location"] = str(self.ca_location)
        if self.certificate_location and self.key_location:
            # The key store travels inline (Kafka's PEM values, hidden in its logs like a
            # password): the job's graph is built on the JobManager, and a file path there need
            # not exist on the TaskManagers that run the clients.
            conf["ssl.keystore.type"] = "PEM"
            conf["ssl.keystore.key"] = self.key_location.read_text()
            conf["ssl.keystore.certificate.chain"] = self.certificate_location.read_text()
            if self.key_password:
                conf["ssl.key.password"] = self.key_password.get_secret_value()
        return conf


def _jaas(value: str) -> str:
    """A JAAS option value: quoted, with quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_properties(text: str) -> dict[str, str]:
    """`key=value` lines (Java properties' simple form); `#` and `!` start comments."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            key, _, value = line.partition(":")
        values[key.strip()] = value.strip()
    return values


def render_properties(security: KafkaSecurity) -> str:
    """The client properties file for `security` (secrets in clear: write it with mode 0600)."""
    conf = security.librdkafka() or {"security.protocol": "plaintext"}
    return "".join(f"{k}={v}\n" for k, v in conf.items())


# -- which configuration a bootstrap address uses ------------------------------------------------

_registered: dict[str, KafkaSecurity] = {}
_lock = threading.Lock()


def register(bootstrap_servers: str, security: KafkaSecurity) -> None:
    """Use `security` for clients of `bootstrap_servers` in this process (a local stack the CLI
    found, a test's secured broker), over what the environment says."""
    with _lock:
        _registered[bootstrap_servers] = security


def forget(bootstrap_servers: str) -> None:
    with _lock:
        _registered.pop(bootstrap_servers, None)


def for_servers(bootstrap_servers: str) -> KafkaSecurity:
    """The configuration clients of `bootstrap_servers` use: registered, else the environment's."""
    with _lock:
        found = _registered.get(bootstrap_servers)
    return found if found is not None else KafkaSecurity.from_env()
