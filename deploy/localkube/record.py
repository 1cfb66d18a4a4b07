"""What a run of the local cluster records, and who may touch it: `<root>/cluster.json` (every
process by PID, for `status`, `down` and the tests), the machine-wide owner file (one local
cluster per machine, since they would share the bridge and the ports) and the per-folder lock
(one `up` or `down` at a time)."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from deploy.errors import ClusterError
from deploy.localkube import procs
from deploy.localkube.layout import Layout
from deploy.localkube.procs import Proc

# The components in the order they start; stopped in the reverse of it.
ORDER = (
    "containerd",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "coredns",
    "kubelet",
    "kube-proxy",
)

# The folder whose cluster holds the bridge now: one local cluster per machine.
OWNER_FILE = Path("/run/eddyline-localkube.owner")


class ClusterState(BaseModel):
    """`<root>/cluster.json`: what runs, for `status`, `down` and the tests."""

    server: str
    procs: list[Proc] = Field(default_factory=list)
    netns_before: list[str] = Field(default_factory=list)
    shared_netns_dir: bool = False  # `up` made /run/netns a shared mount: `down` undoes it
    started_at: float = 0.0

    def proc(self, name: str) -> Proc | None:
        return next((p for p in self.procs if p.name == name), None)


def load_state(layout: Layout) -> ClusterState | None:
    try:
        return ClusterState.model_validate_json(layout.state_file.read_text())
    except FileNotFoundError:
        return None


def save_state(layout: Layout, state: ClusterState) -> None:
    # Written aside and renamed, so a crash mid-write never leaves a state `down` cannot read.
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(layout.state_file)


def start_recorded(layout: Layout, state: ClusterState, name: str, argv: Sequence[str]) -> Proc:
    """Start a component and record it at once: if `up` dies on the next line, `down` still
    knows its PID and stops it."""
    proc = procs.start(name, argv, layout.logs)
    state.procs.append(proc)
    save_state(layout, state)
    return proc


def check_owner(layout: Layout) -> None:
    """Refuse, in one line, to touch a cluster another checkout started and still runs."""
    try:
        other = Path(OWNER_FILE.read_text().strip())
    except OSError:
        return
    if other == layout.root.resolve():
        return
    theirs = load_state(Layout(other))
    if theirs is not None and any(p.alive() for p in theirs.procs):
        raise ClusterError(
            f"a local cluster from {other} is running (one per machine): stop it there with "
            "`make cluster-down`"
        )


def claim_owner(layout: Layout) -> None:
    OWNER_FILE.write_text(f"{layout.root.resolve()}\n")


def release_owner(layout: Layout) -> None:
    """Remove the owner file if it names this folder (another checkout's claim stays)."""
    with contextlib.suppress(OSError):
        if Path(OWNER_FILE.read_text().strip()) == layout.root.resolve():
            OWNER_FILE.unlink()


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """One `up` or `down` at a time for this folder."""
    layout.root.mkdir(parents=True, exist_ok=True)
    with layout.lock_file.open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"another `up` or `down` of {layout.root} is running; wait for it"
            ) from None
        yield
