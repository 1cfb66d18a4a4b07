"""How a FlinkJob becomes a Flink job: the configuration and flags it is submitted with, and the
submission itself (through the Python driver, deploy/flink/pyjobs.py), one at a time."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from deploy.controller.model import Submit
from deploy.errors import FlinkError, FlinkUnavailableError
from deploy.flink import entries, pyjobs, shipped
from deploy.flink.rest import FlinkClient
from deploy.spec import FlinkJobSpec, milliseconds

# One at a time: Flink runs a Python job's driver inside the JobManager, and concurrent runs
# there were seen to swap their settings (a job got another's id and program).
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


def program_configuration(spec: FlinkJobSpec, name: str | None = None) -> dict[str, str]:
    """job_configuration plus what the program needs to start: the shipped artifact on the
    Python path. What a submission sends, and what `eddyline diff` plans with."""
    configuration = job_configuration(spec, name)
    if spec.job.artifact is not None:
        # The driver (on the JobManager) and the Python workers both put it on PYTHONPATH.
        shipped_files = shipped.python_files(spec.job.artifact)
        own = configuration.get("python.files")
        configuration["python.files"] = f"{shipped_files},{own}" if own else shipped_files
    return configuration


def job_args(spec: FlinkJobSpec, default_bootstrap: str) -> list[str]:
    """The job's flags: the spec's args, plus the Kafka to use when they do not name one."""
    args = list(spec.job.args)
    if not any(a == "--bootstrap-servers" or a.startswith("--bootstrap-servers=") for a in args):
        args += ["--bootstrap-servers", spec.kafka.bootstrap_servers or default_bootstrap]
    return args


def submit(
    client: FlinkClient,
    action: Submit,
    name: str | None,
    bootstrap_servers: str,
    allowed_dirs: Sequence[Path],
) -> None:
    """Start the job `action` asks for, under the id it chose. SpecError (before anything is
    sent) when its entry is not allowed here."""
    spec = action.spec
    entry = entries.for_job(spec.job, allowed_dirs)
    configuration = program_configuration(spec, name)
    with _SUBMIT_LOCK:
        got = pyjobs.submit(
            client,
            entry.target,
            job_args(spec, bootstrap_servers),
            parallelism=spec.job.parallelism,
            savepoint_path=action.savepoint_path,
            allow_non_restored_state=spec.job.allow_non_restored_state,
            job_id=action.job_id,
            configuration=configuration,
            entry_flag=entry.flag,
        )
        if got != action.job_id:
            # Flink started it under another id: it is not ours to track; do not leave it.
            with suppress(FlinkError):
                client.cancel(got)
            raise FlinkUnavailableError(
                f"Flink started the job as {got}, not {action.job_id}; cancelled it"
            )
