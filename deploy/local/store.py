"""Where FlinkJobs live: the desired spec (written by users) and the observed status (written by
the controller). `SqliteStore` is the local one (one SQLite file in WAL mode under the state
folder), implementing the controller core's `JobStore` (deploy/controller/store.py), as the
Kubernetes store (custom resources) does.

Users and the controller never overwrite each other: spec changes touch only the document
column and bump `metadata.generation` (as the Kubernetes API server does); the controller
writes only the status column.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.errors import ControllerError
from deploy.spec import FlinkJob, FlinkJobSpec, JobStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    document TEXT NOT NULL,   -- apiVersion, kind, metadata, spec (JSON)
    status TEXT NOT NULL,     -- JobStatus (JSON), written only by the controller
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,    -- the job a controller acts on
    holder TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock first, so read-modify-write is atomic."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _row(document: str, status: str) -> FlinkJob:
        data = json.loads(document)
        data["status"] = json.loads(status)
        return FlinkJob.model_validate(data)

    def get(self, name: str) -> FlinkJob | None:
        with self._connect() as db:
            row = db.execute("SELECT document, status FROM jobs WHERE name=?", (name,)).fetchone()
        return self._row(*row) if row else None

    def list(self) -> list[FlinkJob]:
        with self._connect() as db:
            rows = db.execute("SELECT document, status FROM jobs ORDER BY name").fetchall()
        return [self._row(*r) for r in rows]

    def _must_get(self, db: sqlite3.Connection, name: str) -> FlinkJob:
        row = db.execute("SELECT document, status FROM jobs WHERE name=?", (name,)).fetchone()
        if row is None:
            raise ControllerError(f"no job named {name!r} (see `eddyline list`)")
        return self._row(*row)

    def _save_document(self, db: sqlite3.Connection, job: FlinkJob, status: JobStatus) -> None:
        db.execute(
            "INSERT INTO jobs(name, document, status, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET document=excluded.document, updated=excluded.updated",
            (
                job.name,
                json.dumps(job.document(with_status=False)),
                status.model_dump_json(by_alias=True),
                time.time(),
            ),
        )

    def apply(self, job: FlinkJob) -> FlinkJob:
        """Create the job, or change its spec (generation + 1 when the spec differs)."""
        with self._write() as db:
            row = db.execute(
                "SELECT document, status FROM jobs WHERE name=?", (job.name,)
            ).fetchone()
            if row is None:
                meta = job.metadata.model_copy(
                    update={
                        "generation": 1,
                        "creation_timestamp": now_iso(),
                        "deletion_timestamp": None,
                    }
                )
                new = job.model_copy(update={"metadata": meta, "status": JobStatus()})
                self._save_document(db, new, new.status)
                return new
            current = self._row(*row)
            if current.metadata.deletion_timestamp:
                raise ControllerError(
                    f"job {job.name!r} is being deleted; submit it again once it is gone"
                )
            return self._change(
                db, current, job.spec, job.metadata.labels, job.metadata.annotations
            )

    def _change(
        self,
        db: sqlite3.Connection,
        current: FlinkJob,
        spec: FlinkJobSpec,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> FlinkJob:
        generation = current.metadata.generation + (spec != current.spec)
        meta = current.metadata.model_copy(
            update={
                "generation": generation,
                "labels": current.metadata.labels if labels is None else labels,
                "annotations": current.metadata.annotations if annotations is None else annotations,
            }
        )
        new = current.model_copy(update={"metadata": meta, "spec": spec})
        self._save_document(db, new, current.status)
        return new

    def update_spec(self, name: str, change: Callable[[FlinkJobSpec], FlinkJobSpec]) -> FlinkJob:
        with self._write() as db:
            current = self._must_get(db, name)
            if current.metadata.deletion_timestamp:
                raise ControllerError(f"job {name!r} is being deleted")
            return self._change(db, current, change(current.spec))

    def request_delete(self, name: str, savepoint: bool) -> FlinkJob:
        with self._write() as db:
            current = self._must_get(db, name)
            annotations = dict(current.metadata.annotations)
            annotations[SAVEPOINT_ON_DELETE] = "true" if savepoint else "false"
            meta = current.metadata.model_copy(
                update={
                    "deletion_timestamp": current.metadata.deletion_timestamp or now_iso(),
                    "annotations": annotations,
                }
            )
            new = current.model_copy(update={"metadata": meta})
            self._save_document(db, new, current.status)
            return new

    def write_status(self, name: str, status: JobStatus, holder: str | None = None) -> bool:
        """False when the job is gone, or `holder` no longer holds its lease: nothing is
        written then."""
        with self._write() as db:
            if holder is not None:
                lease = db.execute(
                    "SELECT 1 FROM leases WHERE name=? AND holder=? AND expires>=?",
                    (name, holder, time.time()),
                ).fetchone()
                if lease is None:
                    return False
            cur = db.execute(
                "UPDATE jobs SET status=?, updated=? WHERE name=?",
                (status.model_dump_json(by_alias=True), time.time(), name),
            )
            return cur.rowcount == 1

    def forget(self, name: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM jobs WHERE name=?", (name,))
            db.execute("DELETE FROM leases WHERE name=?", (name,))

    def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take or renew the lease on `name`: only its holder acts on the job until it expires."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO leases(name, holder, expires) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, expires=excluded.expires "
                "WHERE leases.holder=excluded.holder OR leases.expires < ?",
                (name, holder, now + ttl, now),
            )
            row = db.execute("SELECT holder FROM leases WHERE name=?", (name,)).fetchone()
        return row is not None and row[0] == holder

    def release(self, name: str, holder: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM leases WHERE name=? AND holder=?", (name, holder))

    def lease_holder(self, name: str) -> tuple[str, float] | None:
        with self._connect() as db:
            row = db.execute("SELECT holder, expires FROM leases WHERE name=?", (name,)).fetchone()
        return (str(row[0]), float(row[1])) if row else None
