"""The controller's hands and eyes on a Flink session cluster: observe through the REST API and
act through it. Shared by the local and Kubernetes modes (both run a session cluster)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from pathlib import Path

from deploy import kafka_io
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
    TriggerObservation,
    TriggerSavepoint,
)
from deploy.errors import FlinkError, SpecError
from deploy.flink import entries, jobmetrics, pyjobs
from deploy.flink.rest import FlinkClient
from deploy.spec import FlinkJob, FlinkJobSpec, Lifecycle, milliseconds

KAFKA_TIMEOUT_S = 5.0
SAMPLE_EVERY_MS = 5_000
_SUBMIT_LOCK = threading.Lock()


def job_configuration(spec: FlinkJobSpec, name: str | None = None) -> dict[str, str]:
    """The Flink configuration a job is submitted with: the spec's checkpointing, parallelism and
    restart settings first, the user's flinkConfiguration over them. The Flink job is named after
    the FlinkJob, so the dashboard, Flink's metrics and the controller's agree on its name."""
    cp = spec.checkpointing
    conf = {
        **({"pipeline.name": name} if name else {}),
        "parallelism.default": str(spec.job.parallelism),
        "execution.checkpointing.interval": f"{milliseconds(cp.interval)} ms",
        "execution.checkpointing.mode": cp.mode.value,
        "execution.checkpointing.timeout": f"{milliseconds(cp.timeout)} ms",
        # Kept when the job is cancelled, so last-state upgrades and restarts can resume from it.
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
    }
    if spec.job.python_execution_mode is not None:
        conf["python.execution-mode"] = spec.job.python_execution_mode.value
    if not any(k.startswith("restart-strategy") for k in spec.flink_configuration):
        # Flink retries a few times itself; then the job fails for good and the controller's
        # restartPolicy (with its backoff and limit) takes over.
        conf["restart-strategy.type"] = "fixed-delay"
        conf["restart-strategy.fixed-delay.attempts"] = str(spec.restart_policy.flink_attempts)
        conf["restart-strategy.fixed-delay.delay"] = "2 s"
    conf.update(spec.flink_configuration)
    return conf


def job_args(spec: FlinkJobSpec, default_bootstrap: str) -> list[str]:
    """The job's flags: the spec's args, plus the Kafka to use when they do not name one."""
    args = list(spec.job.args)
    if not any(a == "--bootstrap-servers" or a.startswith("--bootstrap-servers=") for a in args):
        args += ["--bootstrap-servers", spec.kafka.bootstrap_servers or default_bootstrap]
    return args


def group_id(job: FlinkJob) -> str:
    """The job's Kafka consumer group: its --group-id flag, else the jobs' default (the name of
    the job's module, see jobs/flags.py)."""
    args = job.spec.job.args
    for i, arg in enumerate(args):
        if arg == "--group-id" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--group-id="):
            return arg.split("=", 1)[1]
    entry = job.spec.job.entry
    if entry.endswith(".py"):
        return Path(entry).stem
    return entry.rsplit(".", 1)[-1]


def copartition_problem(partitions: dict[str, int | None], topics: Sequence[str]) -> str | None:
    """Why joined topics cannot be joined as they are (None when they can)."""
    counts = {t: partitions.get(t) for t in topics}
    if len(set(counts.values())) <= 1:
        return None
    listed = ", ".join(f"{t}: {n}" for t, n in counts.items())
    return (
        f"input topics are not co-partitioned ({listed} partitions): a join by key needs the "
        "same partition count on each; recreate them alike or set kafka.copartitioned: false"
    )


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

    # -- observe ----------------------------------------------------------------------------

    def observe(self, job: FlinkJob, now: int) -> Observation:
        st, op = job.status, job.status.operation
        try:
            observed = self._job(st.job_id) if st.job_id else None
            new_job = self._job(op.new_job_id) if op and op.new_job_id else None
            trigger = None
            if op and op.trigger_id and op.job_id:
                trigger = self._trigger(op.job_id, op.trigger_id)
                if observed is None and op.job_id != st.job_id:
                    observed = self._job(op.job_id)
            adaptive = self.adaptive()
            high_availability = self.high_availability()
            checkpoint_dir = self.checkpoint_dir(job.spec)
            if op and op.kind == "rescale" and observed is not None and observed.alive:
                observed = replace(observed, requested_parallelism=self._requested(observed))
        except FlinkError as e:
            # The JobManager may be replaced (a helm upgrade rolls it with the controller): ask
            # the next one for its configuration rather than keep the old one's.
            self._cluster = None
            return Observation(now=now, flink_error=str(e))
        precheck = kafka_error = None
        may_start = observed is None or observed.terminal or st.lifecycle == Lifecycle.SUSPENDED
        if may_start and not job.metadata.deletion_timestamp:
            precheck, kafka_error = self.precheck(job.spec)
        retained = None
        if st.job_id and observed is None:
            retained = retained_checkpoint(st.job_id, st.last_checkpoint_path)
        samples: tuple[Sample, ...] = ()
        partitions = slots = None
        if (
            job.spec.autoscaler.enabled
            and op is None
            and observed is not None
            and observed.alive
            and observed.all_running
        ):
            samples, partitions, slots = self._autoscaler_inputs(job, observed, now)
        return Observation(
            now=now,
            job=observed,
            new_job=new_job,
            trigger=trigger,
            precheck_error=precheck,
            kafka_error=kafka_error,
            samples=samples,
            partitions=partitions,
            slots_for_job=slots,
            adaptive=adaptive,
            high_availability=high_availability,
            checkpoint_dir=checkpoint_dir,
            retained_checkpoint=retained,
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
                window.append(
                    self._with_committed_lag(job, jobmetrics.sample(self.client, jid, now))
                )
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

    def _with_committed_lag(self, job: FlinkJob, sample: Sample) -> Sample:
        """The sample with the job's consumer-group lag from Kafka beside Flink's own; the
        decision uses it when the sources report no pendingRecords, or when it shows more
        records waiting than they do."""
        topics = job.spec.kafka.input_topics
        if not topics:
            return sample
        servers = job.spec.kafka.bootstrap_servers or self.bootstrap_servers
        try:
            committed = kafka_io.consumer_lag(servers, group_id(job), topics, KAFKA_TIMEOUT_S)
        except Exception:  # Kafka unreachable: Flink's measure alone this time
            return sample
        if committed is None:
            return sample
        if sample.lag_source == "pending":
            # The sources' pendingRecords can read small while the job falls behind (measured
            # with a busy chained Python map: 4,400 pending, 45,000 uncommitted and growing).
            # Committed offsets trail a job that keeps up by about one checkpoint interval of
            # input; beyond that, the committed lag is records waiting.
            interval_s = milliseconds(job.spec.checkpointing.interval) / 1000
            waiting = committed - int(sample.input_rate * interval_s)
            if waiting > sample.lag:
                return replace(sample, lag=waiting, lag_source="committed", committed_lag=committed)
            return replace(sample, committed_lag=committed)
        return replace(sample, lag=committed, lag_source="committed", committed_lag=committed)

    def _input_partitions(self, job: FlinkJob, now: int) -> int | None:
        cached = self._partitions.get(job.name)
        if cached and now - cached[0] < 60_000:
            return cached[1]
        topics = job.spec.kafka.input_topics
        fewest = None
        if topics:
            servers = job.spec.kafka.bootstrap_servers or self.bootstrap_servers
            try:
                counts = kafka_io.partition_counts(servers, topics, KAFKA_TIMEOUT_S)
                known = [n for n in counts.values() if n]
                fewest = min(known) if known else None
            except Exception:  # Kafka unreachable: no cap this time
                fewest = None
        self._partitions[job.name] = (now, fewest)
        return fewest

    def _job(self, job_id: str) -> JobObservation | None:
        detail = self.client.job_if_known(job_id)
        if detail is None:
            return None
        state = str(detail.get("state"))
        vertices = detail.get("vertices", [])
        all_running = bool(vertices) and all(v.get("status") == "RUNNING" for v in vertices)
        parallelism = max((int(v.get("parallelism", 0)) for v in vertices), default=0) or None
        root = None
        if state == "FAILED":
            root = root_cause(self.client.failure(job_id))
        cp_path = cp_time = sp_path = sp_time = None
        latest = self.client.checkpoints(job_id).get("latest") or {}
        completed = latest.get("completed") or {}
        if completed.get("external_path"):
            cp_path = str(completed["external_path"])
            cp_time = int(completed.get("latest_ack_timestamp") or 0)
        failed = latest.get("failed") or {}
        failure = failure_id = None
        if failed.get("id") is not None and int(failed["id"]) > int(completed.get("id") or -1):
            failure_id = int(failed["id"])
            failure = _first_line(str(failed.get("failure_message") or "no reason given"))
        savepoint = latest.get("savepoint") or {}
        if savepoint.get("external_path"):
            sp_path = str(savepoint["external_path"])
            sp_time = int(savepoint.get("latest_ack_timestamp") or 0)
        return JobObservation(
            job_id=job_id,
            state=state,
            all_running=all_running,
            start_time=int(detail.get("start-time") or 0) or None,
            parallelism=parallelism,
            root_exception=str(root) if root else None,
            latest_checkpoint=cp_path,
            latest_checkpoint_time=cp_time,
            latest_savepoint=sp_path,
            latest_savepoint_time=sp_time,
            checkpoint_failure=failure,
            checkpoint_failure_id=failure_id,
        )

    def _trigger(self, job_id: str, trigger_id: str) -> TriggerObservation:
        try:
            answer = self.client.savepoint_status(job_id, trigger_id)
        except FlinkError as e:
            if e.status in (400, 404):
                return TriggerObservation("UNKNOWN")
            raise
        if answer.get("status", {}).get("id") != "COMPLETED":
            return TriggerObservation("IN_PROGRESS")
        operation = answer.get("operation") or {}
        if operation.get("location"):
            return TriggerObservation("COMPLETED", location=str(operation["location"]))
        cause = operation.get("failure-cause") or {}
        trace = str(cause.get("stack-trace") or cause.get("class") or "unknown failure")
        return TriggerObservation("FAILED", failure=_first_line(trace))

    def precheck(self, spec: FlinkJobSpec) -> tuple[str | None, str | None]:
        """(a reason the spec cannot run here, a transient Kafka problem)."""
        try:
            entries.resolve(spec.job.entry, self.allowed_dirs)
        except SpecError as e:
            return "; ".join(e.problems), None
        topics = spec.kafka.input_topics
        if not topics:
            return None, None
        servers = spec.kafka.bootstrap_servers or self.bootstrap_servers
        try:
            partitions = kafka_io.partition_counts(servers, topics, KAFKA_TIMEOUT_S)
        except Exception as e:  # confluent-kafka raises KafkaException, TimeoutError, …
            return None, f"Kafka at {servers} unreachable: {e}"
        missing = [t for t, n in partitions.items() if n is None]
        if missing:
            return None, f"waiting for input topics to exist: {', '.join(missing)}"
        if spec.kafka.copartitioned and len(topics) > 1:
            return copartition_problem(partitions, topics), None
        return None, None

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
            try:
                self.client.cancel(action.job_id)
            except FlinkError as e:
                if e.status not in (404, 409):  # gone or already ended: what we wanted
                    raise
        elif isinstance(action, Dispose):
            self.client.dispose_savepoint(action.path)
        elif isinstance(action, Forget):
            pass  # the store forgets; nothing to do on Flink

    def submit(self, action: Submit, name: str | None = None) -> None:
        spec = action.spec
        entry = entries.resolve(spec.job.entry, self.allowed_dirs)
        # One at a time: Flink runs a Python job's driver inside the JobManager, and concurrent
        # runs there were seen to swap their settings (a job got another's id and program).
        with _SUBMIT_LOCK:
            self._submit(entry, action, name)

    def _submit(self, entry: entries.Entry, action: Submit, name: str | None) -> None:
        spec = action.spec
        got = pyjobs.submit(
            self.client,
            entry.target,
            job_args(spec, self.bootstrap_servers),
            parallelism=spec.job.parallelism,
            savepoint_path=action.savepoint_path,
            allow_non_restored_state=spec.job.allow_non_restored_state,
            job_id=action.job_id,
            configuration=job_configuration(spec, name),
            entry_flag=entry.flag,
        )
        if got != action.job_id:
            # Flink started it under another id: it is not ours to track; do not leave it.
            with suppress(FlinkError):
                self.client.cancel(got)
            raise FlinkError(f"Flink started the job as {got}, not {action.job_id}; cancelled it")


def retained_checkpoint(job_id: str, known: str | None) -> tuple[str, int] | None:
    """The newest complete checkpoint `job_id` left in its checkpoint folder, (path, epoch ms),
    found next to `known` (a checkpoint the controller saw, `file:…/<job id>/chk-N`).

    A job lost with its JobManager keeps completing checkpoints until the end, and Flink deletes
    each one the next subsumes: the last checkpoint the controller saw may be gone, and resuming
    from an older one would repeat output already committed. Only local (`file:`) folders can be
    looked at; elsewhere this is None and the last checkpoint seen is used."""
    if not known or not known.startswith("file:"):
        return None
    base = Path("/" + known.removeprefix("file:").lstrip("/")).parent.parent
    newest: tuple[str, int] | None = None
    for metadata in (base / job_id).glob("chk-*/_metadata"):
        try:
            info = metadata.stat()
        except OSError:
            continue  # deleted meanwhile
        written = int(info.st_mtime * 1000)
        if info.st_size > 0 and (newest is None or written > newest[1]):
            newest = (f"file:{metadata.parent}", written)
    return newest


_PYTHON_ERROR = re.compile(r"^\s*([A-Za-z_][\w.]*(Error|Exception)|Exception): .+")


def root_cause(trace: str) -> str | None:
    """The line of a Flink root exception that says what went wrong: for a PyFlink job, the
    Python exception at the end of the embedded traceback; else the deepest `Caused by:`."""
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    if not lines:
        return None
    python = [
        line for line in lines if _PYTHON_ERROR.match(line) and not line.startswith("Caused by")
    ]
    python = [line for line in python if not line.startswith(("java.", "org.apache"))]
    if python:
        return python[-1][:1000]
    return _first_line(trace)


# A storage location in a cause (s3://bucket/…, file:/…): such a cause says where, not only what.
_LOCATION = re.compile(r"\b(s3a?|gs|hdfs|abfss?|wasbs?|oss|file):/")


def _first_line(trace: str) -> str:
    """The deepest `Caused by:` — unless a shallower one names the storage location it failed
    on (S3's "bucket does not exist" says nothing of which bucket; its wrapper does)."""
    lines = [line.strip() for line in trace.strip().splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith("Caused by:")]
    located = [line for line in causes if _LOCATION.search(line)]
    return (located[-1] if located else causes[-1] if causes else lines[0] if lines else trace)[
        :1000
    ]
