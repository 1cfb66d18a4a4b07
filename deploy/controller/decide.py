"""The controller's decisions: a pure function of (FlinkJob, Observation) → (new status, actions).

No I/O and no clock here: the observation carries the time, and ids for new jobs and savepoint
triggers are derived from the job's name and that time. The loop writes the returned status
*before* it performs the actions, so every action is recorded with the ids it will use; a
controller that dies at any point repeats the same requests after a restart, and Flink makes them
idempotent (a trigger id names one savepoint; a job id can only be submitted once).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from deploy.controller import autoscale
from deploy.controller.model import (
    Action,
    Cancel,
    Dispose,
    Forget,
    JobObservation,
    Observation,
    Rescale,
    StopWithSavepoint,
    Submit,
    TriggerObservation,
    TriggerSavepoint,
)
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.spec import (
    Condition,
    Event,
    FlinkJob,
    FlinkJobSpec,
    JobState,
    JobStatus,
    Lifecycle,
    Operation,
    SavepointInfo,
    UpgradeMode,
    milliseconds,
)

STABLE_AFTER_MS = 30_000  # RUNNING this long without a restart → STABLE
MAX_EVENTS = 30
MAX_RETRY_MS = 60_000  # backoff cap while Flink or Kafka is unreachable
# With JobManager HA, how long a job the JobManager no longer knows may take to come back (the
# new leader's election, then the job's recovery from the HA store) before it counts as lost and
# the controller starts it again itself. Flink's own lease is ~15 s; recovery loads the job graph
# and its checkpoint from the state bucket.
HA_RECOVERY_MS = 180_000
SAVEPOINT_TIMEOUT_MS = 10 * 60_000
# An in-place rescale waits for a checkpoint and free slots; past this the job is taken as it
# runs (smaller, when slots are short) rather than waited on forever.
RESCALE_TIMEOUT_MS = 3 * 60_000


@dataclass
class Plan:
    status: JobStatus
    actions: list[Action] = field(default_factory=list)


def new_id(name: str, now: int, purpose: str) -> str:
    """A 32-hex-digit id (Flink's JobID/trigger format), the same for the same inputs."""
    return hashlib.md5(f"{name}/{purpose}/{now}".encode(), usedforsecurity=False).hexdigest()


def backoff_ms(initial: str, maximum: str, attempt: int) -> int:
    """initial * 2^attempt, capped at maximum (attempt 0 → initial)."""
    first = milliseconds(initial)
    cap = milliseconds(maximum)
    return int(min(cap, first * 2 ** min(attempt, 30)))


def event(status: JobStatus, now: int, reason: str, message: str, warning: bool = False) -> None:
    status.events.append(
        Event(time=now, type="Warning" if warning else "Normal", reason=reason, message=message)
    )
    del status.events[:-MAX_EVENTS]


def set_condition(
    status: JobStatus, now: int, type_: str, ok: bool, reason: str, message: str
) -> None:
    value: Literal["True", "False"] = "True" if ok else "False"
    for c in status.conditions:
        if c.type == type_:
            if c.status != value:
                c.last_transition_time = now
            c.status, c.reason, c.message = value, reason, message
            return
    status.conditions.append(
        Condition(
            type=type_, status=value, reason=reason, message=message, last_transition_time=now
        )
    )


def needs_upgrade(spec: FlinkJobSpec, deployed: FlinkJobSpec | None) -> bool:
    return deployed is None or spec.deployment() != deployed.deployment()


def parallelism_only(spec: FlinkJobSpec, deployed: FlinkJobSpec | None) -> bool:
    """Whether the only difference to the deployed spec is the job's parallelism."""
    if deployed is None or spec.job.parallelism == deployed.job.parallelism:
        return False
    same = spec.with_job(parallelism=deployed.job.parallelism)
    return same.deployment() == deployed.deployment()


def latest_state(status: JobStatus) -> str | None:
    """Where a restarted job resumes: the newer of the last checkpoint and the last savepoint."""
    best: tuple[int, str] | None = None
    if status.savepoints:
        sp = max(status.savepoints, key=lambda s: s.time)
        best = (sp.time, sp.path)
    cp_time = status.last_checkpoint_time
    if status.last_checkpoint_path and cp_time is not None and (best is None or cp_time > best[0]):
        best = (cp_time, status.last_checkpoint_path)
    if best is None and status.upgrade_savepoint_path:
        return status.upgrade_savepoint_path
    return best[1] if best else None


def effective_spec(spec: FlinkJobSpec, status: JobStatus) -> FlinkJobSpec:
    """The spec the job runs: the autoscaler's parallelism replaces the spec's while the
    autoscaler is enabled and the user has not set a new parallelism since it decided."""
    chosen = status.autoscaler.get("parallelism")
    if spec.autoscaler.enabled and chosen and status.autoscaler.get("base") == spec.job.parallelism:
        return spec.with_job(parallelism=int(chosen))
    return spec


class _Decision:
    def __init__(self, job: FlinkJob, obs: Observation) -> None:
        self.job = job
        self.spec = effective_spec(job.spec, job.status)
        self.obs = obs
        self.now = obs.now
        self.st = job.status.model_copy(deep=True)
        self.actions: list[Action] = []

    # -- helpers ----------------------------------------------------------------------------

    def note(self, reason: str, message: str, warning: bool = False) -> None:
        event(self.st, self.now, reason, message, warning)

    def plan(self) -> Plan:
        return Plan(self.st, self.actions)

    def reconciled(self) -> None:
        self.st.last_reconciled_spec = self.spec
        self.st.observed_generation = self.job.metadata.generation

    def record_savepoint(self, path: str, trigger: str) -> None:
        if not any(s.path == path for s in self.st.savepoints):
            self.st.savepoints.append(SavepointInfo(path=path, time=self.now, trigger=trigger))

    def submit(self, kind: str, restore: str | None) -> None:
        """Start a new job (an id fixed now, written before it is sent)."""
        job_id = new_id(self.job.name, self.now, kind)
        self.st.missing_since = None
        self.st.operation = Operation(
            kind=kind,
            step="submitting",
            started_at=self.now,
            new_job_id=job_id,
            savepoint_path=restore,
            spec=self.spec,
            generation=self.job.metadata.generation,
        )
        self.st.lifecycle = Lifecycle.UPGRADING if kind == "upgrade" else Lifecycle.DEPLOYING
        self.actions.append(Submit(job_id, self.spec, restore))
        self.note("Submitting", f"job {job_id}" + (f" from {restore}" if restore else " (fresh)"))

    def stop_with_savepoint(self, kind: str, job_id: str) -> None:
        trigger = new_id(self.job.name, self.now, f"{kind}-trigger")
        self.st.operation = Operation(
            kind=kind,
            step="stopping",
            started_at=self.now,
            job_id=job_id,
            trigger_id=trigger,
            trigger=kind,
            upgrade_mode=UpgradeMode.savepoint,
        )
        self.actions.append(StopWithSavepoint(job_id, trigger))
        self.note("StoppingWithSavepoint", f"{kind}: stopping job {job_id} with a savepoint")

    def retry_later(self, message: str) -> None:
        """A transient problem (Flink/Kafka unreachable): say so and back off; nothing else
        changes, so nothing is lost or done twice when it comes back."""
        first = self.st.outages == 0
        self.st.outages += 1
        delay = min(MAX_RETRY_MS, 1000 * 2 ** min(self.st.outages - 1, 6))
        self.st.outage_retry_at = self.now + delay
        self.st.error = f"{message}; retrying in {delay / 1000:.0f} s"
        if first:
            self.note("Retrying", message, warning=True)

    def waiting(self) -> bool:
        return self.st.next_retry_at is not None and self.now < self.st.next_retry_at

    # -- the rules --------------------------------------------------------------------------

    def decide(self) -> Plan:
        obs, st = self.obs, self.st
        if obs.flink_error:
            set_condition(st, self.now, "FlinkReachable", False, "Unreachable", obs.flink_error)
            self.retry_later(f"Flink unreachable: {obs.flink_error}")
            return self.plan()
        set_condition(st, self.now, "FlinkReachable", True, "Answering", "")
        if st.outages and not self.obs.kafka_error:
            st.outages = 0
            st.outage_retry_at = None
            if not self.obs.kafka_error:
                st.error = None
                self.note("Recovered", "Flink and Kafka answer again")
        self.observe_job(obs.job)
        retained = obs.retained_checkpoint
        if retained is not None and retained[1] > (st.last_checkpoint_time or 0):
            st.last_checkpoint_path, st.last_checkpoint_time = retained
        if self.job.metadata.deletion_timestamp:
            return self.delete()
        if st.operation is not None:
            return self.continue_operation(st.operation)
        job = obs.job
        if st.job_id is None or job is None or job.terminal:
            return self.no_live_job(job)
        return self.live_job(job)

    def observe_job(self, job: JobObservation | None) -> None:
        st = self.st
        if job is None:
            return
        if st.missing_since is not None and job.job_id == st.job_id:
            st.missing_since = None
            self.note("Recovered", f"job {job.job_id} is back ({job.state}), recovered by Flink")
        st.flink_state = job.state
        if job.parallelism is not None:
            st.parallelism = job.parallelism
        if job.latest_checkpoint:
            st.last_checkpoint_path = job.latest_checkpoint
            st.last_checkpoint_time = job.latest_checkpoint_time
        if job.start_time:
            st.job_started_at = job.start_time

    # deletion ------------------------------------------------------------------------------

    def delete(self) -> Plan:  # noqa: PLR0911 - one return per case
        st, obs = self.st, self.obs
        st.lifecycle = Lifecycle.DELETING
        want_savepoint = self.job.metadata.annotations.get(SAVEPOINT_ON_DELETE) == "true"
        op = st.operation
        if op is not None and op.kind == "delete":
            trig = obs.trigger
            if trig is not None and trig.state == "COMPLETED" and trig.location:
                self.record_savepoint(trig.location, "delete")
                if obs.job is not None and obs.job.alive:
                    return self.plan()  # savepoint done, the job still winding down: wait
                self.note("Deleted", f"final savepoint {trig.location}")
                self.actions.append(Forget())
                return self.plan()
            if trig is not None and trig.state == "FAILED":
                st.operation = None
                st.error = f"final savepoint failed: {trig.failure}; trying again"
                self.note("SavepointFailed", st.error, warning=True)
                return self.plan()
            job = obs.job
            if job is None and self.awaiting_recovery():
                return self.plan()
            if job is None or job.terminal:
                if job is not None and job.latest_savepoint:
                    self.record_savepoint(job.latest_savepoint, "delete")
                self.actions.append(Forget())
                return self.plan()
            if (trig is None or trig.state == "UNKNOWN") and not self.waiting():
                self.actions.append(StopWithSavepoint(op.job_id or job.job_id, op.trigger_id or ""))
            return self.plan()
        # Whatever was being started or stopped: stop it (every job this spec may have made).
        live = [j for j in (obs.job, obs.new_job) if j is not None and j.alive]
        if obs.job is None and not live and self.awaiting_recovery():
            return self.plan()  # cancel (or stop) it once Flink has it back, not forget it
        if want_savepoint and live:
            if self.waiting():
                return self.plan()
            st.job_id = live[0].job_id  # observe the job being stopped, not an ended one
            self.stop_with_savepoint("delete", live[0].job_id)
            self.actions.extend(Cancel(j.job_id) for j in live[1:])
            return self.plan()
        self.actions.extend(Cancel(j.job_id) for j in live)
        self.note("Deleted", "cancelled" if live else "no job was running")
        self.actions.append(Forget())
        return self.plan()

    # operations in flight ------------------------------------------------------------------

    def continue_operation(self, op: Operation) -> Plan:
        if op.step == "submitting":
            return self.continue_submit(op)
        if op.step == "cancelling":
            return self.continue_cancel(op)
        if op.step == "stopping":
            return self.continue_stop(op)
        if op.step == "rescaling":
            return self.continue_rescale(op)
        return self.continue_savepoint(op)

    def continue_submit(self, op: Operation) -> Plan:
        st, new = self.st, self.obs.new_job
        submitted = op.spec or self.spec
        if new is not None:
            st.operation = None
            st.job_id = new.job_id
            st.flink_state = new.state
            st.job_started_at = new.start_time or self.now
            st.running_since = None  # a new job: it has to earn STABLE itself
            st.failures = 0
            st.next_retry_at = None
            st.error = None
            if op.savepoint_path:
                st.upgrade_savepoint_path = op.savepoint_path
            # What was sent, not what the spec says now: a change made meanwhile is still to do.
            st.last_reconciled_spec = submitted
            st.observed_generation = op.generation or self.job.metadata.generation
            st.last_restart_nonce = submitted.restart_nonce
            st.lifecycle = Lifecycle.RUNNING if new.all_running else Lifecycle.DEPLOYING
            self.observe_job(new)
            self.note("Deployed", f"job {new.job_id} is {new.state}")
            return self.plan()
        if self.waiting():
            return self.plan()
        # Not there yet: send the same submission again (Flink refuses a second job with the id).
        assert op.new_job_id is not None
        self.actions.append(Submit(op.new_job_id, submitted, op.savepoint_path))
        return self.plan()

    def continue_cancel(self, op: Operation) -> Plan:
        job = self.obs.job
        if job is None and self.awaiting_recovery():
            return self.plan()  # not cancelled yet, only unknown: starting another would run two
        if job is not None and job.alive:
            if not self.waiting():
                self.actions.append(Cancel(job.job_id))
            return self.plan()
        restore = None
        if op.upgrade_mode == UpgradeMode.last_state:
            restore = (job.latest_checkpoint if job else None) or latest_state(self.st)
        self.submit(op.kind, restore)
        return self.plan()

    def continue_stop(self, op: Operation) -> Plan:
        st, trig, job = self.st, self.obs.trigger, self.obs.job
        location: str | None = None
        if op.savepoint_path and (trig is None or trig.state != "COMPLETED"):
            # Seen completed before, and the answer is gone since (a restarted JobManager).
            trig = TriggerObservation("COMPLETED", location=op.savepoint_path)
        if trig is not None and trig.state == "COMPLETED" and trig.location:
            location = trig.location
            if job is not None and job.alive:
                # The savepoint is done but the job is still winding down: note where it is and
                # wait, so the old and the new job never run side by side.
                op.savepoint_path = location
                st.operation = op
                return self.plan()
        elif trig is not None and trig.state == "FAILED":
            st.operation = None
            st.failures += 1
            st.next_retry_at = self.now + backoff_ms(
                self.spec.restart_policy.backoff,
                self.spec.restart_policy.max_backoff,
                st.failures - 1,
            )
            st.error = f"{op.kind}: the savepoint failed: {trig.failure}"
            st.lifecycle = Lifecycle.RUNNING if job is not None and job.alive else st.lifecycle
            self.note("SavepointFailed", st.error, warning=True)
            return self.plan()
        elif job is not None and job.alive:
            if self.now - op.started_at > SAVEPOINT_TIMEOUT_MS:
                st.operation = None
                st.error = f"{op.kind}: the savepoint did not finish in time"
                self.note("SavepointTimeout", st.error, warning=True)
            elif (trig is None or trig.state == "UNKNOWN") and not self.waiting():
                # Never sent, or Flink forgot it (a restarted JobManager): the same request again.
                assert op.job_id
                assert op.trigger_id
                self.actions.append(StopWithSavepoint(op.job_id, op.trigger_id))
            return self.plan()
        elif (
            job is not None
            and job.latest_savepoint
            and (job.latest_savepoint_time or 0) >= op.started_at
        ):
            location = job.latest_savepoint  # stopped, but the trigger's answer was lost
        elif job is None and self.awaiting_recovery():
            return self.plan()  # unknown, not stopped: a recovered old job beside a new one
        else:
            # The job ended without our savepoint (failed meanwhile): its last checkpoint is the
            # newest consistent state there is.
            location = latest_state(st)
            self.note(
                "SavepointMissing",
                f"job ended before its savepoint; resuming from {location or 'nothing (fresh)'}",
                warning=True,
            )
        if location is not None and location != latest_state(st):
            self.record_savepoint(location, op.trigger or op.kind)
        if op.kind == "suspend":
            st.operation = None
            st.upgrade_savepoint_path = location
            st.job_id = None
            st.flink_state = "FINISHED"
            st.lifecycle = Lifecycle.SUSPENDED
            self.reconciled()
            self.note("Suspended", f"savepoint {location}")
            return self.plan()
        # upgrade (or restart request): the savepoint path is now in the status; then resubmit.
        st.upgrade_savepoint_path = location
        self.submit(op.kind, location)
        return self.plan()

    def continue_rescale(self, op: Operation) -> Plan:
        st, job = self.st, self.obs.job
        assert op.spec is not None
        assert op.job_id is not None
        target = op.spec.job.parallelism
        if job is None or job.terminal:
            # Ended meanwhile: what to do about that (restart from its state) is the next decision.
            st.operation = None
            self.note("RescaleAborted", f"job {op.job_id} ended while rescaling", warning=True)
            return self.plan()
        took = (self.now - op.started_at) / 1000
        if job.parallelism == target and job.all_running and job.state == "RUNNING":
            self.finish_rescale(op, f"job {job.job_id} runs at {target} (in place, {took:.0f} s)")
            return self.plan()
        if self.now - op.started_at > RESCALE_TIMEOUT_MS:
            # Fewer free slots than asked: Flink runs it as large as it can. Taken as done, so
            # the job is not restarted over and over; the warning says why.
            self.finish_rescale(
                op,
                f"job {job.job_id} runs at {job.parallelism} of {target} after {took:.0f} s: "
                "not enough free task slots",
                warning=True,
            )
            return self.plan()
        if job.requested_parallelism != target and not self.waiting():
            self.actions.append(Rescale(op.job_id, target))  # not sent yet, or lost: again
        return self.plan()

    def finish_rescale(self, op: Operation, message: str, warning: bool = False) -> None:
        st = self.st
        st.operation = None
        st.last_reconciled_spec = op.spec
        st.observed_generation = op.generation or self.job.metadata.generation
        st.running_since = None  # its tasks restarted: it earns STABLE (and its metrics) again
        st.lifecycle = Lifecycle.RUNNING
        self.note("Rescaled", message, warning=warning)

    def continue_savepoint(self, op: Operation) -> Plan:
        st, trig, job = self.st, self.obs.trigger, self.obs.job
        if trig is not None and trig.state == "COMPLETED" and trig.location:
            self.record_savepoint(trig.location, op.trigger or "manual")
            st.operation = None
            st.failures = 0
            self.note("SavepointTaken", f"{op.trigger}: {trig.location}")
        elif trig is not None and trig.state == "FAILED":
            st.operation = None
            self.note("SavepointFailed", f"{op.trigger}: {trig.failure}", warning=True)
        elif job is None or job.terminal:
            st.operation = None  # the job is gone; what to do about that is the next decision
        elif self.now - op.started_at > SAVEPOINT_TIMEOUT_MS:
            st.operation = None
            self.note("SavepointTimeout", f"{op.trigger}: did not finish in time", warning=True)
        elif (trig is None or trig.state == "UNKNOWN") and not self.waiting():
            assert op.job_id
            assert op.trigger_id
            self.actions.append(TriggerSavepoint(op.job_id, op.trigger_id))
        return self.plan()

    # no job running ------------------------------------------------------------------------

    def no_live_job(self, job: JobObservation | None) -> Plan:  # noqa: PLR0911
        st, spec = self.st, self.spec
        changed = self.job.metadata.generation != st.observed_generation
        restart_requested = spec.restart_nonce != st.last_restart_nonce
        st.running_since = None
        if st.job_id is not None and st.lifecycle != Lifecycle.FAILED:
            return self.ended(job)
        if spec.job.state == JobState.suspended:
            if st.lifecycle != Lifecycle.SUSPENDED:
                self.note("Suspended", "the spec asks for a suspended job")
            st.lifecycle = Lifecycle.SUSPENDED
            st.job_id = None
            self.reconciled()
            return self.plan()
        if st.lifecycle == Lifecycle.FAILED and not changed and not restart_requested:
            return self.plan()  # stays failed until the spec changes or a restart is asked for
        if self.waiting():
            return self.plan()
        if self.obs.precheck_error:
            st.lifecycle = Lifecycle.FAILED
            st.error = self.obs.precheck_error
            st.observed_generation = self.job.metadata.generation  # refused; never deployed
            self.note("Refused", self.obs.precheck_error, warning=True)
            return self.plan()
        if self.obs.kafka_error:
            self.retry_later(self.obs.kafka_error)
            return self.plan()
        if spec.job.upgrade_mode == UpgradeMode.stateless and st.lifecycle != Lifecycle.SUSPENDED:
            restore = None if st.last_reconciled_spec else spec.job.initial_savepoint_path
        else:
            restore = latest_state(st) or spec.job.initial_savepoint_path
        if st.lifecycle == Lifecycle.FAILED:
            st.restarts = 0
        self.submit("submit", restore)
        return self.plan()

    def ended(self, job: JobObservation | None) -> Plan:
        """The job the controller runs is over, or Flink no longer knows it."""
        st = self.st
        if job is None and self.awaiting_recovery():
            st.lifecycle = Lifecycle.DEPLOYING  # not RUNNING/STABLE while Flink has no such job
            return self.plan()
        if job is None and st.missing_since is not None:
            return self.failed(
                f"job {st.job_id} is gone from Flink and was not recovered by its high "
                f"availability within {HA_RECOVERY_MS // 1000} s"
            )
        if job is None:
            return self.failed(f"job {st.job_id} is gone from Flink (JobManager restarted?)")
        if job.state == "FAILED":
            return self.failed(job.root_exception or "the job failed")
        st.lifecycle = Lifecycle.FAILED
        st.error = f"job {job.job_id} ended {job.state} outside the controller"
        self.note("EndedOutside", st.error + "; change restartNonce to start it again", True)
        return self.plan()

    def awaiting_recovery(self) -> bool:
        """With JobManager HA, the job Flink does not know right now may be coming back under
        its id: wait (up to HA_RECOVERY_MS) before anything that would start, forget or replace
        it — a second copy, or a deleted FlinkJob whose job Flink then recovers."""
        return self.obs.high_availability and self.st.job_id is not None and self.recovering()

    def recovering(self) -> bool:
        """Flink (with HA) no longer knows the job: a new JobManager is taking over and will
        recover it under the same id. Starting it again meanwhile would run it twice, so wait,
        up to HA_RECOVERY_MS."""
        st = self.st
        if st.missing_since is None:
            st.missing_since = self.now
            st.flink_state = None
            self.note(
                "AwaitingRecovery",
                f"job {st.job_id} is unknown to the JobManager; with high availability Flink "
                f"recovers it under the same id (waiting up to {HA_RECOVERY_MS // 1000} s)",
            )
            return True
        return self.now - st.missing_since < HA_RECOVERY_MS

    def failed(self, cause: str) -> Plan:
        st, policy = self.st, self.spec.restart_policy
        first_line = cause.strip().splitlines()[0][:1000] if cause.strip() else cause
        if st.restarts >= policy.max_retries:
            st.lifecycle = Lifecycle.FAILED
            st.error = f"failed after {st.restarts} restarts: {first_line}"
            st.next_retry_at = None
            self.note("Failed", st.error, warning=True)
            return self.plan()
        if st.next_retry_at is None:
            delay = backoff_ms(policy.backoff, policy.max_backoff, st.restarts)
            st.next_retry_at = self.now + delay
            st.error = (
                f"job failed: {first_line}; restarting in {delay / 1000:.0f} s "
                f"(restart {st.restarts + 1} of {policy.max_retries})"
            )
            self.note("JobFailed", st.error, warning=True)
            return self.plan()
        if self.now < st.next_retry_at:
            return self.plan()
        st.restarts += 1
        st.next_retry_at = None
        restore = None if self.spec.job.upgrade_mode == UpgradeMode.stateless else latest_state(st)
        self.submit("restart", restore)
        return self.plan()

    # a live job ----------------------------------------------------------------------------

    def live_job(self, job: JobObservation) -> Plan:  # noqa: PLR0911 - one return per rule
        st, spec = self.st, self.spec
        self.track_lifecycle(job)
        if self.waiting():
            return self.plan()
        if spec.job.state == JobState.suspended:
            st.lifecycle = Lifecycle.UPGRADING
            self.stop_with_savepoint("suspend", job.job_id)
            return self.plan()
        restart = spec.restart_nonce != st.last_restart_nonce
        if needs_upgrade(spec, st.last_reconciled_spec) or restart:
            in_place = self.obs.adaptive and parallelism_only(spec, st.last_reconciled_spec)
            if in_place and not restart:
                return self.rescale(job, "the spec's parallelism changed")
            return self.upgrade(job, "restartNonce changed" if restart else "the spec changed")
        self.reconciled()  # a change that needs no restart (autoscaler settings, …)
        if spec.autoscaler.enabled and self.obs.samples:
            scaled = self.autoscale(job)
            if scaled is not None:
                return scaled
        if spec.savepoint_trigger_nonce != st.last_savepoint_nonce:
            st.last_savepoint_nonce = spec.savepoint_trigger_nonce
            return self.savepoint(job, "manual")
        if self.periodic_due(job):
            return self.savepoint(job, "periodic")
        self.retention()
        return self.plan()

    def track_lifecycle(self, job: JobObservation) -> None:
        """DEPLOYING until every task runs, RUNNING, then STABLE after STABLE_AFTER_MS."""
        st = self.st
        if job.all_running and job.state == "RUNNING":
            if st.running_since is None:
                st.running_since = self.now
            if self.now - st.running_since >= STABLE_AFTER_MS:
                if st.lifecycle != Lifecycle.STABLE:
                    st.last_stable_spec = st.last_reconciled_spec
                    st.restarts = 0
                    self.note("Stable", f"running for {STABLE_AFTER_MS // 1000} s")
                st.lifecycle = Lifecycle.STABLE
            else:
                st.lifecycle = Lifecycle.RUNNING
        else:
            st.running_since = None
            st.lifecycle = Lifecycle.DEPLOYING  # starting, or Flink restarting it
        if st.error and not st.outages and not self.waiting():
            st.error = None
        self.track_checkpoints(job)

    def track_checkpoints(self, job: JobObservation) -> None:
        """A condition (and one Event per change) when the newest checkpoint failed: where Flink
        writes and why it could not (a wrong endpoint, a missing bucket, refused credentials),
        while the job still runs from its last good checkpoint."""
        st = self.st
        was = next((c for c in st.conditions if c.type == "CheckpointsSucceeding"), None)
        if job.checkpoint_failure:
            where = self.obs.checkpoint_dir or "the checkpoint folder"
            failure = job.checkpoint_failure
            message = f"checkpoint {job.checkpoint_failure_id} to {where} failed: {failure}"
            # One Event per new reason, not one per failed attempt (one every interval).
            if (
                was is None
                or was.status != "False"
                or not was.message.endswith(job.checkpoint_failure)
            ):
                self.note("CheckpointFailed", message, warning=True)
            set_condition(st, self.now, "CheckpointsSucceeding", False, "CheckpointFailed", message)
        elif was is not None and was.status == "False" and job.latest_checkpoint:
            message = f"checkpoint to {job.latest_checkpoint} completed"
            self.note("CheckpointsRecovered", message)
            set_condition(st, self.now, "CheckpointsSucceeding", True, "Completed", message)

    def autoscale(self, job: JobObservation) -> Plan | None:
        """Evaluate the autoscaler on the recent metrics; a rescale is a savepoint upgrade to
        the chosen parallelism (the spec's own parallelism stays the user's)."""
        st, obs = self.st, self.obs
        a = dict(st.autoscaler)
        bounds = self.spec.autoscaler
        if obs.slots_for_job is not None and obs.slots_for_job < bounds.max_parallelism:
            bounds = bounds.model_copy(
                update={"max_parallelism": max(bounds.min_parallelism, obs.slots_for_job)}
            )
        history = autoscale.History(
            last_rescale_at=a.get("lastRescaleAt"),
            job_started_at=st.running_since,
            scale_down_wanted_since=a.get("scaleDownWantedSince"),
            rescales=int(a.get("rescales", 0)),
        )
        d = autoscale.decide(bounds, list(obs.samples), history, self.now, obs.partitions)
        current = obs.samples[-1].parallelism
        entry = {
            "time": self.now,
            "current": current,
            "parallelism": d.parallelism,
            "act": d.act,
            "reason": d.reason,
            "inputs": d.inputs,
        }
        a["last"] = entry
        a["scaleDownWantedSince"] = d.scale_down_wanted_since
        if not d.act:
            st.autoscaler = a
            return None
        applied = "in place" if self.obs.adaptive else "savepoint upgrade"
        a["decisions"] = [*a.get("decisions", []), {**entry, "applied": applied}][-10:]
        a["parallelism"] = d.parallelism
        a["base"] = self.job.spec.job.parallelism
        a["lastRescaleAt"] = self.now
        a["rescales"] = int(a.get("rescales", 0)) + 1
        a["scaleDownWantedSince"] = None
        st.autoscaler = a
        self.spec = effective_spec(self.job.spec, st)
        if self.obs.adaptive:
            return self.rescale(job, f"autoscaler: {d.reason}")
        return self.upgrade(job, f"autoscaler: {d.reason}")

    def rescale(self, job: JobObservation, why: str) -> Plan:
        """Change the parallelism in place: the adaptive scheduler restarts the job's tasks from
        its latest checkpoint under the same job id — no savepoint, no new submission."""
        target = self.spec.job.parallelism
        self.st.lifecycle = Lifecycle.UPGRADING
        self.st.operation = Operation(
            kind="rescale",
            step="rescaling",
            started_at=self.now,
            job_id=job.job_id,
            spec=self.spec,
            generation=self.job.metadata.generation,
        )
        self.actions.append(Rescale(job.job_id, target))
        self.note("Rescaling", f"{why}: job {job.job_id} {job.parallelism} → {target} in place")
        return self.plan()

    def upgrade(self, job: JobObservation, why: str) -> Plan:
        mode = self.spec.job.upgrade_mode
        self.st.lifecycle = Lifecycle.UPGRADING
        self.note("Upgrading", f"{why}: {mode.value} upgrade of job {job.job_id}")
        if mode == UpgradeMode.savepoint:
            self.stop_with_savepoint("upgrade", job.job_id)
            return self.plan()
        self.st.operation = Operation(
            kind="upgrade",
            step="cancelling",
            started_at=self.now,
            job_id=job.job_id,
            upgrade_mode=mode,
        )
        self.actions.append(Cancel(job.job_id))
        return self.plan()

    def savepoint(self, job: JobObservation, trigger: str) -> Plan:
        trigger_id = new_id(self.job.name, self.now, f"{trigger}-savepoint")
        self.st.operation = Operation(
            kind="savepoint",
            step="savepointing",
            started_at=self.now,
            job_id=job.job_id,
            trigger_id=trigger_id,
            trigger=trigger,
        )
        self.st.last_savepoint_attempt_at = self.now
        self.actions.append(TriggerSavepoint(job.job_id, trigger_id))
        return self.plan()

    def periodic_due(self, job: JobObservation) -> bool:
        interval = self.spec.savepoints.interval
        if interval is None or not job.all_running:
            return False
        last = max(
            [s.time for s in self.st.savepoints]
            + [self.st.job_started_at or 0, self.st.last_savepoint_attempt_at or 0]
        )
        return self.now - last >= milliseconds(interval)

    def retention(self) -> None:
        """Dispose of savepoints beyond maxCount or older than maxAge — never the newest one,
        nor the one the running job was started from."""
        policy = self.spec.savepoints
        ordered = sorted(self.st.savepoints, key=lambda s: s.time)
        if not ordered:
            return
        keep = {ordered[-1].path, self.st.upgrade_savepoint_path}
        max_age = milliseconds(policy.max_age) if policy.max_age else None
        excess = len(ordered) - policy.max_count
        drop = []
        for sp in ordered:
            if sp.path in keep:
                continue
            if excess > 0 or (max_age is not None and self.now - sp.time > max_age):
                drop.append(sp)
                excess -= 1
        for sp in drop:
            self.st.savepoints.remove(sp)
            self.actions.append(Dispose(sp.path))
            self.note("SavepointDisposed", sp.path)


def decide(job: FlinkJob, obs: Observation) -> Plan:
    """What to do next for `job`, given what was just observed."""
    return _Decision(job, obs).decide()


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
