"""The job commands of the CLI against a store in a temporary folder (no controller running):
what they refuse, what they write, and what scripts get from -o json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deploy.cli.app import app
from deploy.cli.common import table_width
from deploy.controller.store import SAVEPOINT_ON_DELETE
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings

runner = CliRunner()
GOOD = """\
apiVersion: eddyline.dev/v1alpha1
kind: FlinkJob
metadata:
  name: ledger
spec:
  job:
    entry: jobs.ledger
    args: [--orders-topic, orders]
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def store(state: Path) -> SqliteStore:
    return SqliteStore(StackSettings(state_dir=state).controller_db)


def run(state: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--state-dir", str(state)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_an_invalid_spec_is_refused_with_every_problem_and_nothing_is_stored(
    state: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        GOOD.replace("name: ledger", "name: Ledger_1").replace(
            "entry: jobs.ledger", "entry: ../../etc/evil.py\n    parallelism: 0"
        )
        + "  checkpointing:\n    interval: often\n  surprise: 1\n"
    )
    code, _, err = run(state, "submit", str(bad))
    assert code == 2
    assert f"{bad} is not a valid FlinkJob (5 problems)" in err
    for path in (
        "metadata.name",
        "spec.job.entry",
        "spec.job.parallelism",
        "spec.checkpointing.interval",
        "spec.surprise: unknown field",
    ):
        assert path in err, path
    assert store(state).list() == []


def test_an_entry_outside_the_allowed_folders_is_refused(state: Path, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(GOOD.replace("entry: jobs.ledger", "entry: deploy/cli/app.py"))
    code, _, err = run(state, "submit", str(spec))
    assert code == 2
    assert "spec.job.entry: 'deploy/cli/app.py' resolves to" in err
    assert "outside the allowed folders" in err
    assert store(state).list() == []


def test_not_yaml_and_a_missing_file_are_clear_errors(state: Path, tmp_path: Path) -> None:
    code, _, err = run(state, "submit", "-", stdin="job: [unclosed\n")
    assert code == 2
    assert "stdin is not a valid FlinkJob" in err
    assert "not valid YAML" in err
    code, _, err = run(state, "submit", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "cannot read" in err


def test_submit_then_changes_bump_the_generation_and_json_is_the_whole_object(
    state: Path,
) -> None:
    code, out, _ = run(state, "submit", "-", "-o", "json", stdin=GOOD)
    assert code == 0
    doc = json.loads(out)
    assert doc["apiVersion"] == "eddyline.dev/v1alpha1"
    assert doc["kind"] == "FlinkJob"
    assert doc["metadata"]["generation"] == 1
    assert doc["status"]["lifecycle"] == "CREATED"
    code, out, _ = run(state, "submit", "-", stdin=GOOD)
    assert "flinkjob/ledger unchanged (generation 1)" in out

    assert run(state, "scale", "ledger", "--parallelism", "3")[0] == 0
    assert run(state, "suspend", "ledger")[0] == 0
    assert run(state, "savepoint", "ledger")[0] == 0
    job = store(state).get("ledger")
    assert job is not None
    assert job.metadata.generation == 4
    assert job.spec.job.parallelism == 3
    assert job.spec.job.state == "suspended"
    assert job.spec.savepoint_trigger_nonce == 1
    assert run(state, "resume", "ledger")[0] == 0
    assert store(state).get("ledger").spec.job.state == "running"  # type: ignore[union-attr]

    code, out, _ = run(state, "describe", "ledger", "-o", "json")
    described = json.loads(out)
    assert set(described) == {"apiVersion", "kind", "metadata", "spec", "status"}
    for field in ("lifecycle", "observedGeneration", "savepoints", "conditions", "events"):
        assert field in described["status"]
    code, out, _ = run(state, "describe", "ledger", "-o", "yaml")
    assert out.startswith("apiVersion: eddyline.dev/v1alpha1\nkind: FlinkJob\n")
    code, out, _ = run(state, "list", "-o", "json")
    assert [j["metadata"]["name"] for j in json.loads(out)["items"]] == ["ledger"]


def test_delete_with_savepoint_marks_the_job_for_the_controller(state: Path) -> None:
    run(state, "submit", "-", stdin=GOOD)
    code, out, _ = run(state, "delete", "ledger", "--savepoint")
    assert code == 0
    assert "deletion requested" in out
    job = store(state).get("ledger")
    assert job is not None
    assert job.metadata.deletion_timestamp
    assert job.metadata.annotations[SAVEPOINT_ON_DELETE] == "true"
    code, _, err = run(state, "scale", "ledger", "--parallelism", "2")
    assert code == 1
    assert "being deleted" in err


def test_unknown_jobs_are_named(state: Path) -> None:
    for args in (("describe", "nope"), ("suspend", "nope"), ("delete", "nope")):
        code, _, err = run(state, *args)
        assert code == 1
        assert "no job named 'nope'" in err


def test_wait_times_out_naming_the_controller_log(state: Path) -> None:
    code, _, err = run(state, "submit", "-", "--wait", "--timeout", "1", stdin=GOOD)
    assert code == 1
    assert "did not run within 1 s" in err
    assert "controller.out" in err


def test_a_table_piped_to_a_file_is_never_cut(state: Path, tmp_path: Path) -> None:
    """rich cuts to 80 columns when stdout is not a terminal; `eddyline list | less` must show
    whole names, as kubectl does. Run as a user would: a process whose stdout is a pipe."""
    name = "attribution-by-campaign-and-region-for-the-spring-sale-2027"
    spec = tmp_path / "long.yaml"
    spec.write_text(GOOD.replace("name: ledger", f"name: {name}"))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    cli = [sys.executable, "-m", "deploy.cli"]
    for args in (["submit", str(spec)], ["list"]):
        done = subprocess.run(
            [*cli, *args, "--state-dir", str(state)],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert name in done.stdout, done.stdout
    assert "…" not in done.stdout


@pytest.mark.parametrize(
    ("tty", "columns", "width"),
    [(True, None, None), (False, "132", None), (False, None, 100_000), (False, "", 100_000)],
)
def test_the_table_width_follows_the_terminal_or_is_uncut(
    tty: bool, columns: str | None, width: int | None
) -> None:
    assert table_width(tty, columns) == width


def test_list_wide_shows_the_entry_the_wanted_state_and_the_whole_error(state: Path) -> None:
    run(state, "submit", "-", stdin=GOOD)
    long_error = "Flink refused the job: " + "x" * 80 + " (the end)"
    db = store(state)
    job = db.get("ledger")
    assert job is not None
    db.write_status("ledger", job.status.model_copy(update={"error": long_error, "restarts": 3}))
    code, narrow, _ = run(state, "list")
    assert code == 0
    assert "(the end)" not in narrow  # the plain table keeps errors short
    assert "jobs.ledger" not in narrow
    code, wide, _ = run(state, "list", "-o", "wide")
    assert code == 0
    header = next(line for line in wide.splitlines() if "name" in line)
    for column in ("entry", "wanted", "upgrade", "checkpoint", "restarts", "error"):
        assert column in header
    row = next(line for line in wide.splitlines() if "ledger" in line and "jobs.ledger" in line)
    for cell in ("running", "savepoint", " 3 "):
        assert cell in row
    assert "(the end)" in wide
