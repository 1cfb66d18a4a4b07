"""Job state in a bucket (`eddyline up --state-storage s3`): the stack runs its own S3 server
(versitygw, deploy/local/objectstore.py) as one more supervised component, and Flink keeps
checkpoints and savepoints in its bucket through the `s3-fs-hadoop` plugin — the storage path
the chart uses on Kubernetes, tested locally.

Under the state folder: `objectstore/data/` (served; each sub-folder is a bucket, the stack's
made before the server starts) and `objectstore/credentials.json` (mode 0600): the server's root
keys, random for each stack and kept, so that a restart of the stack or of the supervisor
finds the same keys. They reach the server and the Flink processes in their environments only.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local import objectstore
from deploy.settings import STATE_BUCKET, WILDCARDS, StackSettings

FOLDER = "objectstore"


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str = field(repr=False)


def folder(state_dir: Path) -> Path:
    return state_dir.resolve() / FOLDER


def data_dir(state_dir: Path) -> Path:
    """The folder the server serves; `<data>/<bucket>` is the bucket."""
    return folder(state_dir) / "data"


def bucket_dir(state_dir: Path) -> Path:
    return data_dir(state_dir) / STATE_BUCKET


def credentials_file(state_dir: Path) -> Path:
    return folder(state_dir) / "credentials.json"


def load_credentials(state_dir: Path) -> Credentials | None:
    """The stack's keys, or None when it never had any (or the file is unreadable)."""
    try:
        data = json.loads(credentials_file(state_dir).read_text())
        return Credentials(str(data["access_key"]), str(data["secret_key"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def credentials(state_dir: Path) -> Credentials:
    """The stack's keys: those kept in its state folder, else new random ones, kept there
    (written 0600 from the start: the secret is never readable by others, even briefly)."""
    path = credentials_file(state_dir)
    known = load_credentials(state_dir)
    if known is not None:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return known
    new = Credentials(secrets.token_hex(10), secrets.token_urlsafe(30))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"access_key": new.access_key, "secret_key": new.secret_key}, out)
    os.replace(tmp, path)
    return new


def bind_host(settings: StackSettings) -> str:
    """Where the server listens: the stack's listen address, `localhost` as 127.0.0.1 (Go binds
    only one address of a name; Flink is given the same one)."""
    host = settings.listen_host
    return "127.0.0.1" if host == "localhost" else host


def client_host(settings: StackSettings) -> str:
    """The address Flink and tools reach the server at."""
    host = bind_host(settings)
    if host in WILDCARDS:
        host = "127.0.0.1" if settings.host == "localhost" else settings.host
    return f"[{host}]" if ":" in host else host


def store(settings: StackSettings, port: int, keys: Credentials) -> objectstore.ObjectStore:
    """The stack's S3 server as clients see it."""
    return objectstore.ObjectStore(
        endpoint=f"http://{client_host(settings)}:{port}",
        access_key=keys.access_key,
        secret_key=keys.secret_key,
    )


def running_store(state_dir: Path, endpoint: str | None) -> objectstore.ObjectStore | None:
    """The running stack's server from its state (`objectstore_endpoint`) and its kept keys."""
    keys = load_credentials(state_dir)
    if endpoint is None or keys is None:
        return None
    return objectstore.ObjectStore(endpoint, keys.access_key, keys.secret_key)


def prepare(state_dir: Path) -> None:
    """The served folder and the bucket in it, made before the server starts (no S3 call)."""
    bucket_dir(state_dir).mkdir(parents=True, exist_ok=True)
