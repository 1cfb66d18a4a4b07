"""The controller's hands and eyes on a Flink session cluster: observe through the REST API and
act through it. Shared by the local and Kubernetes modes (both run a session cluster).

What it reads is in deploy/flink/observations.py, the Kafka side of a job in
deploy/flink/inputs.py, and how a job is submitted in deploy/flink/submission.py; this module
puts them together as the controller's `Runtime` (deploy/controller/loop.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from deploy.controller.autoscale import Sample
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
    TriggerSavepoint,
)
from deploy.controller.signals import Signals
from deploy.errors import FlinkConflictError, FlinkError, FlinkNotFoundError, SpecError
from deploy.flink import entries, inputs, jobmetrics, shipped, submission
from deploy.flink.datasignals import SignalWindows
from deploy.flink.inputs import copartition_problem, group_id
from deploy.flink.observations import (
    job_observation,
    retained_checkpoint,
    root_cause,
    trigger_observation,
)
from deploy.flink.rest import FlinkClient
from deploy.flink.submission import job_args, job_configuration
from deploy.spec import FlinkJob, FlinkJobSpec, Lifecycle, milliseconds

# The runtime's public face, including what moved to the modules beside it (still importable
# from here).
__all__ = [
    "FlinkRuntime",
    "copartition_problem",
    "group_id",
    "job_args",
    "job_configuration",
    "retained_checkpoint",
    "root_cause",
]

SAMPLE_EVERY_MS = 5_000
PARTITIONS_CACHE_MS = 60_000  # partition counts change rarely; Kafka is not asked each tick


class FlinkRuntime:
    def __init__(
        self,
        client: FlinkClient,
        bootstrap_servers: str,
        allowed_dirs: Sequence[Path] | None = None,
        headroom: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        # Slots the cluster could still add (elastic TaskManagers); the autoscaler may use them.
        self.headroom = headroom
        self.bootstrap_servers = bootstrap_servers
        self.allowed_dirs = list(allowed_dirs or entries.default_allowed())
        # The autoscaler's metrics window per FlinkJob: (Flink job id, samples oldest first).
        self._samples: dict[str, tuple[str, list[Sample]]] = {}
        self._partitions: dict[str, tuple[int, int | None]] = {}
        self._signals = SignalWindows()  # each job's data-health window (deploy/flink/datasignals)
        self._cluster: dict[str, str] | None = None

    def cluster_config(self) -> dict[str, str]:
        """The JobManager's configuration, asked once while it answers (fixed for its lifetime);
        asked again after Flink was unreachable, which a new JobManager pod is."""
        if self._cluster is None:
            self._cluster = self.client.cluster_config()
        return self._cluster

    def adaptive(self) -> bool:
        """Whether the cluster runs the adaptive scheduler: rescale in place."""
        return self.cluster_config().get("jobmanager.scheduler", "").lower() == "adaptive"

    def high_availability(self) -> bool:
        """Whether the JobManager runs with high availability: then a JobManager restart does
        not lose its jobs, and the controller waits for them."""
        conf = self.cluster_config()
        kind = conf.get("high-availability.type", conf.get("high-availability", "none"))
        return kind.strip().lower() not in ("", "none")

    def checkpoint_dir(self, spec: FlinkJobSpec) -> str | None:
        """Where the job's checkpoints go: its own flinkConfiguration, else the cluster's."""
        key = "execution.checkpointing.dir"
        own = spec.flink_configuration.get(key)
        return str(own) if own else self.cluster_config().get(key) or None

    def _servers(self, spec: FlinkJobSpec) -> str:
        return spec.kafka.bootstrap_servers or self.bootstrap_servers

    # -- observe ----------------------------------------------------------------------------

    def observe(self, job: FlinkJob, now: int) -> Observation:
        try:
            seen = self._observe_flink(job, now)
        except FlinkError as e:
            # Unreachable or answering oddly alike, the picture is incomplete: decide treats it
            # as an outage and waits. The JobManager may be replaced meanwhile (a helm upgrade
            # rolls it with the controller): ask the next one for its configuration.
            self._cluster = None
            return Observation(now=now, flink_error=str(e))
        st, observed = job.status, seen.job
        check = inputs.Precheck()
        may_start = observed is None or observed.terminal or st.lifecycle == Lifecycle.SUSPENDED
        if may_start and not job.metadata.deletion_timestamp:
            check = self.precheck(job.spec)
        retained = None
        if st.job_id and observed is None:
            retained = retained_checkpoint(st.job_id, st.last_checkpoint_path)
        samples: tuple[Sample, ...] = ()
        partitions = slots = None
        if (
            job.spec.autoscaler.enabled
            and st.operation is None
            and observed is not None
            and observed.alive
            and observed.all_running
        ):
            samples, partitions, slots = self._autoscaler_inputs(job, observed, now)
        signals: tuple[Signals, ...] = ()
        if job.spec.health.enabled and st.operation is None and observed and observed.alive:
            signals = self._signals.window(
                self.client, job, observed.job_id, self._servers(job.spec), now
            )
        return replace(
            seen,
            precheck_error=check.problem,
            kafka_error=check.transient,
            kafka_refused=check.refused,
            samples=samples,
            partitions=partitions,
            slots_for_job=slots,
            retained_checkpoint=retained,
            signals=signals,
        )

    def _observe_flink(self, job: FlinkJob, now: int) -> Observation:
        """What Flink says of the job, the operation in flight and the cluster."""
        st, op = job.status, job.status.operation
        observed = job_observation(self.client, st.job_id) if st.job_id else None
        new_job = None
        if op and op.new_job_id:
            new_job = job_observation(self.client, op.new_job_id)
        trigger = None
        if op and op.trigger_id and op.job_id:
            trigger = trigger_observation(self.client, op.job_id, op.trigger_id)
            if observed is None and op.job_id != st.job_id:
                observed = job_observation(self.client, op.job_id)
        adaptive = self.adaptive()
        high_availability = self.high_availability()
        checkpoint_dir = self.checkpoint_dir(job.spec)
        if op and op.kind == "rescale" and observed is not None and observed.alive:
            observed = replace(observed, requested_parallelism=self._requested(observed))
        return Observation(
            now=now,
            job=observed,
            new_job=new_job,
            trigger=trigger,
            adaptive=adaptive,
            high_availability=high_availability,
            checkpoint_dir=checkpoint_dir,
        )

    def _requested(self, job: JobObservation) -> int | None:
        bounds = self.client.resource_requirements(job.job_id)
        uppers = [int(v["parallelism"]["upperBound"]) for v in bounds.values()]
        return max(uppers, default=0) or None

    def _autoscaler_inputs(
        self, job: FlinkJob, observed: JobObservation, now: int
    ) -> tuple[tuple[Sample, ...], int | None, int | None]:
        """The job's metrics window (a sample every SAMPLE_EVERY_MS), the fewest partitions of
        its input topics and the slots it could use. Samples of an earlier job or parallelism
        are dropped: they describe a different deployment."""
        jid = observed.job_id
        known_jid, window = self._samples.get(job.name, (jid, []))
        if known_jid != jid:
            window = []
        if not window or now - window[-1].time >= SAMPLE_EVERY_MS:
            # A metric missing now (a task restarting) is no sample; the next tick tries again.
            with suppress(FlinkError, KeyError, ValueError):
                sample = jobmetrics.sample(self.client, jid, now)
                window.append(inputs.with_committed_lag(job, sample, self._servers(job.spec)))
        keep_ms = 2 * milliseconds(job.spec.autoscaler.metrics_window)
        current = window[-1].parallelism if window else None
        window = [s for s in window if now - s.time <= keep_ms and s.parallelism == current]
        self._samples[job.name] = (jid, window)
        try:
            overview = self.client.overview()
            slots = int(overview.get("slots-available", 0)) + (observed.parallelism or 0)
            if self.headroom is not None:
                slots += self.headroom()
        except FlinkError:
            slots = None
        return tuple(window), self._input_partitions(job, now), slots

    def _input_partitions(self, job: FlinkJob, now: int) -> int | None:
        cached = self._partitions.get(job.name)
        if cached and now - cached[0] < PARTITIONS_CACHE_MS:
            return cached[1]
        fewest = inputs.fewest_partitions(job.spec, self._servers(job.spec))
        self._partitions[job.name] = (now, fewest)
        return fewest

    def precheck(self, spec: FlinkJobSpec) -> inputs.Precheck:
        """A reason the spec cannot run here, or a Kafka problem the start waits out."""
        try:
            entries.for_job(spec.job, self.allowed_dirs)
        except SpecError as e:
            return inputs.Precheck(problem="; ".join(e.problems))
        artifact = shipped.check(self.client, spec.job.artifact, spec.job.entry)
        if artifact.problem or artifact.waiting:
            return inputs.Precheck(problem=artifact.problem, transient=artifact.waiting)
        return inputs.input_problems(spec, self._servers(spec))

    # -- act --------------------------------------------------------------------------------

    def act(self, job: FlinkJob, action: Action) -> None:
        if isinstance(action, Submit):
            self.submit(action, job.name)
        elif isinstance(action, StopWithSavepoint):
            self.client.stop_with_savepoint(action.job_id, action.trigger_id)
        elif isinstance(action, TriggerSavepoint):
            self.client.trigger_savepoint(action.job_id, action.trigger_id)
        elif isinstance(action, Rescale):
            self.client.set_parallelism(action.job_id, action.parallelism)
        elif isinstance(action, Cancel):
            # Gone (404) or already ended (409): not running, which is what was wanted.
            with suppress(FlinkNotFoundError, FlinkConflictError):
                self.client.cancel(action.job_id)
        elif isinstance(action, Dispose):
            self.client.dispose_savepoint(action.path)
        elif isinstance(action, Forget):
            pass  # the store forgets; nothing to do on Flink

    def submit(self, action: Submit, name: str | None = None) -> None:
        submission.submit(self.client, action, name, self.bootstrap_servers, self.allowed_dirs)
