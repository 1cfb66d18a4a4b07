"""A real S3-compatible server for tests and local runs: versitygw (Apache-2.0) with its POSIX
backend, started as a child process.

Flink keeps checkpoints, savepoints and HA metadata in a bucket through its `flink-s3-fs-hadoop`
plugin; this is the bucket. The binary is built by scripts/kube-tools.sh (`make kube-tools`) into
~/.cache/eddyline/bin ($EDDYLINE_KUBE_BIN). Every server gets random root credentials, passed to it
in its environment (never on its command line, where `ps` shows them).

The local stack runs one (`eddyline up --state-storage s3`); S3 is spoken with boto3.

Served on its own by `python -m deploy.cli.objectstore run` (deploy/cli/objectstore.py).
"""

from __future__ import annotations

import functools
import secrets
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from deploy.errors import ComponentStartError, EddylineError, MissingToolError
from deploy.local.stack.ports import free_port
from deploy.local.stack.processes import START_MARK, failure_cause
from deploy.localkube.layout import BIN_DIR

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION = "us-east-1"
COMPONENT = "versitygw"


def binary() -> Path:
    """The versitygw that scripts/kube-tools.sh builds; MissingToolError saying how if absent."""
    path = BIN_DIR / "versitygw"
    if not path.is_file():
        raise MissingToolError(
            f"versitygw not found at {path}: build it with `make kube-tools` "
            "(scripts/kube-tools.sh), or point EDDYLINE_KUBE_BIN at a folder that has it"
        )
    return path


def server_argv(
    host: str, port: int, root: Path, *, region: str = REGION, request_log: bool = False
) -> list[str]:
    """The command line of a versitygw serving `root` on host:port (no credentials: those go in
    its environment as ROOT_ACCESS_KEY_ID / ROOT_SECRET_ACCESS_KEY)."""
    argv = [str(binary()), "--port", f"{_url_host(host)}:{port}", "--region", region]
    if not request_log:
        argv.append("--quiet")
    return [*argv, "posix", str(root)]


def root_env(access_key: str, secret_key: str) -> dict[str, str]:
    """The environment that gives a versitygw its root credentials."""
    return {"ROOT_ACCESS_KEY_ID": access_key, "ROOT_SECRET_ACCESS_KEY": secret_key}


