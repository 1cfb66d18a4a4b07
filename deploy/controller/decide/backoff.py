"""Waiting before trying again: the backoff of failed actions and restarts, the shorter one
while Flink or Kafka cannot be reached, and the status after an action failed."""

from __future__ import annotations

from deploy.controller.decide.conditions import event
from deploy.controller.decide.decision import Decision
from deploy.controller.model import Action, Dispose, Submit
from deploy.spec import FlinkJob, JobStatus, Lifecycle, milliseconds

MAX_RETRY_MS = 60_000  # backoff cap while Flink or Kafka is unreachable


def backoff_ms(initial: str, maximum: str, attempt: int) -> int:
    """initial * 2^attempt, capped at maximum (attempt 0 → initial)."""
    first = milliseconds(initial)
    cap = milliseconds(maximum)
    return int(min(cap, first * 2 ** min(attempt, 30)))


def retry_later(d: Decision, message: str, reason: str = "Retrying") -> None:
    """A transient problem (Flink/Kafka unreachable): say so and back off; nothing else
    changes, so nothing is lost or done twice when it comes back."""
    st = d.st
    first = st.outages == 0
    st.outages += 1
    delay = min(MAX_RETRY_MS, 1000 * 2 ** min(st.outages - 1, 6))
    st.outage_retry_at = d.now + delay
    st.error = f"{message}; retrying in {delay / 1000:.0f} s"
    if first:
        d.note(reason, message, warning=True)


def action_failed(
    job: FlinkJob, status: JobStatus, action: Action, error: str, now: int
) -> JobStatus:
    """The status after `action` failed: the error, a warning event and a backoff."""
    st = status.model_copy(deep=True)
    if isinstance(action, Dispose):
        event(st, now, "DisposeFailed", f"{action.path}: {error}", warning=True)
        return st
    st.failures += 1
    policy = job.spec.restart_policy
    delay = backoff_ms(policy.backoff, policy.max_backoff, st.failures - 1)
    st.next_retry_at = now + delay
    st.error = f"{action.kind} failed: {error}; retrying in {delay / 1000:.0f} s"
    if isinstance(action, Submit) and st.failures > policy.max_retries:
        # The job cannot even start (its Python fails, say): stop trying until the spec changes.
        # The last attempt may have started it all the same (a timeout): keep its id, so a job
        # that does exist is found and adopted rather than left running untracked.
        if st.operation is not None and st.operation.new_job_id:
            st.job_id = st.operation.new_job_id
        st.operation = None
        st.lifecycle = Lifecycle.FAILED
        st.next_retry_at = None
        st.error = f"submission failed {st.failures} times: {error}"
        st.observed_generation = job.metadata.generation  # a spec change is worth a new try
    event(st, now, "ActionFailed", st.error, warning=True)
    return st
