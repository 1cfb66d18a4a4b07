"""`eddyline diff` without servers: the state comparison, the action preview (checked against the
controller's own decide()), the REST reading over recorded-shape answers (an httpx
MockTransport), the JSON document, exit codes and the refusal for `submit`. The real cluster
is in tests/integration/test_diff.py."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from deploy.cli import diff as diff_cli
from deploy.cli.app import app
from deploy.cli.options import JobTarget
from deploy.controller.decide import decide
from deploy.controller.decide.preview import Action, changes, preview
from deploy.controller.model import Cancel, Rescale, StopWithSavepoint, Submit
from deploy.errors import SpecError
from deploy.flink import entries, plans
from deploy.flink.graphs import Graph, Verdict, Vertex, compare
from deploy.flink.rest import FlinkClient
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import FlinkJob, JobState, Lifecycle, UpgradeMode
from tests.unit.builders import change_job, deployed, flinkjob, obs, running, set_status

SOURCE = "cbc357ccb763df2852fee8c4fc7d55f2"
LEDGER = "c813a8a9e8f9c0aa40c67f3aee4d5b3c"
RENAMED = "f87d82977f8d6fee965276a0168c57b7"
JOB = "0000000000000000000000006b121dda"


# -- the comparison --------------------------------------------------------------------------------


def graph(*vertices: Vertex, checkpoint: int | None = 4) -> Graph:
    return Graph(vertices, checkpoint)


def old(vid: str, size: int | None, parallelism: int = 1, max_p: int = 128) -> Vertex:
    return Vertex(vid, f"v-{vid[:4]}", parallelism, max_p, size)


def new(vid: str, parallelism: int = 1) -> Vertex:
    return Vertex(vid, f"n-{vid[:4]}", parallelism)


def test_the_same_graph_keeps_every_state() -> None:
    check = compare(
        graph(old(SOURCE, 867), old(LEDGER, 3746)),
        graph(new(LEDGER), new(SOURCE)),
        allow_non_restored_state=False,
    )
    assert [o.verdict for o in check.operators] == [Verdict.kept, Verdict.kept]
    assert not check.refused


def test_a_stateful_vertex_without_a_home_is_dropped_and_refused_unless_allowed() -> None:
    running = graph(old(SOURCE, 867), old(LEDGER, 3746))
    planned = graph(new(SOURCE), new(RENAMED))
    check = compare(running, planned, allow_non_restored_state=False)
    assert [(o.id, o.verdict) for o in check.operators] == [
        (SOURCE, Verdict.kept),
        (LEDGER, Verdict.dropped),
        (RENAMED, Verdict.new),
    ]
    assert check.dropped[0].state_size == 3746
    assert LEDGER in check.dropped[0].reason
    assert check.refused
    allowed = compare(running, planned, allow_non_restored_state=True)
    assert [o.id for o in allowed.dropped] == [LEDGER]
    assert not allowed.refused


def test_a_vertex_that_held_no_state_may_go() -> None:
    check = compare(
        graph(old(SOURCE, 867), old(LEDGER, 0)),
        graph(new(SOURCE)),
        allow_non_restored_state=False,
    )
    assert [o.verdict for o in check.operators] == [Verdict.kept, Verdict.stateless]
    assert not check.refused


def test_without_a_checkpoint_every_vertex_is_taken_to_hold_state() -> None:
    running = graph(old(SOURCE, None), old(LEDGER, None), checkpoint=None)
    check = compare(running, graph(new(SOURCE)), allow_non_restored_state=False)
    assert [o.verdict for o in check.operators] == [Verdict.kept, Verdict.dropped]
    assert "assumed" in check.dropped[0].reason


def test_parallelism_beyond_the_state_max_parallelism_cannot_be_restored_even_when_allowed() -> (
    None
):
    check = compare(
        graph(old(LEDGER, 10, max_p=128)),
        graph(new(LEDGER, parallelism=200)),
        allow_non_restored_state=True,
    )
    (only,) = check.operators
    assert only.verdict == Verdict.unrestorable
    assert "200" in only.reason
    assert "128" in only.reason
    assert check.refused


def test_an_explicit_max_parallelism_must_equal_the_state_s() -> None:
    running = graph(old(LEDGER, 10, max_p=128))
    planned = graph(new(LEDGER, parallelism=2))
    changed = compare(
        running, planned, allow_non_restored_state=False, configured_max_parallelism=256
    )
    assert changed.operators[0].verdict == Verdict.unrestorable
    same = compare(running, planned, allow_non_restored_state=False, configured_max_parallelism=128)
    assert same.operators[0].verdict == Verdict.kept
    # A stateless vertex has no key groups to keep.
    empty = compare(
        graph(old(LEDGER, 0)), planned, allow_non_restored_state=False, configured_max_parallelism=9
    )
    assert empty.operators[0].verdict == Verdict.stateless


# -- the action: preview() agrees with decide() ----------------------------------------------------


def decided(job: FlinkJob, adaptive: bool) -> Action:
    """What the controller's own decide() starts for `job` with its job j1 running."""
    plan = decide(job, obs(job=running("j1", parallelism=1), adaptive=adaptive))
    kinds = [type(a) for a in plan.actions]
    op = plan.status.operation
    if Rescale in kinds:
        return Action.rescale
    if StopWithSavepoint in kinds:
        assert op is not None
        return Action.suspend if op.kind == "suspend" else Action.savepoint_upgrade
    if Cancel in kinds:
        assert op is not None
        if op.upgrade_mode == UpgradeMode.last_state:
            return Action.last_state_upgrade
        return Action.stateless_restart
    assert Submit not in kinds
    return Action.nothing


