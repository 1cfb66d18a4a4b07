"""What the CLI prints, beyond what each command does: tables give whole values to a pipe and
fold rather than cut in a terminal, `-o wide` adds columns, `-o json` is the stored object, every
error is one `error:` line, and every option's help keeps its `[default]` hint."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
import typer
from rich.console import Console
from rich.text import Text
from typer.testing import CliRunner

from deploy.cli import tables
from deploy.cli.app import app
from deploy.cli.common import fail, print_error
from deploy.errors import ComponentStartError
from deploy.local.store import SqliteStore
from deploy.settings import StackSettings
from deploy.spec import Event, FlinkJob, JobStatus, Lifecycle, SavepointInfo

runner = CliRunner()
LONG_NAME = "attribution-by-campaign-and-region-for-the-spring-sale-2027"
JOB_ID = "0123456789abcdef" * 2
SAVEPOINT = "s3://eddyline-state/savepoints/" + LONG_NAME + "/savepoint-4f2a91-0123456789ab"
EVENT = "Savepoint upgrade to parallelism 3: " + "the job's state is restored, " * 6 + "(the end)"
SPEC = f"""\
apiVersion: eddyline.dev/v1alpha1
kind: FlinkJob
metadata:
  name: {LONG_NAME}
spec:
  job:
    entry: jobs.ledger
    parallelism: 2
    args: [--orders-topic, orders]
  autoscaler:
    enabled: true
    maxParallelism: 4
"""


def run(state: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, [*args, "--state-dir", str(state)], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state folder whose store holds one long-named job that has run and been rescaled."""
    state = tmp_path / "state"
    code, _, err = run(state, "submit", "-", stdin=SPEC)
    assert code == 0, err
    store = SqliteStore(StackSettings(state_dir=state).controller_db)
    now = int(time.time() * 1000)
    status = JobStatus(
        job_id=JOB_ID,
        flink_state="RUNNING",
        lifecycle=Lifecycle.STABLE,
        parallelism=3,
        observed_generation=1,
        restarts=2,
        savepoints=[SavepointInfo(path=SAVEPOINT, time=now - 5_000, trigger="manual")],
        error="Flink said [the job] is gone: " + "x" * 70 + " (the end)",
        autoscaler={"parallelism": 3, "base": 2},
        events=[Event(time=now, reason="Rescaled", message=EVENT)],
    )
    assert store.write_status(LONG_NAME, status)
    return state


def line_with(text: str, output: str) -> str:
    return next(line for line in output.splitlines() if text in line)


def test_a_pipe_gets_whole_names_ids_and_paths(state: Path) -> None:
    """CliRunner's stdout is not a terminal: nothing is cut to 80 columns."""
    for args in (["list"], ["list", "-o", "wide"], ["describe", LONG_NAME]):
        code, out, _ = run(state, *args)
        assert code == 0
        assert LONG_NAME in out, args
        assert JOB_ID in out, args
        assert "…" not in out, args
    described = run(state, "describe", LONG_NAME)[1]
    assert SAVEPOINT in described
    assert EVENT in described  # messages whole, as `kubectl describe` shows them


def test_list_wide_adds_the_controllers_progress_and_the_last_savepoint(state: Path) -> None:
    _, narrow, _ = run(state, "list")
    _, wide, _ = run(state, "list", "-o", "wide")
    narrow_header, wide_header = line_with("name", narrow), line_with("name", wide)
    for column in ("generation", "autoscaler", "last savepoint", "restarts", "entry"):
        assert column not in narrow_header
        assert column in wide_header
    for column in ("name", "lifecycle", "parallelism", "job id", "savepoint", "age", "error"):
        assert column in narrow_header
        assert column in wide_header
    row = line_with(LONG_NAME, wide)
    assert " 1/1 " in row  # generation seen by the controller / wanted
    assert " 3 " in row  # the autoscaler's parallelism
    assert SAVEPOINT in row
    assert "[the job]" in row  # an error's brackets are text, not a style
    assert "(the end)" in row
    assert "(the end)" not in narrow


