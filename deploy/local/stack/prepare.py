"""Writes the stack's files under the state folder before the servers start."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from deploy import paths
from deploy.errors import ComponentStartError, MissingToolError
from deploy.local import objectstore
from deploy.local.stack import components, kafka_auth, render, reporter, s3state
from deploy.settings import StackSettings


def check_tools(settings: StackSettings | None = None) -> str:
    """The java binary to use; MissingToolError naming what to install when a part is missing
    (with `settings`, also what its options need: versitygw and Flink's S3 plugin for s3)."""
    java_bin = components.java()
    if java_bin is None:
        raise MissingToolError(
            "Java not found on PATH: install a JDK 17 "
            "(e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    kafka_dir = paths.jvm_cache() / "kafka"
    if not any(kafka_dir.glob("kafka_2.13-*.jar")):
        raise MissingToolError(f"Kafka jars not found in {kafka_dir}: run `make setup` first")
    if not paths.connector_jars():
        raise MissingToolError(
            f"Flink Kafka connector not found in {paths.jvm_cache() / 'flink'}: "
            "run `make setup` first"
        )
    if settings is not None and settings.state_storage == "s3":
        objectstore.binary()  # MissingToolError: built by `make kube-tools`
        if "s3-fs-hadoop" not in paths.flink_plugin_jars():
            raise MissingToolError(
                f"Flink's S3 plugin (flink-s3-fs-hadoop) not found in {paths.jvm_cache() / 's3'}:"
                " run `make jars` first"
            )
    return java_bin


def _write_if_changed(path: Path, text: str, private: bool = False) -> None:
    """`text` in `path` unless it is there already; `private`: a file holding a secret, made
    readable by its owner only before the secret is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if private:
        path.touch(mode=0o600)
        path.chmod(0o600)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_configs(settings: StackSettings, store: objectstore.ObjectStore | None = None) -> None:
    """The servers' files; `store`: the stack's S3 server when state_storage is s3 (its bucket
    folder is made here, before the server starts)."""
    lay = components.layout(settings)
    for key in ("logs", "kafka_data", "flink_conf", "flink_lib", "flink_pids"):
        lay[key].mkdir(parents=True, exist_ok=True)
    state = settings.state_dir.resolve()
    local = ("checkpoints", "savepoints") if settings.state_storage == "local" else ()
    for sub in (*local, "flink/uploads", "flink/tmp"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    if settings.state_storage == "s3":
        s3state.prepare(settings.state_dir)

    _write_kafka_config(settings)
    _write_if_changed(lay["kafka_log4j"], render.kafka_log4j(lay["logs"] / "kafka" / "server.log"))
    conf = lay["flink_conf"]
    s3 = store.flink_config() if store is not None else None
    _write_if_changed(
        conf / "config.yaml", render.flink_config(settings, paths.venv_python(), s3=s3)
    )
    _write_if_changed(conf / "log4j-console.properties", render.flink_log4j())
    _link_flink_lib(lay["flink_lib"])
    reporter.link_plugins(settings, lay["flink_plugins"])


def _write_kafka_config(settings: StackSettings) -> None:
    """server.properties; a secured broker's first (certificates, users, the client file) and
    with the admin's password in it, so mode 0600."""
    conf = components.layout(settings)["kafka_conf"]
    if not settings.kafka_secured:
        _write_if_changed(conf, render.kafka_server_properties(settings))
        return
    kafka_auth.prepare(settings)
    admin = kafka_auth.passwords(settings.state_dir)[kafka_auth.ADMIN]
    text = render.kafka_server_properties(settings, admin_password=admin)
    _write_if_changed(conf, text, private=True)


def _link_flink_lib(lib: Path) -> None:
    """The cluster's lib/: the distribution's jars, flink-python and the connectors, as
    symlinks. flink-python in lib/ (as Flink's docs set up PyFlink clusters) with pemja loaded
    parent-first (flink-config.yaml.j2) loads PEMJA's native library once per TaskManager: loaded
    by each job's own classloader, every THREAD-mode job after the first failed
    (`NoSuchFieldException: loadedLibraryNames`, PEMJA's reload trick does not work on Java 17)."""
    wanted = {p.name: p for p in sorted((paths.flink_home() / "lib").glob("*.jar"))}
    wanted[paths.flink_python_jar().name] = paths.flink_python_jar()
    wanted.update({p.name: p for p in paths.connector_jars()})
    for existing in lib.iterdir():
        if existing.name not in wanted or existing.resolve() != wanted[existing.name].resolve():
            existing.unlink()
    for name, target in wanted.items():
        link = lib / name
        if not link.exists():
            link.symlink_to(target)


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as Kafka's own)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def format_kafka_storage(settings: StackSettings, java_bin: str) -> None:
    """Format the KRaft log folder once; later starts reuse it (and its topics). A secured
    broker's users are added then (kafka_auth): storage formatted without them is refused."""
    lay = components.layout(settings)
    data = lay["kafka_data"]
    if settings.kafka_secured:
        kafka_auth.check_storage(settings, data)
    if (data / "meta.properties").exists():
        return
    scram: list[str] = []
    if settings.kafka_secured:
        scram = kafka_auth.scram_arguments(kafka_auth.passwords(settings.state_dir))
    log = lay["logs"] / "kafka-format.out"
    # The passwords are on this short-lived command line (StorageTool reads them nowhere else);
    # the command line itself is never written to a log.
    argv = components.kafka_format(settings, java_bin, new_cluster_id(), scram)
    with log.open("w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False, timeout=120)
    if done.returncode != 0:
        raise ComponentStartError("kafka", "formatting the KRaft storage failed", log)
    if settings.kafka_secured:
        kafka_auth.record_storage(settings, data)
