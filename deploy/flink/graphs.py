"""Will a job's state fit a new job graph? A pure comparison of the running job's vertices (with
the state each held in its latest completed checkpoint) and the planned graph's vertices.

Flink restores state by operator id. A vertex's id is its chain head's operator id: the hash of
the operator's uid when the job sets one (`.uid("ledger")`), else a hash of its place in the
graph (SQL jobs: the planner's operators). The same code and settings plan the same ids, so a
running vertex whose id the new graph lacks has no home there. Flink then refuses the restore
unless allowNonRestoredState says to drop that state (Checkpoints.loadAndValidateCheckpoint;
a vertex whose checkpointed state is empty is skipped without complaint).

Max parallelism is part of keyed state (its key groups): the restored vertex may run at most at
the state's max parallelism, and a max parallelism set explicitly (pipeline.max-parallelism)
must equal the state's; allowNonRestoredState does not help with either
(StateAssignmentOperation.checkParallelismPreconditions).

Compared per vertex: an operator chained behind another (not a chain head) is not seen apart;
its state is counted in its vertex's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Vertex:
    id: str
    name: str
    parallelism: int
    max_parallelism: int | None = None  # known for a running job's vertices
    state_size: int | None = None  # bytes in the latest completed checkpoint; None: unknown


@dataclass(frozen=True)
class Graph:
    vertices: tuple[Vertex, ...]
    checkpoint_id: int | None = None  # the checkpoint the state sizes come from

    def by_id(self) -> dict[str, Vertex]:
        return {v.id: v for v in self.vertices}


class Verdict(StrEnum):
    kept = "kept"  # restored into the same vertex of the new graph
    dropped = "dropped"  # has state and no vertex of the new graph takes it
    unrestorable = "unrestorable"  # a vertex takes it, but Flink cannot restore it there
    stateless = "stateless"  # held no state: nothing to restore, wherever it goes
    new = "new"  # only in the new graph: starts empty


@dataclass(frozen=True)
class OperatorCheck:
    id: str
    name: str
    verdict: Verdict
    state_size: int | None
    parallelism: int | None  # running
    new_parallelism: int | None
    max_parallelism: int | None
    reason: str = ""


@dataclass(frozen=True)
class StateCheck:
    operators: tuple[OperatorCheck, ...]
    allow_non_restored_state: bool

    def with_verdict(self, verdict: Verdict) -> list[OperatorCheck]:
        return [o for o in self.operators if o.verdict == verdict]

    @property
    def dropped(self) -> list[OperatorCheck]:
        return self.with_verdict(Verdict.dropped)

    @property
    def unrestorable(self) -> list[OperatorCheck]:
        return self.with_verdict(Verdict.unrestorable)

    @property
    def refused(self) -> bool:
        """Flink would refuse the restore: state that cannot be restored, or state dropped
        without allowNonRestoredState."""
        return bool(self.unrestorable) or (bool(self.dropped) and not self.allow_non_restored_state)


def compare(
    running: Graph,
    planned: Graph,
    *,
    allow_non_restored_state: bool,
    configured_max_parallelism: int | None = None,
) -> StateCheck:
    """Each running vertex's fate in `planned`, then the vertices only `planned` has.
    `configured_max_parallelism`: the new job's pipeline.max-parallelism, when set."""
    new = planned.by_id()
    checks = [_check(v, new.get(v.id), configured_max_parallelism) for v in running.vertices]
    old_ids = running.by_id()
    checks += [
        OperatorCheck(v.id, v.name, Verdict.new, None, None, v.parallelism, None)
        for v in planned.vertices
        if v.id not in old_ids
    ]
    return StateCheck(tuple(checks), allow_non_restored_state)


def _check(old: Vertex, new: Vertex | None, configured_max: int | None) -> OperatorCheck:
    stateful = old.state_size is None or old.state_size > 0  # unknown counts as state
    new_parallelism = new.parallelism if new is not None else None

    def result(verdict: Verdict, reason: str = "") -> OperatorCheck:
        return OperatorCheck(
            old.id,
            old.name,
            verdict,
            old.state_size,
            old.parallelism,
            new_parallelism,
            old.max_parallelism,
            reason,
        )

    if not stateful:
        return result(Verdict.stateless)
    if new is None:
        known = "" if old.state_size is not None else " (no completed checkpoint: assumed)"
        return result(Verdict.dropped, f"no vertex with id {old.id} in the new graph{known}")
    limit = old.max_parallelism
    if limit is not None and new.parallelism > limit:
        return result(
            Verdict.unrestorable,
            f"parallelism {new.parallelism} exceeds the state's max parallelism {limit}",
        )
    if limit is not None and configured_max is not None and configured_max != limit:
        return result(
            Verdict.unrestorable,
            f"pipeline.max-parallelism {configured_max} differs from the state's {limit} "
            "(key groups cannot be re-split)",
        )
    return result(Verdict.kept)
