"""The smoke job on the real stack: Kafka → PyFlink (Python worker) → Kafka, output checked exactly.

The expected output is computed here from the events, independently of the job's code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from deploy import kafka_io
from deploy.errors import FlinkError
from deploy.flink import pyjobs
from deploy.flink.rest import FlinkClient
from deploy.flink.states import TERMINAL_STATES
from tests.integration.stacks import RunningStack

GOOD = 500
BAD = [b"not json", b"{}", json.dumps({"id": "1", "word": "x"}).encode(), b"\xff\xfe"]


def _events() -> list[bytes]:
    return [json.dumps({"id": i, "word": f"w{i % 17}", "extra": i}).encode() for i in range(GOOD)]


def _expected_good() -> Counter[str]:
    out: Counter[str] = Counter()
    for i in range(GOOD):
        word = f"w{i % 17}"
        rec = {"id": i, "word": word, "upper": word.upper(), "length": len(word)}
        out[json.dumps(rec, sort_keys=True)] += 1
    return out


def _topics(stack: RunningStack) -> tuple[str, str]:
    run = uuid.uuid4().hex[:8]
    source, sink = f"smoke-in-{run}", f"smoke-out-{run}"
    kafka_io.create_topics(stack.bootstrap_servers, {source: 2, sink: 2})
    kafka_io.produce(stack.bootstrap_servers, source, ((None, v) for v in _events() + BAD))
    return source, sink


def _check_output(stack: RunningStack, sink: str) -> None:
    records = kafka_io.read_all(stack.bootstrap_servers, sink, expected=GOOD + len(BAD))
    outputs = [json.loads(r.value) for r in records]
    good = Counter(json.dumps(o, sort_keys=True) for o in outputs if "error" not in o)
    errors = [o for o in outputs if "error" in o]
    assert good == _expected_good()
    assert len(errors) == len(BAD)
    assert sorted(e["raw"] for e in errors if "\ufffd" not in e["raw"]) == sorted(
        b.decode() for b in BAD if b != b"\xff\xfe"
    )


def test_smoke_job_submitted_through_rest_transforms_every_event(stack: RunningStack) -> None:
    source, sink = _topics(stack)
    with FlinkClient(stack.flink_url) as flink:
        job_id = pyjobs.submit(
            flink,
            "jobs.smoke",
            [
                "--bootstrap-servers", stack.bootstrap_servers,
                "--input-topic", source,
                "--output-topic", sink,
                "--group-id", f"test-{source}",
                "--bounded",
            ],
        )  # fmt: skip
        state, deadline = "CREATED", time.monotonic() + 180
        while state not in TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(1)
            state = flink.job(job_id)["state"]
        assert state == "FINISHED", flink.job_exceptions(job_id).get("root-exception")
        names = {j["jid"]: j["name"] for j in flink.jobs()}
        assert names[job_id] == "smoke"
    _check_output(stack, sink)


def test_smoke_job_runs_embedded_with_python_dash_m(stack: RunningStack) -> None:
    source, sink = _topics(stack)
    done = subprocess.run(
        [
            sys.executable, "-m", "jobs.smoke",
            "--bootstrap-servers", stack.bootstrap_servers,
            "--input-topic", source,
            "--output-topic", sink,
            "--group-id", f"test-{source}",
            "--bounded",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    _check_output(stack, sink)


def test_a_job_that_fails_before_submitting_says_why(stack: RunningStack) -> None:
    with FlinkClient(stack.flink_url) as flink, pytest.raises(FlinkError) as info:
        pyjobs.submit(flink, "jobs.smoke", ["--starting-offsets", "tomorrow"])
    message = str(info.value)
    assert "jobs.smoke failed before it became a job: " in message
    assert "invalid choice: 'tomorrow'" in message
    assert f"{stack.flink_url}/#/job-manager/logs" in message