@pytest.mark.parametrize(
    ("change", "adaptive", "expected"),
    [
        ({}, True, Action.nothing),
        ({"parallelism": 2}, True, Action.rescale),
        ({"parallelism": 2}, False, Action.savepoint_upgrade),
        ({"args": ["--orders-topic", "other"]}, True, Action.savepoint_upgrade),
        (
            {"upgrade_mode": UpgradeMode.last_state, "parallelism": 3},
            False,
            Action.last_state_upgrade,
        ),
        ({"upgrade_mode": UpgradeMode.stateless, "args": []}, True, Action.stateless_restart),
        ({"state": JobState.suspended}, True, Action.suspend),
    ],
)
def test_preview_names_what_decide_does(
    change: dict[str, Any], adaptive: bool, expected: Action
) -> None:
    stored = deployed(flinkjob(), parallelism=1)
    wanted = change_job(stored, **change) if change else stored
    chosen = preview(stored, wanted.spec, live=True, adaptive=adaptive)
    assert chosen.action == expected
    assert decided(wanted, adaptive) == expected


def test_a_restart_request_is_an_upgrade_even_for_a_parallelism_change() -> None:
    stored = deployed(flinkjob(), parallelism=1)
    wanted = change_job(stored, parallelism=2).spec.model_copy(update={"restart_nonce": 7})
    chosen = preview(stored, wanted, live=True, adaptive=True)
    assert chosen.action == Action.savepoint_upgrade
    assert "restartNonce" in chosen.reason


def test_no_live_job_starts_or_resumes_from_the_newest_state() -> None:
    spec = flinkjob().spec
    assert preview(None, spec, live=False, adaptive=True).action == Action.start
    suspended = set_status(
        deployed(flinkjob()),
        lifecycle=Lifecycle.SUSPENDED,
        job_id=None,
        upgrade_savepoint_path="sp",
    )
    resumed = preview(suspended, spec, live=False, adaptive=True)
    assert resumed.action == Action.resume
    assert resumed.restore_from == "sp"
    assert not resumed.restores_running_state
    kept = preview(suspended, spec.with_job(state=JobState.suspended), live=False, adaptive=True)
    assert kept.action == Action.nothing


def test_a_failed_job_stays_failed_for_the_same_spec() -> None:
    failed = set_status(deployed(flinkjob()), lifecycle=Lifecycle.FAILED)
    assert preview(failed, failed.spec, live=False, adaptive=True).action == Action.nothing
    other = change_job(failed, parallelism=2).spec
    assert preview(failed, other, live=False, adaptive=True).action == Action.resume


