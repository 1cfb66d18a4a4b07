"""The local stack with job state in a bucket (`eddyline up --state-storage s3`): a real
versitygw supervised beside Kafka and Flink, Flink's S3 plugin writing checkpoints and savepoints
to it, and the controller's savepoint upgrade going through it — the storage path the chart uses
on Kubernetes. The ledger is the witness: a state lost in the bucket shows up as a wrong level.
No mocks; versitygw comes from `make kube-tools`."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from deploy.errors import EddylineError, MissingToolError
from deploy.local.objectstore import ObjectStore, binary
from deploy.local.stack import control, ports, processes, s3state, state
from deploy.settings import STATE_BUCKET
from tests.integration.cli import eddyline
from tests.integration.managed import Managed
from tests.integration.stacks import RunningStack, free_settings
from tests.integration.test_controller import UPGRADED_CONFIG, Ledger


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    try:
        binary()
    except MissingToolError as e:
        pytest.fail(str(e), pytrace=False)
    # No controller of the stack's own: the test runs one (Managed), with its own store.
    settings = free_settings(
        tmp_path_factory.mktemp("s3-stack"), state_storage="s3", controller=False
    )
    try:
        result = control.up(settings)
    except EddylineError as e:
        pytest.fail(f"the local stack with S3 state did not start: {e}", pytrace=False)
    try:
        yield RunningStack(settings, result.state)
    finally:
        control.down(settings.state_dir)


def _store(stack: RunningStack) -> ObjectStore:
    current = state.load(stack.settings.state_dir)
    assert current is not None
    store = s3state.running_store(stack.settings.state_dir, current.objectstore_endpoint)
    assert store is not None, "no endpoint or no kept keys"
    return store


def _component(stack: RunningStack, name: str) -> state.ComponentState:
    current = state.load(stack.settings.state_dir)
    assert current is not None
    return current.component(name)


def _env(pid: int | None) -> dict[str, str]:
    assert pid is not None
    return dict(psutil.Process(pid).environ())


def test_up_without_versitygw_says_how_to_build_it(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    done = eddyline(
        "up", "--state-dir", str(tmp_path / "state"),
        env={"EDDYLINE_KUBE_BIN": str(empty), "EDDYLINE_STATE_STORAGE": "s3"},
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "versitygw not found" in done.stderr
    assert "make kube-tools" in done.stderr
    assert not control.supervisor_running(tmp_path / "state")


def test_status_shows_the_s3_server_and_where_state_lives(s3_stack: RunningStack) -> None:
    state_dir = s3_stack.settings.state_dir
    done = eddyline("status", "--state-dir", str(state_dir), "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    by_name = {c["name"]: c for c in report["components"]}
    assert by_name["objectstore"]["healthy"]
    assert by_name["objectstore"]["version"].startswith("v")
    where = report["state"]
    assert where["storage"] == "s3"
    assert where["checkpoints"] == f"s3://{STATE_BUCKET}/checkpoints"
    assert where["savepoints"] == f"s3://{STATE_BUCKET}/savepoints"
    port = by_name["objectstore"]["port"]
    assert where["endpoint"] == f"http://127.0.0.1:{port}"
    assert Path(where["data"], STATE_BUCKET).is_dir(), "the bucket is a folder of the state"

    table = eddyline("status", "--state-dir", str(state_dir))
    assert table.returncode == 0
    assert f"s3://{STATE_BUCKET}/checkpoints" in table.stdout
    assert "objectstore" in table.stdout

    conf = (state_dir / "flink" / "conf" / "config.yaml").read_text()
    assert f"execution.checkpointing.dir: s3://{STATE_BUCKET}/checkpoints" in conf
    assert f"s3.endpoint: http://127.0.0.1:{port}" in conf
    assert "s3.directory.marker.retention: keep" in conf


def test_the_keys_are_the_stacks_own_and_reach_only_the_flink_processes(
    s3_stack: RunningStack,
) -> None:
    state_dir = s3_stack.settings.state_dir
    store = _store(s3_stack)
    keys_file = s3state.credentials_file(state_dir)
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert store.probe() is None
    wrong = ObjectStore(store.endpoint, store.access_key, store.secret_key + "x")
    assert wrong.probe() is not None, "a wrong secret is refused"

    for name in ("jobmanager", "taskmanager-1"):
        env = _env(_component(s3_stack, name).pid)
        assert env.get("AWS_ACCESS_KEY_ID") == store.access_key, name
        assert env.get("AWS_SECRET_ACCESS_KEY") == store.secret_key, name
    kafka_env = _env(_component(s3_stack, "kafka").pid)
    assert "AWS_SECRET_ACCESS_KEY" not in kafka_env
    assert kafka_env.get("AWS_ACCESS_KEY_ID") != store.access_key

    current = state.load(state_dir)
    assert current is not None
    for c in current.components:
        assert c.pid is not None
        for proc in [psutil.Process(c.pid), *psutil.Process(c.pid).children(recursive=True)]:
            assert store.secret_key not in " ".join(proc.cmdline()), c.name
    for path in (state_dir / "flink" / "conf").iterdir():
        assert store.secret_key not in path.read_text(), path
    assert store.secret_key not in state.state_file(state_dir).read_text()


def test_a_killed_s3_server_is_restarted_on_its_port_with_its_keys(
    s3_stack: RunningStack,
) -> None:
    before = _component(s3_stack, "objectstore")
    store = _store(s3_stack)
    assert before.pid is not None
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    after = before
    while time.monotonic() < deadline:
        after = _component(s3_stack, "objectstore")
        if after.pid not in (None, before.pid) and store.probe() is None:
            break
        time.sleep(0.5)
    assert after.pid not in (None, before.pid), "the S3 server was not restarted"
    assert after.port == before.port
    assert after.restarts == before.restarts + 1
    assert store.probe() is None, "the restarted server does not take the stack's keys"
    assert _store(s3_stack) == store


def test_checkpoints_and_a_savepoint_upgrade_go_through_the_bucket(
    s3_stack: RunningStack, tmp_path: Path
) -> None:
    store = _store(s3_stack)
    managed = Managed(s3_stack, tmp_path)
    managed.start_controller()
    try:
        ledger = Ledger(managed, "ledger-s3")
        ledger.produce(0)
        assert managed.submit(ledger.doc()).returncode == 0
        first = managed.wait_running(ledger.name, 1)
        job_id = str(first.status.job_id)
        ledger.wait_output(1)

        # Flink's S3 plugin writes the job's checkpoints into the bucket.
        prefix = f"checkpoints/{job_id}/"
        deadline = time.monotonic() + 60
        while not any(k.endswith("/_metadata") for k in store.keys(STATE_BUCKET, prefix)):
            assert time.monotonic() < deadline, f"no checkpoint in s3://{STATE_BUCKET}/{prefix}"
            time.sleep(1)
        seen = managed.wait(
            ledger.name, lambda j: j.status.last_checkpoint_path is not None, "see a checkpoint"
        )
        assert str(seen.status.last_checkpoint_path).startswith(f"s3://{STATE_BUCKET}/{prefix}")

        # A savepoint upgrade: the savepoint is written to the bucket, and the new job restores
        # the ledger's state from it (the second half redelivers movements of the first).
        done = managed.submit(ledger.doc(2, flinkConfiguration=UPGRADED_CONFIG))
        assert done.returncode == 0, done.stderr
        upgraded = managed.wait_running(ledger.name, 2)
        savepoint = upgraded.status.upgrade_savepoint_path
        assert savepoint is not None
        assert savepoint.startswith(f"s3://{STATE_BUCKET}/savepoints/"), savepoint
        key = savepoint.removeprefix(f"s3://{STATE_BUCKET}/") + "/_metadata"
        assert key in store.keys(STATE_BUCKET, "savepoints/")
        assert upgraded.status.job_id != first.status.job_id
        assert managed.flink.job(job_id)["state"] == "FINISHED"
        ledger.produce(1)
        ledger.assert_exact()

        # The CLI shows the s3:// paths as they are.
        described = managed.cli("describe", ledger.name)
        assert described.returncode == 0, described.stderr
        assert savepoint in described.stdout
        listed = managed.cli("list", "-o", "wide")
        assert listed.returncode == 0, listed.stderr
        assert ledger.name in listed.stdout
    finally:
        managed.close()


def test_down_leaves_no_s3_server_and_keeps_the_keys(s3_stack: RunningStack) -> None:
    state_dir = s3_stack.settings.state_dir
    server = _component(s3_stack, "objectstore")
    keys = s3state.load_credentials(state_dir)
    assert server.pid is not None
    result = control.down(state_dir)
    assert "objectstore" in result.stopped
    assert not processes.alive(server.pid, server.started_at)
    left = [
        p.pid
        for p in psutil.process_iter(["name"])
        if p.info["name"] == "versitygw" and str(state_dir) in " ".join(_cmdline(p))
    ]
    assert left == [], f"versitygw of this stack still running: {left}"
    assert not ports.listening(server.port, "127.0.0.1")
    assert s3state.load_credentials(state_dir) == keys, "kept for the next `eddyline up`"


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return list(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
