"""A small client of Flink's REST API (the part Eddyline uses), on httpx.

Every failure is a FlinkError of the class its answer means (deploy/errors.py): no answer at all
is a FlinkUnreachableError, 408/429/5xx a FlinkUnavailableError (both temporary), 404 a
FlinkNotFoundError, 409 a FlinkConflictError, another 4xx a FlinkRefusedError. Callers catch the
class they can handle instead of comparing status codes.

Tests of pure logic pass an `httpx.MockTransport`; integration tests talk to the real cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from deploy.errors import FlinkError, FlinkNotFoundError, FlinkUnreachableError

RUN_TIMEOUT_S = 300.0


class FlinkClient:
    def __init__(
        self, base_url: str, timeout: float = 30.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FlinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The answer to a request, or the FlinkError its failure means (classified here, once)."""
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise FlinkUnreachableError(
                f"Flink REST {method} {path} at {self.base_url} failed: {e}"
            ) from e
        if resp.status_code >= 400:
            # Built from the status, FlinkError is already its leaf (FlinkNotFoundError, …).
            raise FlinkError(
                f"Flink REST {method} {path} answered {resp.status_code}: {_errors(resp)}",
                status=resp.status_code,
            )
        return resp

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self._send(method, path, **kwargs)
        return resp.json() if resp.content else {}

    # -- cluster ---------------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/overview")
        return result

    def taskmanagers(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/taskmanagers").get("taskmanagers", []))

    def jobmanager_log(self) -> str:
        """The JobManager's main log file, as the Web UI shows it."""
        return self._send("GET", "/jobmanager/log").text

    # -- jars ------------------------------------------------------------------------------

    def jars(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/jars").get("files", []))

    def upload_jar(self, jar: Path) -> str:
        """Upload `jar`; returns the id Flink gives it (its stored file name)."""
        with jar.open("rb") as f:
            body = self._call(
                "POST",
                "/jars/upload",
                files={"jarfile": (jar.name, f, "application/x-java-archive")},
            )
        return str(body["filename"]).rsplit("/", 1)[-1]

    def upload_artifact(self, archive: Path, name: str) -> str:
        """Upload a zip under `name` (Flink takes only names ending in .jar) for a job to ship
        with python.files; returns the path where the JobManager stored it."""
        with archive.open("rb") as f:
            body = self._call(
                "POST", "/jars/upload", files={"jarfile": (name, f, "application/x-java-archive")}
            )
        return str(body["filename"])

    def ensure_jar(self, jar: Path) -> str:
        """The id of an uploaded copy of `jar`, uploading it only if none is there yet."""
        for entry in self.jars():
            if entry.get("name") == jar.name:
                return str(entry["id"])
        return self.upload_jar(jar)

    def run_jar(
        self,
        jar_id: str,
        entry_class: str,
        args: list[str],
        *,
        parallelism: int | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool = False,
        job_id: str | None = None,
        configuration: dict[str, str] | None = None,
    ) -> str:
        body: dict[str, Any] = {"entryClass": entry_class, "programArgsList": args}
        if parallelism is not None:
            body["parallelism"] = parallelism
        if job_id is not None:
            body["jobId"] = job_id  # Flink refuses a second job with this id: submits are safe
        if configuration:
            body["flinkConfiguration"] = configuration
        if savepoint_path:
            body["savepointPath"] = savepoint_path
            body["allowNonRestoredState"] = allow_non_restored_state
        # Flink answers only after running the job's main (for Python: starting the interpreter
        # and planning the job), which takes far longer than other calls on a busy machine.
        run = self._call("POST", f"/jars/{jar_id}/run", json=body, timeout=RUN_TIMEOUT_S)
        return str(run["jobid"])

    def plan_jar(
        self,
        jar_id: str,
        entry_class: str,
        args: list[str],
        *,
        parallelism: int | None = None,
        configuration: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The job graph `run_jar` with these arguments would submit, without running it: Flink
        runs the program's main in plan mode (for Python, the driver and the job's own main)
        and answers `{"plan": {"nodes": [{"id", "parallelism", "description", …}]}}`."""
        body: dict[str, Any] = {"entryClass": entry_class, "programArgsList": args}
        if parallelism is not None:
            body["parallelism"] = parallelism
        if configuration:
            body["flinkConfiguration"] = configuration
        result: dict[str, Any] = self._call(
            "POST", f"/jars/{jar_id}/plan", json=body, timeout=RUN_TIMEOUT_S
        )
        return result

    # -- jobs ------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/jobs/overview").get("jobs", []))

    def job(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}")
        return result

    def job_if_known(self, job_id: str) -> dict[str, Any] | None:
        """The job's details, or None when Flink does not know it (404); other errors raise."""
        try:
            return self.job(job_id)
        except FlinkNotFoundError:
            return None

    def job_exceptions(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/exceptions")
        return result

    def failure(self, job_id: str) -> str:
        """The job's latest failure as Flink's stack trace ('' if none). Flink 2 reports it in
        the exception history; older versions as `root-exception`."""
        answer = self.job_exceptions(job_id)
        history = (answer.get("exceptionHistory") or {}).get("entries") or []
        if history:
            latest = history[0]
            return str(latest.get("stacktrace") or latest.get("exceptionName") or "")
        if answer.get("root-exception"):
            return str(answer["root-exception"])
        # A job that failed while its JobMaster was being set up (its checkpoint storage could
        # not be created, say) has no exception history: its failure is in the job's result.
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/execution-result")
        cause = (result.get("job-execution-result") or {}).get("failure-cause") or {}
        return str(cause.get("stack-trace") or cause.get("class") or "")

    def vertex_watermarks(self, job_id: str, vertex_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/jobs/{job_id}/vertices/{vertex_id}/watermarks"))

    def vertex_metrics(
        self, job_id: str, vertex_id: str, names: list[str] | None = None
    ) -> dict[str, str]:
        """The vertex's metric ids (with `names`, their values too), e.g. `0.numRecordsIn`."""
        params = {"get": ",".join(names)} if names else None
        path = f"/jobs/{job_id}/vertices/{vertex_id}/metrics"
        return {m["id"]: m.get("value", "") for m in self._call("GET", path, params=params)}

    def subtask_metrics(
        self, job_id: str, vertex_id: str, names: list[str] | None = None, agg: str = "sum,max"
    ) -> dict[str, dict[str, float]]:
        """Metrics aggregated over the vertex's subtasks: {name: {"sum": …, "max": …}}; without
        `names`, the names available (with empty aggregates)."""
        path = f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics"
        params = {"get": ",".join(names), "agg": agg} if names else None
        out: dict[str, dict[str, float]] = {}
        for m in self._call("GET", path, params=params):
            out[str(m["id"])] = {k: float(v) for k, v in m.items() if k != "id"}
        return out

    def flame_graph(self, job_id: str, vertex_id: str, kind: str = "on_cpu") -> dict[str, Any]:
        """A vertex's flame graph (needs rest.flamegraph.enabled); Flink starts sampling on the
        first request and answers with an empty graph until it has one."""
        result: dict[str, Any] = self._call(
            "GET", f"/jobs/{job_id}/vertices/{vertex_id}/flamegraph", params={"type": kind}
        )
        return result

    def cancel(self, job_id: str) -> None:
        self._call("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/checkpoints")
        return result

    def checkpoint_details(self, job_id: str, checkpoint_id: int) -> dict[str, Any]:
        """One checkpoint's figures, per vertex under "tasks" (state_size, …)."""
        result: dict[str, Any] = self._call(
            "GET", f"/jobs/{job_id}/checkpoints/details/{checkpoint_id}"
        )
        return result

    # -- in-place rescaling (adaptive scheduler only) ----------------------------------------

    def cluster_config(self) -> dict[str, str]:
        """The JobManager's effective configuration as key → value."""
        entries: list[dict[str, Any]] = self._call("GET", "/jobmanager/config")
        return {str(e["key"]): str(e["value"]) for e in entries}

    def resource_requirements(self, job_id: str) -> dict[str, Any]:
        """`{vertexId: {"parallelism": {"lowerBound": n, "upperBound": m}}}`"""
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/resource-requirements")
        return result

    def set_parallelism(self, job_id: str, parallelism: int) -> None:
        """Ask the adaptive scheduler to run every vertex at up to `parallelism` subtasks (at
        least one, so a short cluster runs the job smaller rather than stopping it). Flink
        restarts the tasks from the latest checkpoint; the job keeps its id. Idempotent."""
        bounds = {"lowerBound": 1, "upperBound": parallelism}
        body = {v: {"parallelism": bounds} for v in self.resource_requirements(job_id)}
        self._call("PUT", f"/jobs/{job_id}/resource-requirements", json=body)

    # -- savepoints: a caller-chosen trigger id makes each request idempotent ----------------

    def trigger_savepoint(self, job_id: str, trigger_id: str) -> None:
        self._call(
            "POST",
            f"/jobs/{job_id}/savepoints",
            json={"triggerId": trigger_id, "cancel-job": False},
        )

    def stop_with_savepoint(self, job_id: str, trigger_id: str) -> None:
        self._call("POST", f"/jobs/{job_id}/stop", json={"triggerId": trigger_id, "drain": False})

    def savepoint_status(self, job_id: str, trigger_id: str) -> dict[str, Any]:
        """`{"status": {"id": IN_PROGRESS|COMPLETED}, "operation": {"location"|"failure-cause"}}`"""
        result: dict[str, Any] = self._call("GET", f"/jobs/{job_id}/savepoints/{trigger_id}")
        return result

    def dispose_savepoint(self, path: str) -> None:
        """Ask Flink to delete a savepoint (it runs in the background)."""
        self._call("POST", "/savepoint-disposal", json={"savepoint-path": path})


def _errors(resp: httpx.Response) -> str:
    try:
        errors = resp.json().get("errors", [])
    except ValueError:
        return resp.text[:500]
    # Flink puts a Java stack trace in the errors; the first line of each says what went wrong.
    return "; ".join(str(e).strip().splitlines()[0] for e in errors if str(e).strip())[:1000]
