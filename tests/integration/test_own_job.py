"""A user's own job with a third-party dependency, on the real local stack: examples/own-job
copied outside the repository, submitted with the `eddyline` CLI as users do, run by the
controller. The dependency (python-slugify) is in neither the project's venv (which the local
TaskManagers and JobManager run) nor the image, so the job only works if it was shipped."""

from __future__ import annotations

import importlib.util
import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import kafka_io, paths
from deploy.flink import artifacts
from deploy.spec import FlinkJob, Lifecycle, parse
from tests.integration.managed import Managed
from tests.integration.stacks import RunningStack

EXAMPLE = paths.PROJECT_ROOT / "examples" / "own-job"
DEPENDENCY = "slugify"


@pytest.fixture
def managed(stack: RunningStack, tmp_path: Path) -> Iterator[Managed]:
    (tmp_path / "state").mkdir()
    m = Managed(stack, tmp_path / "state")
    m.start_controller()
    try:
        yield m
    finally:
        m.close()


class OwnJob:
    """examples/own-job in a folder of its own, on topics of its own."""

    def __init__(self, managed: Managed, folder: Path, name: str) -> None:
        self.m = managed
        self.name = name
        self.folder = folder
        shutil.copytree(EXAMPLE, folder)
        run = uuid.uuid4().hex[:8]
        self.words, self.out = f"words-{run}", f"word-slugs-{run}"
        kafka_io.create_topics(managed.stack.bootstrap_servers, {self.words: 1, self.out: 1})
        self.spec_file = folder / "flinkjob.yaml"
        doc = yaml.safe_load(self.spec_file.read_text())
        doc["metadata"]["name"] = name
        doc["spec"]["job"]["args"] = [
            "--input-topic", self.words, "--output-topic", self.out, "--group-id", f"own-{run}",
        ]  # fmt: skip
        doc["spec"]["kafka"] = {"inputTopics": [self.words], "outputTopics": [self.out]}
        doc["spec"]["checkpointing"] = {"interval": "1s"}
        self.spec_file.write_text(yaml.safe_dump(doc, sort_keys=False))

    def submit(self) -> FlinkJob:
        done = self.m.cli("submit", str(self.spec_file), "-o", "json")
        assert done.returncode == 0, done.stderr + done.stdout
        return parse(json.loads(done.stdout))

    def produce(self, words: list[str]) -> None:
        sender = kafka_io.Sender(self.m.stack.bootstrap_servers)
        for word in words:
            sender.send(self.words, None, word.encode())
        sender.close()

    def output(self, expected: int) -> list[dict[str, Any]]:
        records = kafka_io.read_all(
            self.m.stack.bootstrap_servers, self.out, expected=expected, timeout=180, idle=3.0
        )
        return [json.loads(r.value) for r in records]


def test_the_dependency_is_not_on_the_cluster_already() -> None:
    """Else the job would run without anything shipped, and the test below prove nothing."""
    assert importlib.util.find_spec(DEPENDENCY) is None, "the project venv has python-slugify"
    for image_input in (paths.PROJECT_ROOT / "Dockerfile", paths.PROJECT_ROOT / "pyproject.toml"):
        assert "slugify" not in image_input.read_text()


def test_own_job_runs_with_its_dependency_and_upgrades_with_a_savepoint(
    managed: Managed, tmp_path: Path
) -> None:
    job = OwnJob(managed, tmp_path / "user-project", "own-job")
    assert not job.folder.is_relative_to(paths.PROJECT_ROOT)

    submitted = job.submit()
    first_artifact = submitted.spec.job.artifact
    assert first_artifact is not None
    assert first_artifact.store == "local"
    stored = managed.state_dir.resolve() / "artifacts" / f"{first_artifact.sha256}.zip"
    assert first_artifact.uri == stored.as_uri()
    assert artifacts.sha256_of(stored) == first_artifact.sha256
    first = managed.wait_running(job.name, 1)
    assert first.status.artifact_sha256 == first_artifact.sha256

    job.produce(["Crème Brûlée", "Hello, World!", "creme   brulee"])
    out = job.output(3)
    # slugify (shipped) made these: a plain lower() could not turn "Crème Brûlée" into this.
    assert [(o["slug"], o["count"], o["version"]) for o in out] == [
        ("creme-brulee", 1, 1),
        ("hello-world", 1, 1),
        ("creme-brulee", 2, 1),
    ]

    # The same code again: the same artifact, nothing to do.
    assert job.submit().metadata.generation == 1

    # Changed code: a new checksum, so a savepoint upgrade; the counts carry on.
    code = job.folder / "wordcount_plus" / "job.py"
    code.write_text(code.read_text().replace("VERSION = 1", "VERSION = 2"))
    second_artifact = job.submit().spec.job.artifact
    assert second_artifact is not None
    assert second_artifact.sha256 != first_artifact.sha256
    upgraded = managed.wait_running(job.name, 2)
    st = upgraded.status
    assert st.job_id != first.status.job_id
    assert st.artifact_sha256 == second_artifact.sha256
    assert st.upgrade_savepoint_path is not None
    assert [s.trigger for s in st.savepoints if s.path == st.upgrade_savepoint_path] == ["upgrade"]

    job.produce(["CRÈME BRÛLÉE"])
    out = job.output(4)
    assert (out[-1]["slug"], out[-1]["count"], out[-1]["version"]) == ("creme-brulee", 3, 2)

    described = managed.cli("describe", job.name)
    assert described.returncode == 0, described.stderr
    assert f"sha256:{second_artifact.sha256[:12]}" in described.stdout


def test_a_spec_with_code_but_nothing_shipped_is_refused(managed: Managed) -> None:
    """As if applied with kubectl: the controller says to use `eddyline submit`."""
    doc = {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": "unshipped"},
        "spec": {"job": {"code": "wordcount_plus", "entry": "wordcount_plus.job"}},
    }
    managed.store.apply(parse(doc))
    refused = managed.wait(
        "unshipped", lambda j: j.status.lifecycle == Lifecycle.FAILED, "be refused", timeout=60
    )
    assert refused.status.error is not None
    assert "nothing was shipped" in refused.status.error
    assert "eddyline submit" in refused.status.error
    assert managed.live_flink_jobs() == []


def test_a_requirement_pip_cannot_resolve_is_refused_and_nothing_stored(
    managed: Managed, tmp_path: Path
) -> None:
    job = OwnJob(managed, tmp_path / "user-project", "bad-requirement")
    (job.folder / "requirements.txt").write_text("eddyline-no-such-package-h1==0.0.1\n")
    done = managed.cli("submit", str(job.spec_file))
    assert done.returncode == 2, done.stderr + done.stdout
    assert "spec.job.requirements: pip could not install" in done.stderr
    assert "eddyline-no-such-package-h1" in done.stderr
    assert managed.store.get("bad-requirement") is None
    assert not (managed.state_dir / "artifacts").exists()
