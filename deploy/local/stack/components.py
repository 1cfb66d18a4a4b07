"""How each server of the local stack is started: command lines and environments, no I/O."""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from deploy import kafka_security, paths, versions
from deploy.local import objectstore
from deploy.local.stack import kafka_auth, s3state
from deploy.settings import StackSettings

KAFKA = "kafka"
JOBMANAGER = "jobmanager"
CONTROLLER = "controller"
TASKMANAGER = "taskmanager"
OBJECTSTORE = "objectstore"


def taskmanager_name(index: int) -> str:
    return f"taskmanager-{index}"


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised server process."""

    name: str
    kind: str  # kafka | jobmanager | taskmanager | controller | objectstore
    argv: list[str]
    env: dict[str, str]
    port: int
    metrics_port: int | None
    version: str
    log: Path  # stdout + stderr of the process
    log_dir: Path  # where the server writes its own logs
    extra: dict[str, str] = field(default_factory=dict)

    def main_log(self) -> Path:
        """The log a user should read first: the server's own file if it has one yet."""
        candidates = sorted(self.log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        return candidates[-1] if candidates else self.log


def java() -> str | None:
    return shutil.which("java")


def layout(settings: StackSettings) -> dict[str, Path]:
    """The folders and files of the stack under the state folder."""
    s = settings.state_dir.resolve()
    return {
        "logs": s / "logs",
        "kafka_conf": s / "kafka" / "server.properties",
        "kafka_log4j": s / "kafka" / "log4j2.yaml",
        "kafka_data": s / "kafka" / "data",
        "flink_conf": s / "flink" / "conf",
        "flink_lib": s / "flink" / "lib",
        "flink_pids": s / "flink" / "pids",
        "flink_plugins": s / "flink" / "plugins",
    }


def kafka_classpath() -> str:
    return str(paths.jvm_cache() / "kafka" / "*")


def kafka_format(
    settings: StackSettings, java_bin: str, cluster_id: str, scram: Sequence[str] = ()
) -> list[str]:
    """The storage format command; `scram`: kafka_auth.scram_arguments, the users to create
    (a secured stack's only chance: they are part of the bootstrap metadata)."""
    lay = layout(settings)
    return [
        java_bin,
        "-cp",
        kafka_classpath(),
        f"-Dlog4j2.configurationFile=file:{lay['kafka_log4j']}",
        "kafka.tools.StorageTool",
        "format",
        # One argument with `=`: a random id starts with "-" one time in 64, and the tool's
        # argument parser then takes it for an option (a fresh-clone run failed on that).
        f"--cluster-id={cluster_id}",
        "--config",
        str(lay["kafka_conf"]),
        "--ignore-formatted",
        *scram,
    ]


def kafka(settings: StackSettings, java_bin: str) -> ProcessSpec:
    lay = layout(settings)
    heap = settings.kafka_heap
    return ProcessSpec(
        name=KAFKA,
        kind=KAFKA,
        argv=[
            java_bin,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile=file:{lay['kafka_log4j']}",
            f"-Dkafka.logs.dir={lay['logs'] / KAFKA}",
            "-cp",
            kafka_classpath(),
            "kafka.Kafka",
            str(lay["kafka_conf"]),
        ],
        env={},
        port=settings.kafka_port,
        metrics_port=None,
        version=versions.kafka(),
        log=lay["logs"] / f"{KAFKA}.out",
        log_dir=lay["logs"] / KAFKA,
    )


def objectstore_server(
    settings: StackSettings, port: int, keys: s3state.Credentials
) -> ProcessSpec:
    """The stack's S3 server (`state_storage = "s3"`): versitygw serving the bucket folder under
    the state folder; its root keys in its environment, never on its command line."""
    lay = layout(settings)
    return ProcessSpec(
        name=OBJECTSTORE,
        kind=OBJECTSTORE,
        argv=objectstore.server_argv(
            s3state.bind_host(settings), port, s3state.data_dir(settings.state_dir)
        ),
        env=objectstore.root_env(keys.access_key, keys.secret_key),
        port=port,
        metrics_port=None,
        version=objectstore.version(),
        log=lay["logs"] / f"{OBJECTSTORE}.out",
        log_dir=lay["logs"] / OBJECTSTORE,
    )


def python_path(inherited: str | None = None) -> str:
    """PYTHONPATH for the Flink processes. A job in THREAD mode runs its Python inside the
    TaskManager's JVM (PEMJA), whose interpreter starts from the base Python, not the venv: it
    finds pemja, pyflink and the jobs only through this (seen: "No module named 'pemja'"). The
    project root is there for a source checkout, whose editable install a path entry would not
    load; `inherited` (the caller's own PYTHONPATH) comes last."""
    purelib = sysconfig.get_paths()["purelib"]
    entries = [purelib, str(paths.PROJECT_ROOT)]
    if inherited:
        entries.append(inherited)
    return os.pathsep.join(dict.fromkeys(entries))


def kafka_client_env(settings: StackSettings) -> dict[str, str]:
    """What a process of the stack needs to be a Kafka client of it: with a secured broker, the
    stack's client configuration (kafka_auth.client_config_file, read by kafka_security and the
    jobs' driver), never the secrets themselves."""
    if not settings.kafka_secured:
        return {}
    return {kafka_security.CONFIG_ENV: str(kafka_auth.client_config_file(settings.state_dir))}


def _flink_env(
    settings: StackSettings, name: str, aws: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A Flink process's environment; `aws`: the S3 credentials of the stack's bucket (the S3
    plugin's default provider chain reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)."""
    lay = layout(settings)
    return {
        **(aws or {}),
        **kafka_client_env(settings),
        "FLINK_CONF_DIR": str(lay["flink_conf"]),
        "FLINK_LIB_DIR": str(lay["flink_lib"]),
        "FLINK_LOG_DIR": str(lay["logs"] / name),
        "FLINK_PID_DIR": str(lay["flink_pids"]),
        # The distribution's plugins, with a Prometheus reporter that binds (reporter.py).
        "FLINK_PLUGINS_DIR": str(lay["flink_plugins"]),
        "FLINK_IDENT_STRING": "eddyline",
        "PYTHONPATH": python_path(os.environ.get("PYTHONPATH")),
        # Flink's scripts read JAVA_HOME first; point them at the java we checked.
        "JAVA_HOME": str(Path(shutil.which("java") or "java").resolve().parent.parent),
    }


def jobmanager(settings: StackSettings, aws: Mapping[str, str] | None = None) -> ProcessSpec:
    lay = layout(settings)
    script = paths.flink_home() / "bin" / "jobmanager.sh"
    return ProcessSpec(
        name=JOBMANAGER,
        kind=JOBMANAGER,
        argv=[
            "bash",
            str(script),
            "start-foreground",
            "-D",
            f"metrics.reporter.prom.port={settings.metrics_port}",
        ],
        env=_flink_env(settings, JOBMANAGER, aws),
        port=settings.flink_port,
        metrics_port=settings.metrics_port,
        version=versions.flink(),
        log=lay["logs"] / f"{JOBMANAGER}.out",
        log_dir=lay["logs"] / JOBMANAGER,
    )


def taskmanager(
    settings: StackSettings,
    index: int,
    rpc_port: int,
    metrics_port: int | None = None,
    aws: Mapping[str, str] | None = None,
) -> ProcessSpec:
    """TaskManager `index`; one started beyond the configured count (elastic) passes a free
    metrics port, since only the configured ones have reserved ports."""
    lay = layout(settings)
    name = taskmanager_name(index)
    script = paths.flink_home() / "bin" / "taskmanager.sh"
    metrics = metrics_port or settings.taskmanager_metrics_port(index)
    return ProcessSpec(
        name=name,
        kind="taskmanager",
        argv=[
            "bash",
            str(script),
            "start-foreground",
            "-D",
            f"taskmanager.resource-id={name}",
            "-D",
            f"taskmanager.rpc.port={rpc_port}",
            "-D",
            f"metrics.reporter.prom.port={metrics}",
        ],
        env=_flink_env(settings, name, aws),
        port=rpc_port,
        metrics_port=metrics,
        version=versions.flink(),
        log=lay["logs"] / f"{name}.out",
        log_dir=lay["logs"] / name,
    )


def controller(settings: StackSettings) -> ProcessSpec:
    """The job controller, reconciling the FlinkJobs in the stack's store against this stack."""
    lay = layout(settings)
    return ProcessSpec(
        name=CONTROLLER,
        kind=CONTROLLER,
        argv=[
            sys.executable,
            "-m",
            "deploy.cli",
            "controller",
            "--state-dir",
            str(settings.state_dir.resolve()),
            "--flink-url",
            settings.flink_url,
            "--bootstrap-servers",
            settings.bootstrap_servers,
            "--metrics-port",
            str(settings.controller_port),
            "--metrics-host",
            settings.listen_host,
        ],
        env={"PYTHONUNBUFFERED": "1", **kafka_client_env(settings)},
        port=settings.controller_port,
        metrics_port=settings.controller_port,
        version=versions.eddyline(),
        log=lay["logs"] / f"{CONTROLLER}.out",
        log_dir=lay["logs"] / CONTROLLER,
    )
