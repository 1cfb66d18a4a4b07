"""The local stack's TaskManagers as the benchmarks see them: their pids (from the stack's state
file), the CPU seconds and resident memory of their process trees (the JVM and its Python
workers) — what Nexmark counts as a query's cores."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import psutil

from deploy.local.stack import components
from deploy.local.stack import state as stack_state


def _tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of a process, its waited-for children and its live descendants."""
    t = proc.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in proc.children(recursive=True):
        try:
            c = child.cpu_times()
        except psutil.Error:
            continue
        total += c.user + c.system
    return total


def taskmanager_pids(state_dir: Path) -> list[int]:
    """Pids of the stack's TaskManager processes, from its state file."""
    current = stack_state.load(state_dir)
    found = current.components if current else []
    return [c.pid for c in found if c.kind == components.TASKMANAGER and c.pid]


def taskmanager_cpu(state_dir: Path) -> dict[int, float]:
    """CPU seconds each TaskManager's process tree has used so far, by pid — what Nexmark counts
    as a query's cores (the JobManager, Kafka and this process are not counted)."""
    out: dict[int, float] = {}
    for pid in taskmanager_pids(state_dir):
        try:
            out[pid] = _tree_cpu(psutil.Process(pid))
        except psutil.Error:
            continue
    return out


def taskmanager_rss(state_dir: Path) -> int | None:
    """Resident memory of the TaskManagers' process trees (JVM and Python workers), bytes."""
    total = 0
    seen = False
    for pid in taskmanager_pids(state_dir):
        try:
            proc = psutil.Process(pid)
            procs = [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
        for p in procs:
            try:
                total += p.memory_info().rss
                seen = True
            except psutil.Error:
                continue
    return total if seen else None


def cpu_used(before: Mapping[int, float], after: Mapping[int, float]) -> float | None:
    """CPU seconds used in between by the processes seen both times (None: none was)."""
    both = before.keys() & after.keys()
    return sum(after[pid] - before[pid] for pid in both) if both else None
