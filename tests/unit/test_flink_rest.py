"""The Flink REST client against a fake transport (the real cluster is in tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from deploy.errors import (
    FlinkError,
    FlinkNotFoundError,
    FlinkUnreachableError,
    MissingToolError,
    PermanentError,
    ProgramError,
)
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import PYTHON_DRIVER


class FakeFlink:
    """Answers the few endpoints the client uses and records what it was sent."""

    def __init__(self) -> None:
        self.jars: list[dict[str, str]] = []
        self.runs: list[tuple[str, dict[str, object]]] = []
        self.uploads = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/jars" and request.method == "GET":
            return httpx.Response(200, json={"files": self.jars})
        if path == "/jars/upload":
            self.uploads += 1
            name = "abc_flink-python-2.2.1.jar"
            self.jars.append({"id": name, "name": "flink-python-2.2.1.jar"})
            return httpx.Response(200, json={"filename": f"/tmp/uploads/{name}", "status": "ok"})
        if path.startswith("/jars/") and path.endswith("/run"):
            self.runs.append((path.split("/")[2], json.loads(request.content)))
            return httpx.Response(200, json={"jobid": "0123abcd"})
        if path == "/jobs/missing":
            return httpx.Response(
                404,
                json={"errors": ["org.apache.flink...NotFound: Job missing not found\n\tat x.y"]},
            )
        return httpx.Response(500, text="unexpected")


@pytest.fixture
def fake() -> FakeFlink:
    return FakeFlink()


@pytest.fixture
def client(fake: FakeFlink) -> FlinkClient:
    return FlinkClient("http://flink:8081", transport=httpx.MockTransport(fake))


def test_submit_uploads_the_python_jar_once_and_runs_the_driver(
    fake: FakeFlink, client: FlinkClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    jar = tmp_path / "flink-python-2.2.1.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setattr("deploy.paths.flink_python_jar", lambda: jar)
    first = pyjobs.submit(client, "jobs.smoke", ["--bounded"], parallelism=2)
    second = pyjobs.submit(client, "jobs.smoke", [], savepoint_path="file:///sp/1")
    assert first == second == "0123abcd"
    assert fake.uploads == 1
    (jar_id, body), (_, body2) = fake.runs
    assert jar_id == "abc_flink-python-2.2.1.jar"
    assert body == {
        "entryClass": PYTHON_DRIVER,
        "programArgsList": ["-pym", "jobs.smoke", "--bounded"],
        "parallelism": 2,
    }
    assert body2["savepointPath"] == "file:///sp/1"
    assert body2["allowNonRestoredState"] is False


def test_errors_carry_the_status_and_the_first_line_of_flinks_message(
    client: FlinkClient,
) -> None:
    with pytest.raises(FlinkError) as info:
        client.job("missing")
    assert info.value.status == 404
    assert isinstance(info.value, FlinkNotFoundError)
    assert "GET /jobs/missing answered 404" in str(info.value)
    assert "Job missing not found" in str(info.value)
    assert "\tat" not in str(info.value)


def test_connection_errors_name_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with (
        FlinkClient("http://flink:8081", transport=httpx.MockTransport(refuse)) as c,
        pytest.raises(FlinkError, match="at http://flink:8081 failed: connection refused") as info,
    ):
        c.overview()
    assert isinstance(info.value, FlinkUnreachableError)


_PREFIX = "2026-11-26 18:03:50,001 INFO  org.apache.flink.client.python.PythonDriver    [] - "
LOG = "".join(
    _PREFIX + line + "\n"
    for line in [
        "--------------------------- Python Process Started --------------------------",
        "Traceback (most recent call last):",
        '  File "/work/jobs/sessions.py", line 70, in <module>',
        "pyflink.util.exceptions.TableException: DAY_INTERVAL_TYPES precision is not supported: 9",
        "--------------------------- Python Process Exited ---------------------------",
    ]
)


def test_a_failed_python_submission_reports_the_traceback_cause(
    fake: FakeFlink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/run"):
            return httpx.Response(
                400, json={"errors": ["RestHandlerException: Could not execute application."]}
            )
        if request.url.path == "/jobmanager/log":
            return httpx.Response(200, text=LOG)
        return fake(request)

    jar = tmp_path / "flink-python-2.2.1.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setattr("deploy.paths.flink_python_jar", lambda: jar)
    with (
        FlinkClient("http://flink:8081", transport=httpx.MockTransport(answer)) as c,
        pytest.raises(FlinkError) as info,
    ):
        pyjobs.submit(c, "jobs.sessions", [])
    message = str(info.value)
    assert (
        "jobs.sessions failed before it became a job: pyflink.util.exceptions.TableException:"
        " DAY_INTERVAL_TYPES precision is not supported: 9" in message
    )
    assert "http://flink:8081/#/job-manager/logs" in message
    assert info.value.status == 400
    assert isinstance(info.value, ProgramError)  # permanent: the same program fails again


def test_a_submission_without_an_answer_is_not_explained_from_the_log(
    fake: FakeFlink, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A timeout may have started the job after all: neither the log (an older failure may be
    in it) nor the job's existence is asked; the error says Flink did not answer."""
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/run"):
            raise httpx.ReadTimeout("timed out", request=request)
        if request.url.path == "/jobmanager/log":
            return httpx.Response(200, text=LOG)
        return fake(request)

    jar = tmp_path / "flink-python-2.2.1.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setattr("deploy.paths.flink_python_jar", lambda: jar)
    with (
        FlinkClient("http://flink:8081", transport=httpx.MockTransport(answer)) as c,
        pytest.raises(FlinkUnreachableError, match="timed out"),
    ):
        pyjobs.submit(c, "jobs.sessions", [], job_id="a" * 32)
    assert asked[-1].endswith("/run")


def test_a_missing_flink_python_jar_is_a_permanent_error(
    client: FlinkClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def missing() -> Path:
        raise FileNotFoundError(f"no flink-python jar in {tmp_path}")

    monkeypatch.setattr("deploy.paths.flink_python_jar", missing)
    with pytest.raises(MissingToolError, match="no flink-python jar") as info:
        pyjobs.submit(client, "jobs.smoke", [])
    assert isinstance(info.value, PermanentError)


def test_no_finished_python_process_means_no_cause() -> None:
    assert pyjobs.python_failure("INFO nothing to see") is None
    still_running = LOG.split("--------------------------- Python Process Exited")[0]
    assert pyjobs.python_failure(still_running) is None


def test_other_loggers_lines_are_not_the_cause() -> None:
    other = "2026-11-26 18:03:50,004 INFO  org.apache.flink.runtime.dispatcher.Dispatcher [] - x\n"
    lines = LOG.splitlines(keepends=True)
    mixed = "".join([*lines[:-1], other, lines[-1]])
    assert pyjobs.python_failure(mixed) == (
        "pyflink.util.exceptions.TableException: DAY_INTERVAL_TYPES precision is not supported: 9"
    )


def test_job_if_known_is_none_for_an_unknown_job_and_raises_other_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jobs/known":
            return httpx.Response(200, json={"jid": "known", "state": "RUNNING"})
        if request.url.path == "/jobs/gone":
            return httpx.Response(404, json={"errors": ["Job gone not found"]})
        return httpx.Response(500, json={"errors": ["boom"]})

    client = FlinkClient("http://flink:8081", transport=httpx.MockTransport(answer))
    assert client.job_if_known("known") == {"jid": "known", "state": "RUNNING"}
    assert client.job_if_known("gone") is None
    with pytest.raises(FlinkError, match="boom"):
        client.job_if_known("broken")
