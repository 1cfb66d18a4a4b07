"""Configuration files of the local stack, rendered from the jinja2 templates in deploy/templates.

Pure functions of the settings: nothing here touches the disk except reading templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from deploy.local.stack import kafka_auth, reporter
from deploy.paths import TEMPLATES
from deploy.settings import StackSettings

# Flink's KafkaSink defaults transaction.timeout.ms to 1 h; the broker must allow at least that.
FLINK_EOS_TRANSACTION_TIMEOUT_MS = 3_600_000

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701 - configuration files, not HTML
)


def _render(template: str, **context: Any) -> str:
    return _env.get_template(template).render(**context)


def flink_config(
    settings: StackSettings,
    python: Path,
    extra: dict[str, str] | None = None,
    s3: Mapping[str, str] | None = None,
) -> str:
    """Flink's config.yaml for the session cluster. With `state_storage = "s3"`, `s3` is the
    S3 plugin's settings for the stack's server (ObjectStore.flink_config(): endpoint, path
    style, marker retention — no credentials, those go in the processes' environment)."""
    if settings.state_storage == "s3" and not s3:
        raise ValueError("state_storage s3 needs the S3 server's Flink settings")
    return _render(
        "flink-config.yaml.j2",
        host=settings.host,
        bind_host=settings.listen_host,
        metrics_factory=reporter.factory_class(settings),
        rpc_port=settings.flink_rpc_port,
        rest_port=settings.flink_port,
        slots=settings.slots,
        scheduler=settings.scheduler,
        jobmanager_memory=settings.jobmanager_memory,
        taskmanager_memory=settings.taskmanager_memory,
        state_dir=settings.state_dir.resolve(),
        checkpoint_dir=settings.checkpoint_dir,
        savepoint_dir=settings.savepoint_dir,
        s3=dict(s3 or {}) if settings.state_storage == "s3" else {},
        python=python,
        extra=extra or {},
    )


def flink_log4j() -> str:
    return _render("flink-log4j.properties.j2")


def kafka_server_properties(
    settings: StackSettings,
    extra: dict[str, str] | None = None,
    admin_password: str | None = None,
) -> str:
    """The broker's server.properties. With `kafka_security = "sasl-ssl"`, `admin_password` is
    the super user's (kafka_auth.passwords): the file then holds it, so write it mode 0600."""
    return _render(
        "kafka-server.properties.j2",
        host=settings.host,
        bind_host=settings.listen_host,
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        external_address=settings.kafka_external_address,
        external_port=settings.kafka_external_port,
        data_dir=(settings.state_dir / "kafka" / "data").resolve(),
        transaction_max_timeout_ms=FLINK_EOS_TRANSACTION_TIMEOUT_MS,
        secured=_kafka_secured(settings, admin_password),
        extra=extra or {},
    )


def _kafka_secured(settings: StackSettings, admin_password: str | None) -> dict[str, Any] | None:
    """The template's values for a secured broker (see kafka_auth), None for a PLAINTEXT one."""
    if not settings.kafka_secured:
        return None
    if admin_password is None:
        raise ValueError("kafka_security sasl-ssl needs the admin password")
    if settings.kafka_internal_port is None:
        raise ValueError("kafka_security sasl-ssl needs kafka_internal_port")
    return {
        "internal_port": settings.kafka_internal_port,
        "admin": kafka_auth.ADMIN,
        "admin_password": _jaas(admin_password),
        "mechanism": kafka_auth.MECHANISM,
        "client_mechanisms": kafka_auth.CLIENT_MECHANISMS,
        "keystore": kafka_auth.keystore_file(settings.state_dir),
        "truststore": kafka_auth.ca_file(settings.state_dir),
    }


def _jaas(value: str) -> str:
    """A JAAS option value: quoted, quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kafka_log4j(log_file: Path) -> str:
    return _render("kafka-log4j2.yaml.j2", log_file=log_file.resolve())