def test_changes_lists_each_changed_field_of_what_the_job_is_built_from() -> None:
    before = flinkjob().spec
    after = before.with_job(parallelism=3, state=JobState.suspended).model_copy(
        update={"flink_configuration": {"pipeline.max-parallelism": "64"}}
    )
    assert changes(before, after) == [
        ("flinkConfiguration.pipeline.max-parallelism", None, "64"),
        ("job.parallelism", 1, 3),
    ]  # the wanted state is a request, not part of the job


# -- the REST reading, over answers in Flink's own shape -------------------------------------------


JOB_ANSWER = {
    "jid": JOB,
    "state": "RUNNING",
    "vertices": [
        {"id": SOURCE, "name": "Source: orders_src", "parallelism": 1, "maxParallelism": 128},
        {"id": LEDGER, "name": "ledger -> stock_levels", "parallelism": 1, "maxParallelism": 128},
    ],
}
CHECKPOINTS = {"latest": {"completed": {"id": 4, "status": "COMPLETED", "state_size": 4613}}}
DETAILS = {
    "id": 4,
    "tasks": {
        LEDGER: {"id": 4, "state_size": 3746, "checkpointed_size": 3746},
        SOURCE: {"id": 4, "state_size": 867, "checkpointed_size": 867},
    },
}


def plan_answer(*ids: str) -> dict[str, Any]:
    return {
        "plan": {
            "jid": "e4297e7792402ed30c9f746912a1108a",
            "name": "ledger",
            "type": "STREAMING",
            "nodes": [
                {
                    "id": vid,
                    "parallelism": 1,
                    "operator": "",
                    "description": f"op-{vid[:4]}<br/>+- [12]:Calc(x &lt; 1)<br/>",
                    "inputs": [],
                }
                for vid in ids
            ],
        }
    }


class RecordedFlink:
    """The endpoints `eddyline diff` reads, answering as Flink 2 does; records plan requests."""

    def __init__(self, planned: tuple[str, ...] = (SOURCE, LEDGER), scheduler: str = "adaptive"):
        self.planned = planned
        self.scheduler = scheduler
        self.plan_bodies: list[dict[str, Any]] = []
        self.unreachable = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.unreachable:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        answers: dict[str, Any] = {
            f"/jobs/{JOB}": JOB_ANSWER,
            f"/jobs/{JOB}/checkpoints": CHECKPOINTS,
            f"/jobs/{JOB}/checkpoints/details/4": DETAILS,
            "/jobmanager/config": [{"key": "jobmanager.scheduler", "value": self.scheduler}],
            "/jars": {"files": [{"id": "abc_flink-python.jar", "name": _jar_name()}]},
        }
        if path in answers:
            return httpx.Response(200, json=answers[path])
        if path.endswith("/plan") and request.method == "POST":
            self.plan_bodies.append(json.loads(request.content))
            return httpx.Response(200, json=plan_answer(*self.planned))
        return httpx.Response(404, json={"errors": [f"Not found: {path}"]})


def _jar_name() -> str:
    from deploy import paths  # noqa: PLC0415

    return paths.flink_python_jar().name


def client_of(flink: RecordedFlink) -> FlinkClient:
    return FlinkClient("http://flink.test", transport=httpx.MockTransport(flink))


def test_the_running_graph_carries_each_vertex_s_state_and_max_parallelism() -> None:
    with client_of(RecordedFlink()) as client:
        got = plans.running_graph(client, JOB)
    assert got.checkpoint_id == 4
    assert [(v.id, v.state_size, v.max_parallelism) for v in got.vertices] == [
        (SOURCE, 867, 128),
        (LEDGER, 3746, 128),
    ]


def test_a_plan_node_is_named_by_its_description_s_first_line() -> None:
    got = plans.graph_from_plan(plan_answer(LEDGER))
    assert got.vertices == (Vertex(LEDGER, "op-c813", 1),)


