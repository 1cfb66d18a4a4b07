"""The FlinkJob model: demo specs, every problem listed by field path, entries, the schema."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy import entries, paths
from deploy.errors import SpecError
from deploy.spec import FlinkJob, json_schema, load_yaml, parse

SPECS = sorted((paths.PROJECT_ROOT / "jobs" / "specs").glob("*.yaml"))


def doc(**spec: Any) -> dict[str, Any]:
    job = {"entry": "jobs.ledger"}
    job.update(spec.pop("job", {}))
    return {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": "ledger"},
        "spec": {"job": job, **spec},
    }


def problems(data: Any) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse(data)
    return e.value.problems


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_the_demo_specs_are_valid_and_their_entries_allowed(path: Path) -> None:
    job = load_yaml(path.read_text(), str(path))
    assert job.name == path.stem
    assert entries.resolve(job.spec.job.entry).flag == "-pym"
    assert load_yaml(job.to_yaml(with_status=False)) == job


def test_every_problem_is_listed_by_its_field_path() -> None:
    data = doc(
        job={"entry": "../evil.py", "parallelism": 0, "upgradeMode": "yolo"},
        checkpointing={"interval": "soon"},
        autoscaler={"minParallelism": 5, "maxParallelism": 2},
        surprise=1,
    )
    data["metadata"]["name"] = "Not_OK"
    found = problems(data)
    for path in (
        "metadata.name",
        "spec.job.entry",
        "spec.job.parallelism",
        "spec.job.upgradeMode",
        "spec.checkpointing.interval",
        "spec.autoscaler",
        "spec.surprise: unknown field",
    ):
        assert any(p.startswith(path) for p in found), (path, found)
    assert len(found) == 7


def test_missing_parts_and_wrong_kinds_are_named() -> None:
    assert problems([]) == ["(document): expected a mapping with apiVersion, kind, metadata, spec"]
    found = problems({"metadata": {"name": "x"}, "spec": {"job": {"entry": "jobs.x"}}})
    assert found == ["apiVersion: field required", "kind: field required"]
    found = problems({**doc(), "kind": "Deployment"})
    assert found[0].startswith("kind:")


@pytest.mark.parametrize(
    "entry",
    ["/etc/passwd.py", "../jobs/x.py", "jobs/../../x.py", "~/x.py", "os.path", "jobs", "jobs/x"],
)
def test_entries_outside_jobs_are_refused_by_the_model(entry: str) -> None:
    assert any(p.startswith("spec.job.entry") for p in problems(doc(job={"entry": entry})))


def test_the_status_of_a_submitted_document_is_ignored_and_config_values_are_strings() -> None:
    data = doc(flinkConfiguration={"a": 1, "b": True, "c": 0.5, "d": "x"})
    data["status"] = {"lifecycle": "RUNNING", "jobId": "forged"}
    job = parse(data)
    assert job.status.job_id is None
    assert job.spec.flink_configuration == {"a": "1", "b": "true", "c": "0.5", "d": "x"}


def test_deployment_ignores_requests_and_controller_settings() -> None:
    base = parse(doc()).spec
    for change in (
        {"savepoint_trigger_nonce": 3},
        {"restart_nonce": 2},
        {"autoscaler": base.autoscaler.model_copy(update={"enabled": True})},
        {"savepoints": base.savepoints.model_copy(update={"max_count": 9})},
    ):
        assert base.model_copy(update=change).deployment() == base.deployment()
    bigger = base.model_copy(update={"job": base.job.model_copy(update={"parallelism": 2})})
    assert bigger.deployment() != base.deployment()


def test_the_schema_uses_the_documents_field_names() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    spec = schema["$defs"]["FlinkJobSpec"]["properties"]
    for name in ("job", "flinkConfiguration", "checkpointing", "savepoints", "restartPolicy",
                 "autoscaler", "kafka", "savepointTriggerNonce", "restartNonce"):  # fmt: skip
        assert name in spec
    status = schema["$defs"]["JobStatus"]["properties"]
    for name in ("jobId", "lifecycle", "lastReconciledSpec", "lastStableSpec",
                 "observedGeneration", "savepoints", "upgradeSavepointPath", "error",
                 "conditions", "events"):  # fmt: skip
        assert name in status


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(
        [
            "job",
            "checkpointing",
            "savepoints",
            "restartPolicy",
            "autoscaler",
            "kafka",
            "flinkConfiguration",
            "restartNonce",
            "metadata",
        ]
    ),
    value=VALUES,
)
def test_any_value_anywhere_is_accepted_or_refused_with_problems_never_a_crash(
    field: str, value: Any
) -> None:
    data = doc()
    if field == "metadata":
        data["metadata"] = value
    else:
        data["spec"][field] = value
    found: list[str] = []
    try:
        job: FlinkJob | None = parse(data)
    except SpecError as e:
        job, found = None, e.problems
    assert (job is None) == bool(found)
    assert all(isinstance(p, str) and ": " in p for p in found)


# -- entries, against the real file system ------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "mine.py").write_text("")
    (tmp_path / "allowed").mkdir()
    (tmp_path / "allowed" / "job.py").write_text("")
    (tmp_path / "outside.py").write_text("")
    return tmp_path


def test_a_module_under_jobs_runs_with_pym(root: Path) -> None:
    assert entries.resolve("jobs.mine", root=root) == entries.Entry("-pym", "jobs.mine")


def test_a_missing_module_is_refused(root: Path) -> None:
    with pytest.raises(SpecError, match=r"spec\.job\.entry: 'jobs\.nope' no module"):
        entries.resolve("jobs.nope", root=root)


def test_a_file_in_an_allowed_folder_runs_with_py(root: Path) -> None:
    got = entries.resolve("allowed/job.py", [root / "allowed"], root=root)
    assert got == entries.Entry("-py", str((root / "allowed" / "job.py").resolve()))


@pytest.mark.parametrize("entry", ["outside.py", "allowed/../outside.py", "allowed/missing.py"])
def test_files_outside_or_missing_are_refused(root: Path, entry: str) -> None:
    with pytest.raises(SpecError) as e:
        entries.resolve(entry, [root / "allowed"], root=root)
    assert e.value.problems[0].startswith("spec.job.entry: ")


def test_a_symlink_out_of_an_allowed_folder_is_refused(root: Path) -> None:
    os.symlink(root / "outside.py", root / "allowed" / "sneaky.py")
    with pytest.raises(SpecError, match="outside the allowed folders"):
        entries.resolve("allowed/sneaky.py", [root / "allowed"], root=root)
