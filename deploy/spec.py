"""The FlinkJob resource: one pydantic model for the CLI, the SQLite store, the CRD and the chart.

Field names are camelCase on the wire (YAML, JSON, Kubernetes) and snake_case in Python. A spec
that does not validate is rejected with every problem listed by its field path
(`spec.job.parallelism: ...`), before anything is stored or sent to Flink.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import (
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from deploy.errors import SpecError
from deploy.spec_fields import (
    MAX_DURATION_MS,
    ConfigValue,
    Duration,
    JobEntry,
    Model,
    milliseconds,
    seconds,
)

__all__ = [
    "API_VERSION",
    "KIND",
    "MAX_DURATION_MS",
    "ArtifactSpec",
    "AutoscalerSpec",
    "CheckpointMode",
    "CheckpointingSpec",
    "Condition",
    "ConfigValue",
    "Duration",
    "Event",
    "FlinkJob",
    "FlinkJobSpec",
    "HealthSpec",
    "JobEntry",
    "JobSpec",
    "JobState",
    "JobStatus",
    "KafkaSpec",
    "Lifecycle",
    "Metadata",
    "Model",
    "Operation",
    "PythonExecutionMode",
    "RestartPolicy",
    "SavepointInfo",
    "SavepointsSpec",
    "SpecError",
    "UpgradeMode",
    "json_schema",
    "load_yaml",
    "milliseconds",
    "parse",
    "problems",
    "seconds",
]

API_VERSION: Literal["eddyline.dev/v1alpha1"] = "eddyline.dev/v1alpha1"
KIND: Literal["FlinkJob"] = "FlinkJob"

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_JOB_ENTRY: TypeAdapter[str] = TypeAdapter(JobEntry)


class JobState(StrEnum):
    running = "running"
    suspended = "suspended"


class UpgradeMode(StrEnum):
    stateless = "stateless"
    savepoint = "savepoint"
    last_state = "last-state"


class PythonExecutionMode(StrEnum):
    process = "process"
    thread = "thread"


class CheckpointMode(StrEnum):
    exactly_once = "EXACTLY_ONCE"
    at_least_once = "AT_LEAST_ONCE"


class Lifecycle(StrEnum):
    CREATED = "CREATED"
    DEPLOYING = "DEPLOYING"
    RUNNING = "RUNNING"
    STABLE = "STABLE"
    UPGRADING = "UPGRADING"
    SUSPENDED = "SUSPENDED"
    FAILED = "FAILED"
    DELETING = "DELETING"


_OWN_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ArtifactSpec(Model):
    """The user's code and its dependencies as shipped: one zip, set by `eddyline submit`."""

    uri: str = Field(
        pattern=r"^file:///",
        description="where the JobManager reads it: file:///… (this machine's artifact store, or "
        "the JobManager's upload folder with store jobmanager)",
    )
    store: Literal["local", "jobmanager"] = Field(
        "local", description="local: the stack's artifact folder; jobmanager: Flink's jar upload"
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="the zip's checksum: a change is an upgrade"
    )
    size: int = Field(ge=0, description="bytes")
    native: bool = Field(False, description="it holds compiled extensions (.so)")