@functools.cache
def version() -> str:
    """The version the built versitygw reports (`versitygw --version`), or "unknown"."""
    try:
        done = subprocess.run(
            [str(binary()), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired, MissingToolError):
        return "unknown"
    for line in done.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Version" and value.strip():
            return value.strip()
    return "unknown"


@dataclass(frozen=True)
class ObjectStore:
    """Where an S3 server answers and the credentials it accepts."""

    endpoint: str  # http://HOST:PORT
    access_key: str
    secret_key: str = field(repr=False)
    region: str = REGION

    def client(self, *, timeout: float = 30.0, attempts: int = 3) -> S3Client:
        """A boto3 S3 client, path-style (bucket in the path, not in the host name)."""
        import boto3  # noqa: PLC0415 - slow to import; only where S3 is spoken
        from botocore.config import Config  # noqa: PLC0415

        config = Config(
            region_name=self.region,
            s3={"addressing_style": "path"},
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            retries={"max_attempts": attempts, "mode": "standard"},
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=config,
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix`, sorted (all pages)."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def probe(self, timeout: float = 2.0) -> str | None:
        """None when the server answers an authenticated ListBuckets with these credentials (so
        another server on the port, or one with other keys, does not pass); else why not."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self._probe_client(timeout).list_buckets()
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            code = e.response.get("Error", {}).get("Code", "?")
            return f"{self.endpoint} refused ListBuckets: {status} {code}"
        except BotoCoreError as e:
            return f"{self.endpoint} did not answer: {e}"
        return None

    @functools.lru_cache(maxsize=4)  # noqa: B019 - a few short-lived stores per process
    def _probe_client(self, timeout: float) -> S3Client:
        return self.client(timeout=timeout, attempts=1)

    def aws_env(self) -> dict[str, str]:
        """The environment an AWS SDK (boto3, Hadoop S3A's environment provider) reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def flink_config(self) -> dict[str, str]:
        """Flink settings for its `flink-s3-fs-hadoop` plugin to use this server; credentials go
        in the JobManager's and TaskManagers' environment (aws_env), not in the configuration.

        Marker retention `keep`: the plugin's S3A (Hadoop 3.3.4) otherwise deletes the parent
        "directory" keys after each write, which versitygw's POSIX backend refuses while the
        folder is not empty (ErrDirectoryNotEmpty), and S3A retries for minutes."""
        return {
            "s3.endpoint": self.endpoint,
            "s3.endpoint.region": self.region,  # as the chart: no region lookup of S3A's own
            "s3.path.style.access": "true",
            "s3.directory.marker.retention": "keep",
        }

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class ObjectStoreServer:
    """A versitygw serving the folder `root` (each sub-folder is a bucket) on host:port.

    `start()` returns once the server answers an authenticated ListBuckets with this server's own
    credentials (so a different server already on the port never passes for ours); it raises
    ComponentStartError naming the log when the server exits or does not answer in time. `stop()`
    terminates it by PID and waits. Use as a context manager: `with ObjectStoreServer(root) as s3:`.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log: Path | None = None,
        region: str = REGION,
        request_log: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.root = root
        self.host = host
        self.port = port
        self.log = log if log is not None else root.parent / f"{root.name}.versitygw.log"
        self.region = region
        self.request_log = request_log
        self.timeout = timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._store: ObjectStore | None = None
        self._last: ObjectStore | None = None

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            raise RuntimeError("the object store is not started")
        return self._store

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exit_code(self) -> int | None:
        """The server's exit status once it has exited on its own; None while it runs."""
        return None if self._proc is None else self._proc.poll()

    def argv(self, port: int) -> list[str]:
        return server_argv(
            self.host, port, self.root, region=self.region, request_log=self.request_log
        )

    def start(self) -> ObjectStore:
        if self.running():
            return self.store
        # Started again after stop(): the same port and keys, so that clients configured for
        # the first start (pods with the key in a Secret) find it again as it was.
        store = self._last or ObjectStore(
            endpoint=f"http://{_url_host(self.host)}:{self.port or free_port(self.host)}",
            access_key=secrets.token_hex(10),
            secret_key=secrets.token_urlsafe(30),
            region=self.region,
        )
        argv = self.argv(int(store.endpoint.rsplit(":", 1)[1]))
        self.root.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {"PATH": "/usr/bin:/bin", **root_env(store.access_key, store.secret_key)}
        with self.log.open("ab") as out:
            out.write(f"\n{START_MARK} {COMPONENT}: {' '.join(argv)}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it
            )
        try:
            self._wait_ready(store)
        except BaseException:
            self.stop()
            raise
        self._store = self._last = store
        return store

    def _wait_ready(self, store: ObjectStore) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.timeout
        while True:
            code = proc.poll()
            if code is not None:
                cause = failure_cause([self.log]) or "no reason in its log"
                raise ComponentStartError(COMPONENT, f"exited with {code}: {cause}", self.log)
            reason = store.probe()
            if reason is None:
                return
            if time.monotonic() > deadline:
                raise ComponentStartError(
                    COMPONENT, f"not ready within {self.timeout:g} s ({reason})", self.log
                )
            time.sleep(0.1)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the server by PID, SIGKILL after `grace` seconds; always waits for it."""
        proc, self._proc, self._store = self._proc, None, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait()

    def __enter__(self) -> ObjectStore:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def ensure_bucket(store: ObjectStore, name: str) -> None:
    """Create bucket `name` unless this server already has it; EddylineError when refused."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - dev extra

    try:
        store.create_bucket(name)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise EddylineError(f"creating bucket {name} failed: {e}") from e
    except BotoCoreError as e:
        raise EddylineError(f"creating bucket {name} failed: {e}") from e


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
