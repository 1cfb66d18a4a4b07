"""Submitting PyFlink jobs to a session cluster through the REST API.

Flink runs Python jobs through its Java `PythonDriver` inside the flink-python jar: we upload
that jar once and start it with `-pym <module>` (a job under jobs/) and the job's own flags.
"""

from __future__ import annotations

from deploy import paths
from deploy.flink_rest import PYTHON_DRIVER, FlinkClient


def driver_args(module: str, args: list[str]) -> list[str]:
    """PythonDriver's arguments for running `module` with the job flags `args`."""
    return ["-pym", module, *args]


def submit(
    client: FlinkClient,
    module: str,
    args: list[str],
    *,
    parallelism: int | None = None,
    savepoint_path: str | None = None,
    allow_non_restored_state: bool = False,
) -> str:
    """Start `python -m module args` as a job on the cluster; returns its job id."""
    jar_id = client.ensure_jar(paths.flink_python_jar())
    return client.run_jar(
        jar_id,
        PYTHON_DRIVER,
        driver_args(module, args),
        parallelism=parallelism,
        savepoint_path=savepoint_path,
        allow_non_restored_state=allow_non_restored_state,
    )