class JobSpec(Model):
    # Before `entry`: whether the entry may name the user's own module depends on it.
    code: str | None = Field(
        None,
        pattern=r"\S",  # not blank (a pattern: the fuzzers and the CRD read it)
        description="the user's own code: a .py file, a module or package folder or a .whl, "
        "relative to the spec file; `eddyline submit` ships it (see artifact)",
    )
    requirements: str | None = Field(
        None,
        pattern=r"\S",  # not blank (a pattern: the fuzzers and the CRD read it)
        description="a pip requirements file (relative to the spec file) resolved by "
        "`eddyline submit` into the shipped artifact",
    )
    entry: str = Field(
        description="a module under jobs/ (jobs.ledger) or a .py file inside an allowed folder; "
        "with code: a module inside that code"
    )
    args: list[str] = Field(default_factory=list, description="the job's own flags")
    parallelism: int = Field(1, ge=1, le=1024)
    state: JobState = JobState.running
    upgrade_mode: UpgradeMode = UpgradeMode.savepoint
    initial_savepoint_path: str | None = Field(
        None, description="start from this savepoint the first time the job is deployed"
    )
    allow_non_restored_state: bool = False
    python_execution_mode: PythonExecutionMode | None = Field(
        None,
        description="where the job's Python functions run: process (a Python worker fed over "
        "gRPC) or thread (inside the TaskManager's JVM: no serialisation, one GIL per "
        "TaskManager); default: the job's own choice (the reference jobs' is in the README)",
    )
    artifact: ArtifactSpec | None = Field(
        None, description="set by `eddyline submit` from code and requirements; not by hand"
    )

    @field_validator("entry")
    @classmethod
    def _entry(cls, entry: str, info: ValidationInfo) -> str:
        if info.data.get("code") is None:
            try:
                return _JOB_ENTRY.validate_python(entry)
            except ValidationError as e:  # re-raised as the field's own error, at its path
                raise ValueError(e.errors()[0]["msg"].removeprefix("Value error, ")) from None
        if not _OWN_MODULE.match(entry):
            raise ValueError(
                f"{entry!r}: with job.code, the entry is a module inside that code "
                "(e.g. mypackage.job)"
            )
        return entry


class CheckpointingSpec(Model):
    interval: Duration = "10s"
    mode: CheckpointMode = CheckpointMode.exactly_once
    timeout: Duration = "10m"


class SavepointsSpec(Model):
    interval: Duration | None = Field(None, description="take a savepoint this often (periodic)")
    max_count: int = Field(5, ge=1, description="keep at most this many savepoints")
    max_age: Duration | None = Field(None, description="dispose of savepoints older than this")


class RestartPolicy(Model):
    max_retries: int = Field(5, ge=0, description="resubmissions of a failed job before FAILED")
    backoff: Duration = Field("5s", description="first delay; doubles after each failed retry")
    max_backoff: Duration = "5m"
    flink_attempts: int = Field(
        2,
        ge=0,
        description="Flink's own restarts of a failing job (fixed delay) before it fails for good "
        "and the controller takes over; unless flinkConfiguration sets restart-strategy",
    )


class AutoscalerSpec(Model):
    enabled: bool = False
    min_parallelism: int = Field(1, ge=1)
    max_parallelism: int = Field(8, ge=1)
    target_utilization: float = Field(0.7, gt=0, le=1)
    utilization_band: float = Field(0.2, ge=0, lt=1)
    catch_up: Duration = Field("2m", description="clear accumulated lag within this time")
    metrics_window: Duration = "1m"
    scale_down_delay: Duration = "2m"
    cooldown: Duration = "1m"
    stabilization: Duration = "30s"

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalerSpec:
        if self.min_parallelism > self.max_parallelism:
            raise ValueError("minParallelism must not exceed maxParallelism")
        return self


class HealthSpec(Model):
    """Data-level health: when the controller calls a running job unhealthy (a condition, an
    Event, and the metrics the chart's alert rules compare with these thresholds). Changing
    them restarts nothing."""

    enabled: bool = True
    lag_window: Duration = Field(
        "5m", description="LagHealthy turns False when the consumer lag has grown this long"
    )
    watermark_stall: Duration = Field(
        "2m",
        description="WatermarkAdvancing turns False when the watermark has not moved this long "
        "while records kept arriving on the input topics",
    )
    dead_letter_ratio: float = Field(
        0.05,
        ge=0,
        description="DeadLettersLow turns False when more dead letters than this fraction of the "
        "records the job consumed were written over deadLetterWindow",
    )
    dead_letter_window: Duration = "5m"
    checkpoint_failures: int = Field(
        3,
        ge=1,
        le=10,
        description="CheckpointsHealthy turns False after this many failed in a row (at most "
        "10: Flink's checkpoint history, which counts them, keeps 10)",
    )


class KafkaSpec(Model):
    bootstrap_servers: str | None = Field(
        None, description="default: the controller's (the local stack's) Kafka"
    )
    input_topics: list[str] = Field(default_factory=list)
    output_topics: list[str] = Field(default_factory=list)
    copartitioned: bool = Field(
        True,
        description="the input topics are joined: refuse to start unless partition counts match",
    )


