"""Submitting PyFlink jobs to a session cluster through the REST API.

Flink runs Python jobs through its Java `PythonDriver` inside the flink-python jar: we upload
that jar once and start it with `-pym <module>` (a job under jobs/) and the job's own flags.
"""

from __future__ import annotations

import re
from pathlib import Path

from deploy import paths
from deploy.errors import FlinkError, FlinkUnreachableError, MissingToolError, ProgramError
from deploy.flink.rest import FlinkClient
from deploy.flink.states import PYTHON_DRIVER

_STARTED = "Python Process Started"
_EXITED = "Python Process Exited"
_LOG_PREFIX = re.compile(
    r"^\S+ \S+ +[A-Z]+ +org\.apache\.flink\.client\.python\.PythonDriver +\[\] - "
)


def submit(
    client: FlinkClient,
    module: str,
    args: list[str],
    *,
    parallelism: int | None = None,
    savepoint_path: str | None = None,
    allow_non_restored_state: bool = False,
    job_id: str | None = None,
    configuration: dict[str, str] | None = None,
    entry_flag: str = "-pym",
) -> str:
    """Start `python -m module args` (or, with entry_flag `-py`, a file) as a job on the
    cluster; returns its job id. With `job_id`, submitting again is harmless: Flink refuses a
    second job with that id, and this returns the id of the one that exists."""
    jar_id = client.ensure_jar(_python_jar())
    try:
        return client.run_jar(
            jar_id,
            PYTHON_DRIVER,
            [entry_flag, module, *args],
            parallelism=parallelism,
            savepoint_path=savepoint_path,
            allow_non_restored_state=allow_non_restored_state,
            job_id=job_id,
            configuration=configuration,
        )
    except FlinkUnreachableError:
        # No answer: nothing to explain from the log, and the job may even be running (the
        # next observation finds it under `job_id`).
        raise
    except FlinkError as e:
        if job_id is not None and _exists(client, job_id):
            return job_id
        # Flink only says "Could not execute application"; the reason is the job's Python
        # traceback, which the driver copies into the JobManager's log.
        cause = _logged_failure(client)
        if cause is None:
            raise
        raise ProgramError(
            f"{module} failed before it became a job: {cause} (the whole traceback is in the "
            f"JobManager log: {client.base_url}/#/job-manager/logs)",
            status=e.status,
        ) from e


def python_failure(log: str) -> str | None:
    """The last thing the job's Python process said before it exited (its error), if anything."""
    start = log.rfind(_STARTED)
    end = log.find(_EXITED, start)
    if start < 0 or end < 0:
        return None  # no Python process, or one still running: nothing to blame yet
    block = log[start:end].splitlines()[1:]
    # Only the driver's own lines: other loggers (the dispatcher, say) interleave with it.
    lines = [_LOG_PREFIX.sub("", line).rstrip() for line in block if _LOG_PREFIX.match(line)]
    lines = [line for line in lines if line.strip(" -")]  # drop the driver's ---- banners
    # A traceback ends with the exception; argparse and `python -m` end with their one-line error.
    return lines[-1][:500] if lines else None


def _python_jar() -> Path:
    try:
        return paths.flink_python_jar()
    except FileNotFoundError as e:  # retrying cannot help: the installation lacks it
        raise MissingToolError(f"{e}: reinstall apache-flink (`make setup`)") from None


def _logged_failure(client: FlinkClient) -> str | None:
    try:
        return python_failure(client.jobmanager_log())
    except FlinkError:
        return None


def _exists(client: FlinkClient, job_id: str) -> bool:
    try:
        client.job(job_id)
    except FlinkError:
        return False
    return True
