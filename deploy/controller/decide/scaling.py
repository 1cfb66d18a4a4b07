"""Parallelism changes: the autoscaler's decisions, and rescaling in place on the adaptive
scheduler (the same job, its tasks restarted from the latest checkpoint) instead of a savepoint
upgrade."""

from __future__ import annotations

from typing import Any

from deploy.controller import autoscale
from deploy.controller.decide.decision import Decision, Plan
from deploy.controller.decide.specs import effective_spec
from deploy.controller.decide.upgrades import upgrade
from deploy.controller.model import JobObservation, Rescale
from deploy.spec import AutoscalerSpec, Lifecycle, Operation

# An in-place rescale waits for a checkpoint and free slots; past this the job is taken as it
# runs (smaller, when slots are short) rather than waited on forever.
RESCALE_TIMEOUT_MS = 3 * 60_000
MAX_DECISIONS = 10  # autoscaler decisions kept in the status


def autoscale_job(d: Decision, job: JobObservation) -> Plan | None:
    """Evaluate the autoscaler on the recent metrics; a rescale is a savepoint upgrade to
    the chosen parallelism (the spec's own parallelism stays the user's)."""
    st, obs = d.st, d.obs
    a = dict(st.autoscaler)
    history = autoscale.History(
        last_rescale_at=a.get("lastRescaleAt"),
        job_started_at=st.running_since,
        scale_down_wanted_since=a.get("scaleDownWantedSince"),
        rescales=int(a.get("rescales", 0)),
    )
    choice = autoscale.decide(_bounds(d), list(obs.samples), history, d.now, obs.partitions)
    entry: dict[str, Any] = {
        "time": d.now,
        "current": obs.samples[-1].parallelism,
        "parallelism": choice.parallelism,
        "act": choice.act,
        "reason": choice.reason,
        "inputs": choice.inputs,
    }
    a["last"] = entry
    a["scaleDownWantedSince"] = choice.scale_down_wanted_since
    if not choice.act:
        st.autoscaler = a
        return None
    applied = "in place" if obs.adaptive else "savepoint upgrade"
    a["decisions"] = [*a.get("decisions", []), {**entry, "applied": applied}][-MAX_DECISIONS:]
    a["parallelism"] = choice.parallelism
    a["base"] = d.job.spec.job.parallelism
    a["lastRescaleAt"] = d.now
    a["rescales"] = int(a.get("rescales", 0)) + 1
    a["scaleDownWantedSince"] = None
    st.autoscaler = a
    d.spec = effective_spec(d.job.spec, st)
    if obs.adaptive:
        return rescale(d, job, f"autoscaler: {choice.reason}")
    return upgrade(d, job, f"autoscaler: {choice.reason}")


def _bounds(d: Decision) -> AutoscalerSpec:
    """The spec's bounds, the upper one lowered to the slots the job could get."""
    bounds = d.spec.autoscaler
    slots = d.obs.slots_for_job
    if slots is not None and slots < bounds.max_parallelism:
        bounds = bounds.model_copy(update={"max_parallelism": max(bounds.min_parallelism, slots)})
    return bounds


def rescale(d: Decision, job: JobObservation, why: str) -> Plan:
    """Change the parallelism in place: the adaptive scheduler restarts the job's tasks from
    its latest checkpoint under the same job id — no savepoint, no new submission."""
    target = d.spec.job.parallelism
    d.st.lifecycle = Lifecycle.UPGRADING
    d.st.operation = Operation(
        kind="rescale",
        step="rescaling",
        started_at=d.now,
        job_id=job.job_id,
        spec=d.spec,
        generation=d.job.metadata.generation,
    )
    d.actions.append(Rescale(job.job_id, target))
    d.note("Rescaling", f"{why}: job {job.job_id} {job.parallelism} → {target} in place")
    return d.plan()


def continue_rescale(d: Decision, op: Operation) -> Plan:
    st, job = d.st, d.obs.job
    assert op.spec is not None
    assert op.job_id is not None
    target = op.spec.job.parallelism
    if job is None or job.terminal:
        # Ended meanwhile: what to do about that (restart from its state) is the next decision.
        st.operation = None
        d.note("RescaleAborted", f"job {op.job_id} ended while rescaling", warning=True)
        return d.plan()
    took = (d.now - op.started_at) / 1000
    if job.parallelism == target and job.all_running and job.state == "RUNNING":
        _finish_rescale(d, op, f"job {job.job_id} runs at {target} (in place, {took:.0f} s)")
        return d.plan()
    if d.now - op.started_at > RESCALE_TIMEOUT_MS:
        # Fewer free slots than asked: Flink runs it as large as it can. Taken as done, so
        # the job is not restarted over and over; the warning says why.
        _finish_rescale(
            d,
            op,
            f"job {job.job_id} runs at {job.parallelism} of {target} after {took:.0f} s: "
            "not enough free task slots",
            warning=True,
        )
        return d.plan()
    if job.requested_parallelism != target and not d.waiting():
        d.actions.append(Rescale(op.job_id, target))  # not sent yet, or lost: again
    return d.plan()


def _finish_rescale(d: Decision, op: Operation, message: str, warning: bool = False) -> None:
    st = d.st
    st.operation = None
    st.last_reconciled_spec = op.spec
    st.observed_generation = op.generation or d.job.metadata.generation
    st.running_since = None  # its tasks restarted: it earns STABLE (and its metrics) again
    st.lifecycle = Lifecycle.RUNNING
    d.note("Rescaled", message, warning=warning)