class FlinkJobSpec(Model):
    job: JobSpec
    flink_configuration: dict[str, ConfigValue] = Field(default_factory=dict)
    checkpointing: CheckpointingSpec = Field(default_factory=CheckpointingSpec)
    savepoints: SavepointsSpec = Field(default_factory=SavepointsSpec)
    restart_policy: RestartPolicy = Field(default_factory=RestartPolicy)
    autoscaler: AutoscalerSpec = Field(default_factory=AutoscalerSpec)
    health: HealthSpec = Field(default_factory=HealthSpec)
    kafka: KafkaSpec = Field(default_factory=KafkaSpec)
    savepoint_trigger_nonce: int | None = Field(None, description="change it to take a savepoint")
    restart_nonce: int | None = Field(None, description="change it to restart the job")

    @model_validator(mode="after")
    def _one_python_mode(self) -> FlinkJobSpec:
        configured = self.flink_configuration.get("python.execution-mode")
        mode = self.job.python_execution_mode
        if mode is not None and configured is not None and str(configured) != mode.value:
            raise ValueError(
                f"job.pythonExecutionMode is {mode.value} but flinkConfiguration sets "
                f"python.execution-mode to {configured}: set one of them"
            )
        return self

    def with_job(self, **fields: Any) -> FlinkJobSpec:
        """This spec with some `job` fields changed (parallelism=2, state=…)."""
        return self.model_copy(update={"job": self.job.model_copy(update=fields)})

    def deployment(self) -> dict[str, Any]:
        """What a running job is built from: a change here needs an upgrade. Nonces and the
        desired state are requests, and the autoscaler and savepoint policies are the
        controller's own settings, so they are left out (changing them restarts nothing)."""
        data = self.model_dump(mode="json", by_alias=True)
        for key in ("savepointTriggerNonce", "restartNonce", "autoscaler", "savepoints", "health"):
            data.pop(key, None)
        data["job"].pop("state", None)
        data["job"].pop("initialSavepointPath", None)
        # What was shipped is known by its checksum: the paths on the submitting machine and
        # where the cluster reads the artifact from may change without the job changing.
        for key in ("code", "requirements"):
            data["job"].pop(key, None)
        artifact = data["job"].pop("artifact", None)
        if artifact is not None:
            data["job"]["artifactSha256"] = artifact.get("sha256")
        # Left out while unset, so jobs deployed before the field existed are not seen as changed
        # (and upgraded) by a newer controller.
        if data["job"].get("pythonExecutionMode") is None:
            data["job"].pop("pythonExecutionMode", None)
        return data