def test_planning_sends_what_a_submission_sends() -> None:
    flink = RecordedFlink()
    job = deployed(flinkjob(flinkConfiguration={"pipeline.max-parallelism": "128"}))
    entry = entries.resolve(job.spec.job.entry)
    with client_of(flink) as client:
        plans.planned_graph(client, job.spec, "ledger", "kafka:9092", entry)
    (body,) = flink.plan_bodies
    assert body["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert body["programArgsList"] == [
        "-pym",
        "jobs.ledger",
        "--orders-topic",
        "orders",
        "--bootstrap-servers",
        "kafka:9092",
    ]
    assert body["flinkConfiguration"]["pipeline.name"] == "ledger"
    assert body["flinkConfiguration"]["pipeline.max-parallelism"] == "128"


# -- building a diff, its document and exit code ---------------------------------------------------


def build(flink: RecordedFlink, stored: FlinkJob | None, wanted: FlinkJob) -> diff_cli.Diff:
    with client_of(flink) as client:
        return diff_cli.build(
            client, stored, wanted, entries.resolve(wanted.spec.job.entry), "kafka:9092"
        )


def test_a_changed_job_graph_that_drops_state_exits_3_and_lists_it() -> None:
    stored = deployed(flinkjob(), job_id=JOB)
    wanted = change_job(stored, args=["--orders-topic", "orders", "--renamed"])
    result = build(RecordedFlink(planned=(SOURCE, RENAMED)), stored, wanted)
    doc = diff_cli.document(result)
    assert doc["action"] == "savepoint-upgrade"
    assert doc["exitCode"] == 3
    assert result.exit_code == diff_cli.EXIT_STATE
    assert doc["safe"] is False
    assert doc["stateCheck"]["dropped"] == [LEDGER]
    assert doc["stateCheck"]["checkpointId"] == 4
    assert doc["changes"] == [
        {"path": "job.args", "old": ["--orders-topic", "orders"], "new": [
            "--orders-topic", "orders", "--renamed"]}
    ]  # fmt: skip
    assert json.loads(json.dumps(doc)) == doc
    problems = diff_cli.refusal_problems(result.check)  # type: ignore[arg-type]
    assert len(problems) == 1
    assert LEDGER in problems[0]
    assert "allowNonRestoredState" in problems[0]


def test_the_same_drop_with_allow_non_restored_state_is_safe() -> None:
    stored = deployed(flinkjob(), job_id=JOB)
    wanted = change_job(stored, args=["--renamed"], allow_non_restored_state=True)
    result = build(RecordedFlink(planned=(SOURCE, RENAMED)), stored, wanted)
    assert result.exit_code == diff_cli.EXIT_SAFE
    assert diff_cli.document(result)["stateCheck"]["dropped"] == [LEDGER]


def test_an_in_place_rescale_keeps_the_running_graph_and_plans_nothing() -> None:
    flink = RecordedFlink()
    stored = deployed(flinkjob(), job_id=JOB)
    result = build(flink, stored, change_job(stored, parallelism=2))
    assert result.preview.action == Action.rescale
    assert flink.plan_bodies == []
    assert result.check is not None
    assert {(o.verdict, o.new_parallelism) for o in result.check.operators} == {(Verdict.kept, 2)}


def test_nothing_to_do_and_no_job_need_no_state_check() -> None:
    flink = RecordedFlink()
    stored = deployed(flinkjob(), job_id=JOB)
    same = build(flink, stored, stored)
    assert (same.preview.action, same.check, same.exit_code) == (Action.nothing, None, 0)
    fresh = build(flink, None, flinkjob())
    assert fresh.preview.action == Action.start
    assert "no running job" in fresh.note
    assert diff_cli.document(fresh)["stateCheck"] is None
    assert flink.plan_bodies == []


# -- the command and the refusal for submit --------------------------------------------------------


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def stored_in(state_dir: Path, job: FlinkJob) -> None:
    store = SqliteStore(StackSettings(state_dir=state_dir).controller_db)
    applied = store.apply(job)
    assert store.write_status(applied.name, job.status)