def test_list_json_is_the_stored_object_whole(state: Path) -> None:
    code, out, _ = run(state, "list", "-o", "json")
    assert code == 0
    stored = SqliteStore(StackSettings(state_dir=state).controller_db).get(LONG_NAME)
    assert stored is not None
    assert json.loads(out) == {"items": [stored.document()]}
    code, out, _ = run(state, "describe", LONG_NAME, "-o", "json")
    assert json.loads(out) == stored.document()


def test_a_narrow_terminal_folds_cells_instead_of_cutting_them(state: Path) -> None:
    stored = SqliteStore(StackSettings(state_dir=state).controller_db).get(LONG_NAME)
    assert stored is not None
    terminal = Console(width=90, force_terminal=True, color_system=None, record=True)
    terminal.print(tables.job_table([stored], wide=False))
    drawn = terminal.export_text()
    assert "…" not in drawn
    body = [line.split("│") for line in drawn.splitlines() if line.startswith("│")]
    # The folds put a long value on several lines of its column.
    assert "".join(cells[1].strip() for cells in body) == LONG_NAME
    assert "".join(cells[4].strip() for cells in body) == JOB_ID


def wide_job(name: str) -> FlinkJob:
    doc = {"metadata": {"name": name}, "spec": {"job": {"entry": "jobs.ledger"}}}
    return FlinkJob.model_validate(doc)


def test_the_wide_row_says_off_when_the_autoscaler_is_not_enabled() -> None:
    terminal = Console(width=400, color_system=None, record=True)
    terminal.print(tables.job_table([wide_job("ledger")], wide=True))
    assert " off " in line_with("ledger", terminal.export_text())


def test_an_error_is_one_line_on_stderr_with_its_log_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = Path("/var/state/logs/kafka.out")
    exit_ = fail(ComponentStartError("kafka", "exited with code 1", log))
    assert isinstance(exit_, typer.Exit)
    assert exit_.exit_code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count(str(log)) == 1
    assert err.startswith("error: kafka failed to start: exited with code 1")
    print_error("the job [ledger] is gone")
    assert "error: the job [ledger] is gone" in capsys.readouterr().err


def test_cluster_options_without_kube_are_refused_by_every_job_command(tmp_path: Path) -> None:
    for args in (
        ["list"],
        ["describe", "x"],
        ["submit", "-"],
        ["suspend", "x"],
        ["resume", "x"],
        ["savepoint", "x"],
        ["scale", "x", "--parallelism", "2"],
        ["delete", "x"],
        ["dashboard"],
    ):
        code, _, err = run(tmp_path, *args, "--context", "prod")
        assert code == 2, args
        assert "--context only go with --kube" in err, args


def test_every_job_command_takes_the_shared_options() -> None:
    group = typer.main.get_group(app)
    shared = {"--state-dir", "--kube", "--namespace", "--kubeconfig", "--context"}
    follow = {"--wait", "--timeout"}
    for name in ("submit", "list", "describe", "savepoint", "suspend", "resume", "scale", "delete"):
        options = {o for p in group.commands[name].params for o in p.opts}
        assert shared <= options, name
        if name not in ("list", "describe"):
            assert follow <= options, name


def test_no_help_text_loses_its_bracketed_hint_to_rich_markup() -> None:
    """typer renders help as rich markup, where `[the local stack's]` would be a style and vanish:
    such hints are written `\\[…]`."""
    group = typer.main.get_group(app)
    for name, command in group.commands.items():
        texts = [command.help or ""]
        texts += [p.help or "" for p in command.params if isinstance(p, click.Option)]
        for text in texts:
            shown = Text.from_markup(text).plain
            assert shown == text.replace("\\[", "["), (name, text)


def test_a_taken_metrics_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """The controller in its own process (it configures logging for the whole process)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "deploy.cli", "controller", "--state-dir", str(tmp_path),
             "--metrics-port", str(port), "--flink-url", "http://127.0.0.1:9"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"error: cannot serve metrics on port {port}" in done.stderr
    assert "Traceback" not in done.stderr