class Metadata(Model):
    model_config = ConfigDict(extra="ignore")  # Kubernetes adds uid, managedFields, …

    name: str = Field(max_length=63)
    namespace: str | None = None
    generation: int = Field(1, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError(
                f"{name!r}: lower-case letters, digits and '-', starting and ending "
                "with a letter or digit"
            )
        return name


class SavepointInfo(Model):
    path: str
    time: int = Field(description="epoch milliseconds")
    trigger: Literal["upgrade", "suspend", "periodic", "manual", "delete"]


class Condition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: int = 0


class Event(Model):
    time: int
    type: Literal["Normal", "Warning"] = "Normal"
    reason: str
    message: str


class Operation(Model):
    """An action in flight. Its ids are chosen before it is sent, so a controller that restarts
    repeats the same request (Flink dedupes savepoint triggers by id and refuses a second job
    with the same id) instead of starting something twice."""

    kind: Literal["submit", "upgrade", "suspend", "savepoint", "restart", "delete", "rescale"]
    step: Literal["stopping", "cancelling", "submitting", "savepointing", "rescaling"]
    started_at: int
    job_id: str | None = Field(None, description="the job being stopped or savepointed")
    trigger_id: str | None = None
    trigger: Literal["upgrade", "suspend", "periodic", "manual", "delete"] | None = None
    new_job_id: str | None = None
    savepoint_path: str | None = Field(None, description="where the new job starts from")
    upgrade_mode: UpgradeMode | None = None
    spec: FlinkJobSpec | None = Field(None, description="the spec a submission or rescale sends")
    generation: int | None = Field(None, description="the generation a submission sends")


class JobStatus(Model):
    job_id: str | None = None
    flink_state: str | None = None
    lifecycle: Lifecycle = Lifecycle.CREATED
    parallelism: int | None = None
    last_reconciled_spec: FlinkJobSpec | None = None
    last_stable_spec: FlinkJobSpec | None = None
    observed_generation: int = 0
    savepoints: list[SavepointInfo] = Field(default_factory=list)
    upgrade_savepoint_path: str | None = None
    last_checkpoint_path: str | None = None
    last_checkpoint_time: int | None = None
    error: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    operation: Operation | None = None
    job_started_at: int | None = None
    running_since: int | None = Field(None, description="when every task was last seen RUNNING")
    restarts: int = Field(0, description="controller resubmissions since the job was last stable")
    next_retry_at: int | None = Field(None, description="restart backoff: not before this time")
    missing_since: int | None = Field(
        None, description="when Flink stopped knowing status.jobId (HA recovery under way)"
    )
    failures: int = Field(0, description="consecutive failed actions (submissions, stops, …)")
    outages: int = Field(0, description="consecutive reconciles that could not reach Flink/Kafka")
    outage_retry_at: int | None = None
    last_savepoint_attempt_at: int | None = None
    last_savepoint_nonce: int | None = None
    last_restart_nonce: int | None = None
    autoscaler: dict[str, Any] = Field(default_factory=dict)
    artifact_sha256: str | None = Field(
        None, description="the artifact the running job was shipped with (spec.job.artifact)"
    )
    health: dict[str, Any] = Field(
        default_factory=dict, description="the data-health measures last assessed (lag, …)"
    )


class FlinkJob(Model):
    api_version: Literal["eddyline.dev/v1alpha1"] = API_VERSION
    kind: Literal["FlinkJob"] = KIND
    metadata: Metadata
    spec: FlinkJobSpec
    status: JobStatus = Field(default_factory=JobStatus)

    @property
    def name(self) -> str:
        return self.metadata.name

    def running_at(self, generation: int | None = None) -> bool:
        """The controller runs `generation` (default: the current one) and is doing nothing else."""
        st = self.status
        wanted = self.metadata.generation if generation is None else generation
        return (
            st.observed_generation >= wanted
            and st.operation is None
            and st.lifecycle in (Lifecycle.RUNNING, Lifecycle.STABLE)
        )

    def document(self, with_status: bool = True) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not with_status:
            data.pop("status", None)
        return data

    def to_yaml(self, with_status: bool = True) -> str:
        return yaml.safe_dump(self.document(with_status), sort_keys=False)


def problems(error: ValidationError) -> list[str]:
    """Each validation error as `field.path: message`, in the document's own (camelCase) names."""
    out = []
    for e in error.errors():
        path = ".".join(str(p) for p in e["loc"]) or "(document)"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            message = "unknown field"
        out.append(f"{path}: {message}")
    return out


def parse(data: Any, source: str = "spec") -> FlinkJob:
    """A FlinkJob from a parsed YAML/JSON document; SpecError listing every problem otherwise.
    The status of a submitted document is ignored: status belongs to the controller."""
    if not isinstance(data, dict):
        raise SpecError(
            source, ["(document): expected a mapping with apiVersion, kind, metadata, spec"]
        )
    data = {k: v for k, v in data.items() if k != "status"}
    missing = [f"{key}: field required" for key in ("apiVersion", "kind") if key not in data]
    try:
        job = FlinkJob.model_validate(data)
    except ValidationError as e:
        raise SpecError(source, missing + problems(e)) from None
    if missing:
        raise SpecError(source, missing)
    return job


def load_yaml(text: str, source: str = "spec") -> FlinkJob:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SpecError(source, [f"(document): not valid YAML: {e}"]) from None
    return parse(data, source)


def json_schema() -> dict[str, Any]:
    """The FlinkJob document's JSON schema (what the CRD and the chart are generated from)."""
    return FlinkJob.model_json_schema(by_alias=True)
