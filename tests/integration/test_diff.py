"""`eddyline diff` against the real stack and a real controller: a stateful job runs, and diff
says what each change would do — nothing, a rescale, a savepoint upgrade that drops the
counting operator's state (exit 3, the operator named) — and Flink then does what it said:
it refuses exactly that operator's state, and accepts the change with allowNonRestoredState.
`refuse_dropped_state` (for `eddyline submit`) refuses the dropping change the same way."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import kafka_io
from deploy.cli.diff import StateDropError, refuse_dropped_state
from deploy.cli.options import JobTarget
from deploy.flink import plans
from deploy.spec import FlinkJob, parse
from tests.integration.managed import Managed, allowed_env, flinkjob
from tests.integration.stacks import RunningStack

ENTRY = "tests/jobs/counter.py"


def counter(run: str, topics: tuple[str, str], *extra: str, **job: Any) -> dict[str, Any]:
    args = ["--input-topic", topics[0], "--output-topic", topics[1], "--group-id", f"c-{run}"]
    return flinkjob("tally", ENTRY, [*args, *extra], job=job, kafka={"inputTopics": [topics[0]]})


def diff(managed: Managed, doc: dict[str, Any], *options: str) -> tuple[int, str]:
    path = managed.state_dir / f"diff-{time.time_ns()}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = managed.cli(
        "diff", str(path), "--flink-url", managed.stack.flink_url,
        "--bootstrap-servers", managed.stack.bootstrap_servers, *options,
    )  # fmt: skip
    assert done.returncode in (0, 3), f"exit {done.returncode}: {done.stderr}"
    return done.returncode, done.stdout


def diff_json(managed: Managed, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    code, out = diff(managed, doc, "-o", "json")
    document: dict[str, Any] = json.loads(out)
    assert document["exitCode"] == code
    return code, document


def counting_vertex(managed: Managed, job_id: str, timeout: float = 120) -> str:
    """The id of the counting vertex, once a completed checkpoint holds its state."""
    deadline = time.monotonic() + timeout
    while True:
        graph = plans.running_graph(managed.flink, job_id)
        for v in graph.vertices:
            if "KEYED PROCESS" in v.name and (v.state_size or 0) > 0:
                return v.id
        assert time.monotonic() < deadline, f"no checkpointed count state: {graph}"
        time.sleep(1)


def test_diff_says_what_a_change_does_to_the_running_job_s_state(
    stack: RunningStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI finds the stack's Flink as a user's does, through its settings: `submit` checks
    # the state with it.
    managed = Managed(stack, tmp_path, env={"EDDYLINE_FLINK_PORT": str(stack.settings.flink_port)})
    managed.start_controller()
    try:
        run = uuid.uuid4().hex[:8]
        topics = (f"counted-{run}", f"counts-{run}")
        kafka_io.create_topics(stack.bootstrap_servers, {topics[0]: 2, topics[1]: 1})
        sender = kafka_io.Sender(stack.bootstrap_servers)
        for i in range(200):
            sender.send(topics[0], None, f"k{i % 13}".encode())
        sender.close()

        base = counter(run, topics)
        assert managed.submit(base).returncode == 0
        first = managed.wait_running("tally", 1)
        assert first.status.job_id is not None
        counting = counting_vertex(managed, first.status.job_id)

        # The same spec: the controller does nothing, and there is no state to check.
        code, same = diff_json(managed, base)
        assert (code, same["action"], same["stateCheck"], same["changes"]) == (
            0, "nothing", None, []
        )  # fmt: skip

        # The parallelism: in place on the stack's adaptive scheduler, every state kept.
        code, scaled = diff_json(managed, counter(run, topics, parallelism=2))
        assert code == 0
        adaptive = managed.flink.cluster_config().get("jobmanager.scheduler") == "adaptive"
        assert scaled["action"] == ("in-place-rescale" if adaptive else "savepoint-upgrade")
        assert scaled["changes"] == [{"path": "job.parallelism", "old": 1, "new": 2}]
        verdicts = {o["id"]: o["verdict"] for o in scaled["stateCheck"]["operators"]}
        assert verdicts[counting] == "kept"
        assert set(verdicts.values()) <= {"kept", "stateless"}

        # A new uid for the counting operator: its state would have no home. Flink plans the
        # new graph; the operator is named, and the exit code is 3, in a table too.
        renamed = counter(run, topics, "--uid", "tally-v2")
        code, dropping = diff_json(managed, renamed)
        assert code == 3
        assert dropping["action"] == "savepoint-upgrade"
        assert dropping["stateCheck"]["dropped"] == [counting]
        assert dropping["stateCheck"]["refused"] is True
        new_ids = [o["id"] for o in dropping["stateCheck"]["operators"] if o["verdict"] == "new"]
        assert len(new_ids) == 1
        code, table = diff(managed, renamed)
        assert code == 3
        assert counting in table
        assert "allowNonRestoredState" in table

        # What `eddyline submit` will call: the same refusal, every lost operator listed
        # (in this process: the test's entry folder allowed as for the CLI).
        for key, value in allowed_env().items():
            monkeypatch.setenv(key, value)
        target = JobTarget(state_dir=tmp_path)
        with pytest.raises(StateDropError) as refused:
            refuse_dropped_state(
                target,
                parse(renamed),
                flink_url=stack.flink_url,
                bootstrap_servers=stack.bootstrap_servers,
            )
        assert counting in str(refused.value)
        assert "spec.job.allowNonRestoredState" in str(refused.value)

        # The same change with allowNonRestoredState: listed, but allowed (exit 0).
        allowed = counter(run, topics, "--uid", "tally-v2", allowNonRestoredState=True)
        code, accepted = diff_json(managed, allowed)
        assert code == 0
        assert accepted["stateCheck"]["dropped"] == [counting]
        refuse_dropped_state(
            target,
            parse(allowed),
            flink_url=stack.flink_url,
            bootstrap_servers=stack.bootstrap_servers,
        )

        # `eddyline submit` refuses the dropping change itself (exit 2, the operator named),
        # and stores nothing.
        generation = managed.job("tally").metadata.generation
        refused_submit = managed.submit(renamed)
        assert refused_submit.returncode == 2, refused_submit.stderr
        assert counting in refused_submit.stderr
        assert "allowNonRestoredState" in refused_submit.stderr
        assert managed.job("tally").metadata.generation == generation

        # And Flink does what diff said. Stored past the CLI (as `kubectl apply` would), Flink
        # refuses exactly that operator's state...
        managed.store.apply(parse(renamed))

        def refused_by_flink(job: FlinkJob) -> bool:
            return any(
                "Cannot map checkpoint/savepoint state" in e.message and counting in e.message
                for e in job.status.events
            )

        managed.wait("tally", refused_by_flink, "be refused by Flink", timeout=180)
        # ...and takes the change once allowNonRestoredState says to drop it, with the new
        # counting vertex under the id diff planned.
        assert managed.submit(allowed).returncode == 0
        final = managed.wait_running("tally", 3)
        assert final.status.job_id is not None
        graph = plans.running_graph(managed.flink, final.status.job_id)
        assert new_ids[0] in {v.id for v in graph.vertices}
        assert counting not in {v.id for v in graph.vertices}
    finally:
        managed.close()
