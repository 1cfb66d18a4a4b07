"""The controller's side of a shipped artifact (spec.job.artifact): whether it can be handed to
Flink now, and the Python option that hands it over."""

from __future__ import annotations

import re
import threading
import zipfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlparse

from deploy.errors import FlinkError, SpecError
from deploy.flink import artifacts
from deploy.flink.rest import FlinkClient
from deploy.spec import ArtifactSpec

# What Flink names an upload of `submit --kube`: its own id, then the name it was sent under.
_UPLOADED = re.compile(r"[0-9a-f-]{36}_eddyline-artifact-[0-9a-f]{64}\.jar")
# Checked files by (path, size, mtime): hashing a large artifact on every reconcile would be waste.
_VERIFIED: dict[tuple[str, int, int], tuple[str, frozenset[str]]] = {}  # sha256, member names
_LOCK = threading.Lock()


class Check(NamedTuple):
    problem: str | None = None  # it can never run as it is: refused
    waiting: str | None = None  # not there (yet, again): the start waits


def path_of(artifact: ArtifactSpec) -> Path:
    """Where the JobManager reads the artifact (a file:/// URI's path)."""
    return Path(unquote(urlparse(artifact.uri).path))


def python_files(artifact: ArtifactSpec) -> str:
    """The `python.files` value: Flink's driver and Python workers unpack a .zip listed there
    and put it on PYTHONPATH (a .jar goes on it as it is, imported with zipimport)."""
    return str(path_of(artifact))


def check(client: FlinkClient, artifact: ArtifactSpec | None, entry: str) -> Check:
    """Whether `artifact` can be handed to Flink now. Locally the controller opens it: checksum,
    members, and `entry` must be a module of it (so a hand-written spec cannot start any module
    the cluster can import). An upload on the JobManager cannot be opened from here: its name
    must be exactly what `submit --kube` uploads."""
    if artifact is None:
        return Check()
    path = path_of(artifact)
    if ".." in path.parts:
        return Check(problem=f"spec.job.artifact.uri: {artifact.uri!r} has '..'")
    if artifact.store == "jobmanager":
        return _on_jobmanager(client, artifact, path)
    return _local(artifact, path, entry)


def _local(artifact: ArtifactSpec, path: Path, entry: str) -> Check:
    # Only what `eddyline submit` stored: a content-addressed zip in an artifacts folder.
    if path.name != f"{artifact.sha256}.zip" or path.parent.name != "artifacts":
        return Check(
            problem=f"spec.job.artifact.uri: {artifact.uri!r} is not an artifact `eddyline "
            "submit` stored (<state>/artifacts/<sha256>.zip)"
        )
    try:
        st = path.stat()
    except OSError:
        return Check(
            waiting=f"the job's artifact {path} is missing on this machine: submit the spec "
            "again with `eddyline submit` to store it"
        )
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        known = _VERIFIED.get(key)
    if known is None or known[0] != artifact.sha256:
        try:
            artifacts.verify(path, artifact.sha256, artifacts.Limits.from_env())
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
        except (SpecError, zipfile.BadZipFile, OSError) as e:
            problems = e.problems if isinstance(e, SpecError) else [str(e)]
            return Check(problem="; ".join(problems))
        known = (artifact.sha256, frozenset(names))
        with _LOCK:
            _VERIFIED[key] = known
    try:
        artifacts.check_entry(entry, set(known[1]))
    except SpecError as e:
        return Check(problem="; ".join(e.problems))
    return Check()


def _on_jobmanager(client: FlinkClient, artifact: ArtifactSpec, path: Path) -> Check:
    if not _UPLOADED.fullmatch(path.name) or not path.name.endswith(
        f"_eddyline-artifact-{artifact.sha256}.jar"
    ):
        return Check(
            problem=f"spec.job.artifact.uri: {artifact.uri!r} is not an artifact `eddyline "
            "submit --kube` uploaded"
        )
    try:
        ids = {str(entry.get("id")) for entry in client.jars()}
    except FlinkError as e:
        return Check(waiting=f"cannot list the JobManager's uploads: {e}")
    if path.name not in ids:
        return Check(
            waiting=f"the JobManager no longer has the job's artifact {path.name} (a new "
            "JobManager pod starts without uploads): submit the spec again with `eddyline "
            "submit --kube` to upload it"
        )
    return Check()