def use_flink(monkeypatch: pytest.MonkeyPatch, flink: RecordedFlink) -> None:
    @contextmanager
    def fake(target: JobTarget, flink_url: str | None = None) -> Iterator[FlinkClient]:
        with client_of(flink) as client:
            yield client

    monkeypatch.setattr(diff_cli, "flink_for", fake)


def spec_file(tmp_path: Path, job: FlinkJob) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(job.to_yaml(with_status=False))
    return path


def invoke(state_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["diff", *args, "--state-dir", str(state_dir)])
    return result.exit_code, result.stdout, result.stderr


def test_the_command_exits_3_with_the_operator_named_and_0_once_allowed(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = deployed(flinkjob(), job_id=JOB)
    stored_in(state_dir, stored)
    use_flink(monkeypatch, RecordedFlink(planned=(SOURCE, RENAMED)))
    dropping = change_job(stored, args=["--renamed"])
    code, out, _ = invoke(state_dir, str(spec_file(tmp_path, dropping)))
    assert code == 3
    assert LEDGER in out
    assert "allowNonRestoredState" in out
    code, out, _ = invoke(state_dir, str(spec_file(tmp_path, dropping)), "-o", "json")
    assert code == 3
    assert json.loads(out)["stateCheck"]["dropped"] == [LEDGER]
    allowed = change_job(stored, args=["--renamed"], allow_non_restored_state=True)
    code, out, _ = invoke(state_dir, str(spec_file(tmp_path, allowed)), "-o", "json")
    assert code == 0
    assert json.loads(out)["safe"] is True


def test_an_invalid_spec_exits_2_and_an_unreachable_flink_1(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: eddyline.dev/v1alpha1\nkind: FlinkJob\nmetadata: {name: x}\n")
    code, _, err = invoke(state_dir, str(bad))
    assert code == 2
    assert "spec" in err
    flink = RecordedFlink()
    flink.unreachable = True
    use_flink(monkeypatch, flink)
    code, _, err = invoke(state_dir, str(spec_file(tmp_path, flinkjob())))
    assert code == 1
    assert "flink.test" in err


def refuse(state_dir: Path, job: FlinkJob) -> Callable[[], None]:
    return lambda: diff_cli.refuse_dropped_state(JobTarget(state_dir=state_dir), job)


def test_submit_s_refusal_lists_every_lost_operator(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = deployed(flinkjob(), job_id=JOB)
    stored_in(state_dir, stored)
    use_flink(monkeypatch, RecordedFlink(planned=(RENAMED,)))
    with pytest.raises(SpecError) as refused:
        refuse(state_dir, change_job(stored, args=["--renamed"]))()
    assert isinstance(refused.value, diff_cli.StateDropError)
    assert len(refused.value.problems) == 2
    text = str(refused.value)
    assert SOURCE in text
    assert LEDGER in text
    assert "spec.job.allowNonRestoredState" in text
    refuse(state_dir, change_job(stored, args=["--renamed"], allow_non_restored_state=True))()
    refuse(state_dir, change_job(stored, parallelism=2))()  # in place: nothing lost


def test_submit_is_not_blocked_when_flink_cannot_be_reached(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = deployed(flinkjob(), job_id=JOB)
    stored_in(state_dir, stored)
    flink = RecordedFlink(planned=(RENAMED,))
    flink.unreachable = True
    use_flink(monkeypatch, flink)
    refuse(state_dir, change_job(stored, args=["--renamed"]))()
    warned = capsys.readouterr().err
    assert "state check could not be made" in warned
    assert "flink.test" in warned


def test_kube_plans_module_entries_only(state_dir: Path, tmp_path: Path) -> None:
    """A .py entry's path in the JobManager's image is the controller's to resolve: refused
    (exit 2) before any cluster is contacted."""
    job = flinkjob(job={"entry": "tests/jobs/counter.py"})
    code, _, err = invoke(state_dir, str(spec_file(tmp_path, job)), "--kube")
    assert code == 2
    assert "module entries only" in err
