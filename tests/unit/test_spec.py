"""The FlinkJob model (deploy/spec.py): the demo specs, YAML round trips, every problem of an
invalid document listed by its camelCase field path, and what a deployment is built from."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy import paths
from deploy.errors import SpecError
from deploy.spec import (
    API_VERSION,
    KIND,
    FlinkJob,
    JobState,
    Lifecycle,
    UpgradeMode,
    json_schema,
    load_yaml,
    parse,
    seconds,
)

SPECS = sorted((paths.PROJECT_ROOT / "jobs" / "specs").glob("*.yaml"))


def document(**spec: Any) -> dict[str, Any]:
    """A minimal valid FlinkJob document; keyword arguments replace or add spec sections, and
    `job` entries are merged into spec.job."""
    job: dict[str, Any] = {"entry": "jobs.ledger"}
    job.update(spec.pop("job", {}))
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "ledger"},
        "spec": {"job": job, **spec},
    }


def problems_of(data: Any) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse(data)
    assert info.value.problems, "a SpecError always lists its problems"
    return info.value.problems


def paths_of(found: list[str]) -> list[str]:
    return [p.split(": ", 1)[0] for p in found]


FULL = """\
apiVersion: eddyline.dev/v1alpha1
kind: FlinkJob
metadata:
  name: full-job-1
  namespace: streaming
  labels: {team: payments}
  annotations: {note: "a: b"}
  creationTimestamp: "2026-11-26T10:00:00Z"
spec:
  job:
    entry: jobs.ledger
    args: [--orders-topic, orders, "--weird=a b"]
    parallelism: 3
    state: suspended
    upgradeMode: last-state
    initialSavepointPath: file:///sp/savepoint-1
    allowNonRestoredState: true
  flinkConfiguration:
    state.backend.type: rocksdb
    taskmanager.numberOfTaskSlots: 4
    pipeline.object-reuse: true
    some.ratio: 0.25
  checkpointing: {interval: 500ms, mode: AT_LEAST_ONCE, timeout: 2m}
  savepoints: {interval: 30m, maxCount: 2, maxAge: 7d}
  restartPolicy: {maxRetries: 0, backoff: 1s, maxBackoff: 1h, flinkAttempts: 0}
  autoscaler:
    enabled: true
    minParallelism: 2
    maxParallelism: 2
    targetUtilization: 1
    utilizationBand: 0
    catchUp: 5m
    metricsWindow: 30s
    scaleDownDelay: 10m
    cooldown: 2m
    stabilization: 1m
  kafka:
    bootstrapServers: kafka-1:9092,kafka-2:9092
    inputTopics: [orders]
    outputTopics: [stock-levels]
    copartitioned: false
  savepointTriggerNonce: 7
  restartNonce: 0
"""


# -- valid documents ----------------------------------------------------------------------------


def test_the_demo_specs_exist() -> None:
    assert {p.stem for p in SPECS} >= {"ledger", "sessions", "attribution"}


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_each_demo_spec_parses_and_round_trips(path: Path) -> None:
    job = load_yaml(path.read_text(), str(path))
    assert job.name == path.stem
    assert job.api_version == API_VERSION
    assert job.kind == KIND
    assert job.spec.job.entry == f"jobs.{path.stem}"
    assert job.status.lifecycle == Lifecycle.CREATED
    assert load_yaml(job.to_yaml(with_status=False)) == job
    assert parse(job.document(with_status=False)) == job


def test_the_ledger_demo_spec_says_what_its_comments_say() -> None:
    job = load_yaml((paths.PROJECT_ROOT / "jobs" / "specs" / "ledger.yaml").read_text())
    assert job.spec.job.upgrade_mode == UpgradeMode.savepoint
    assert job.spec.checkpointing.mode.value == "EXACTLY_ONCE"
    assert job.spec.savepoints.max_age == "7d"
    assert job.spec.kafka.input_topics == ["orders"]


def test_defaults_of_a_minimal_document() -> None:
    spec = parse(document()).spec
    assert spec.job.args == []
    assert spec.job.parallelism == 1
    assert spec.job.state == JobState.running
    assert spec.job.upgrade_mode == UpgradeMode.savepoint
    assert spec.job.initial_savepoint_path is None
    assert spec.job.allow_non_restored_state is False
    assert (spec.checkpointing.interval, spec.checkpointing.timeout) == ("10s", "10m")
    assert spec.savepoints.interval is None
    assert spec.savepoints.max_count == 5
    assert spec.restart_policy.max_retries == 5
    assert spec.restart_policy.backoff == "5s"
    assert spec.autoscaler.enabled is False
    assert spec.kafka.copartitioned is True
    assert spec.flink_configuration == {}
    assert (spec.savepoint_trigger_nonce, spec.restart_nonce) == (None, None)


def test_a_full_document_keeps_every_field_through_yaml_and_back() -> None:
    job = load_yaml(FULL)
    assert job.metadata.namespace == "streaming"
    assert job.metadata.creation_timestamp == "2026-11-26T10:00:00Z"
    assert job.spec.job.args[-1] == "--weird=a b"
    assert job.spec.job.upgrade_mode == UpgradeMode.last_state
    assert job.spec.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert job.spec.autoscaler.target_utilization == 1.0
    assert job.spec.restart_nonce == 0
    again = load_yaml(job.to_yaml(with_status=False))
    assert again == job
    # The timestamp stays a string (quoted), not a YAML timestamp.
    assert isinstance(yaml.safe_load(job.to_yaml())["metadata"]["creationTimestamp"], str)


def test_documents_use_camel_case_and_leave_out_empty_values() -> None:
    job = load_yaml(FULL)
    data = job.document()
    assert set(data) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "upgradeMode" in data["spec"]["job"]
    assert "initialSavepointPath" in data["spec"]["job"]
    assert "flinkConfiguration" in data["spec"]
    assert "restartPolicy" in data["spec"]
    assert "maxRetries" in data["spec"]["restartPolicy"]
    assert "upgrade_mode" not in str(data)
    assert "jobId" not in data["status"]  # None is left out
    assert data["status"]["lifecycle"] == "CREATED"
    assert "status" not in job.document(with_status=False)
    assert "status:" not in job.to_yaml(with_status=False)
    assert yaml.safe_load(job.to_yaml()) == data


def test_the_status_of_a_submitted_document_is_ignored() -> None:
    data = document()
    data["status"] = {"jobId": "forged", "lifecycle": "RUNNING", "restarts": 99}
    job = parse(data)
    assert job.status.job_id is None
    assert job.status.lifecycle == Lifecycle.CREATED
    assert job.status.restarts == 0
    # Even an invalid status is no problem: it is not looked at.
    data["status"] = {"lifecycle": "NOT-A-STATE", "bogus": 1}
    assert parse(data).status.lifecycle == Lifecycle.CREATED
    yaml_with_status = load_yaml(FULL).to_yaml(with_status=True)
    assert load_yaml(yaml_with_status.replace("CREATED", "RUNNING")).status.lifecycle == (
        Lifecycle.CREATED
    )


def test_parse_does_not_change_the_callers_document() -> None:
    data = document()
    data["status"] = {"jobId": "x"}
    before = copy.deepcopy(data)
    parse(data)
    assert data == before


def test_flink_configuration_numbers_and_booleans_become_strings() -> None:
    job = parse(
        document(
            flinkConfiguration={
                "int": 4,
                "float": 0.25,
                "true": True,
                "false": False,
                "str": "10 s",
                "zero": 0,
            }
        )
    )
    assert job.spec.flink_configuration == {
        "int": "4",
        "float": "0.25",
        "true": "true",
        "false": "false",
        "str": "10 s",
        "zero": "0",
    }
    from_yaml = load_yaml(FULL).spec.flink_configuration
    assert from_yaml["taskmanager.numberOfTaskSlots"] == "4"
    assert from_yaml["pipeline.object-reuse"] == "true"
    assert from_yaml["some.ratio"] == "0.25"


@pytest.mark.parametrize("value", [None, [1], {"nested": 1}])
def test_flink_configuration_values_must_be_scalars(value: Any) -> None:
    found = problems_of(document(flinkConfiguration={"key": value}))
    assert paths_of(found) == ["spec.flinkConfiguration.key"]


def test_metadata_added_by_kubernetes_is_ignored() -> None:
    data = document()
    data["metadata"].update(uid="123", resourceVersion="9", managedFields=[{"x": 1}])
    assert parse(data).name == "ledger"


@pytest.mark.parametrize("text", ["500ms", "5s", " 5 s ", "30m", "1h", "7d", "0s"])
def test_durations_in_every_unit_are_accepted(text: str) -> None:
    assert parse(document(checkpointing={"interval": text})).spec.checkpointing.interval == text


def test_seconds_converts_durations() -> None:
    assert seconds("500ms") == 0.5
    assert seconds("2m") == 120.0
    assert seconds("1d") == 86_400.0


# -- invalid documents: every problem, by its field path ---------------------------------------


def test_every_problem_of_a_bad_document_is_listed_with_its_camel_case_path() -> None:
    data = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "Bad_Name"},
        "spec": {
            "job": {
                "entry": "../x.py",
                "parallelism": 0,
                "upgradeMode": "yolo",
                "state": "paused",
                "args": "not-a-list",
            },
            "checkpointing": {"interval": "soon", "timeout": "5", "mode": "NONE"},
            "savepoints": {"maxCount": 0, "maxAge": "1y"},
            "restartPolicy": {"maxRetries": -1, "backoff": "x"},
            "autoscaler": {"minParallelism": 5, "maxParallelism": 2},
            "kafka": {"inputTopics": "orders"},
            "flinkConfiguration": {"a": {"b": 1}},
            "restartNonce": "abc",
            "surprise": 1,
        },
    }
    found = problems_of(data)
    assert paths_of(found) == [
        "metadata.name",
        "spec.job.entry",
        "spec.job.args",
        "spec.job.parallelism",
        "spec.job.state",
        "spec.job.upgradeMode",
        "spec.flinkConfiguration.a",
        "spec.checkpointing.interval",
        "spec.checkpointing.mode",
        "spec.checkpointing.timeout",
        "spec.savepoints.maxCount",
        "spec.savepoints.maxAge",
        "spec.restartPolicy.maxRetries",
        "spec.restartPolicy.backoff",
        "spec.autoscaler",
        "spec.kafka.inputTopics",
        "spec.restartNonce",
        "spec.surprise",
    ]
    assert "spec.surprise: unknown field" in found
    assert "spec.autoscaler: minParallelism must not exceed maxParallelism" in found
    assert any("not a duration: 'soon'" in p for p in found)
    # pydantic's "Value error, " prefix is not shown.
    assert not any("Value error" in p for p in found)


def test_the_error_message_counts_and_lists_the_problems() -> None:
    with pytest.raises(SpecError) as info:
        parse(document(job={"parallelism": 0}, checkpointing={"interval": "soon"}), "my.yaml")
    message = str(info.value)
    assert message.startswith("my.yaml is not a valid FlinkJob (2 problems):")
    assert "\n  - spec.job.parallelism: " in message
    assert "\n  - spec.checkpointing.interval: " in message
    assert info.value.source == "my.yaml"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"job": {"parallelism": 0}}, "spec.job.parallelism"),
        ({"job": {"parallelism": 1025}}, "spec.job.parallelism"),
        ({"job": {"parallelism": "many"}}, "spec.job.parallelism"),
        ({"job": {"allowNonRestoredState": "perhaps"}}, "spec.job.allowNonRestoredState"),
        ({"job": {"unknownFlag": 1}}, "spec.job.unknownFlag"),
        ({"checkpointing": {"interval": "10"}}, "spec.checkpointing.interval"),
        ({"checkpointing": {"interval": "1.5s"}}, "spec.checkpointing.interval"),
        ({"checkpointing": {"interval": "-1s"}}, "spec.checkpointing.interval"),
        ({"checkpointing": {"interval": "5sec"}}, "spec.checkpointing.interval"),
        ({"checkpointing": {"interval": 5}}, "spec.checkpointing.interval"),
        ({"savepoints": {"interval": "often"}}, "spec.savepoints.interval"),
        ({"restartPolicy": {"maxBackoff": "1w"}}, "spec.restartPolicy.maxBackoff"),
        ({"restartPolicy": {"flinkAttempts": -1}}, "spec.restartPolicy.flinkAttempts"),
        ({"autoscaler": {"targetUtilization": 0}}, "spec.autoscaler.targetUtilization"),
        ({"autoscaler": {"targetUtilization": 1.5}}, "spec.autoscaler.targetUtilization"),
        ({"autoscaler": {"utilizationBand": 1}}, "spec.autoscaler.utilizationBand"),
        ({"autoscaler": {"minParallelism": 0}}, "spec.autoscaler.minParallelism"),
        ({"autoscaler": {"cooldown": "soon"}}, "spec.autoscaler.cooldown"),
        ({"kafka": {"copartitioned": "maybe"}}, "spec.kafka.copartitioned"),
        ({"kafka": {"topics": ["x"]}}, "spec.kafka.topics"),
        ({"savepointTriggerNonce": "x"}, "spec.savepointTriggerNonce"),
        ({"checkpointing": "10s"}, "spec.checkpointing"),
    ],
)
def test_a_single_problem_is_named_by_its_path(change: dict[str, Any], path: str) -> None:
    found = problems_of(document(**change))
    assert paths_of(found) == [path], found


def test_unknown_fields_are_refused_at_every_level_but_metadata() -> None:
    data = document(job={"extra": 1}, checkpointing={"extra": 2}, kafka={"extra": 3})
    data["extra"] = 4
    data["metadata"]["extra"] = 5  # metadata: ignored (Kubernetes adds fields there)
    found = problems_of(data)
    assert sorted(found) == [
        "extra: unknown field",
        "spec.checkpointing.extra: unknown field",
        "spec.job.extra: unknown field",
        "spec.kafka.extra: unknown field",
    ]


def test_min_parallelism_above_max_parallelism_is_refused() -> None:
    found = problems_of(document(autoscaler={"minParallelism": 5, "maxParallelism": 2}))
    assert found == ["spec.autoscaler: minParallelism must not exceed maxParallelism"]
    assert parse(document(autoscaler={"minParallelism": 3, "maxParallelism": 3}))


def test_the_python_execution_mode_is_a_job_setting_given_once() -> None:
    assert parse(document()).spec.job.python_execution_mode is None
    spec = parse(document(job={"pythonExecutionMode": "thread"})).spec
    assert spec.job.python_execution_mode == "thread"
    assert "pythonExecutionMode" in spec.deployment()["job"]  # changing it is an upgrade
    assert problems_of(document(job={"pythonExecutionMode": "threads"})) == [
        "spec.job.pythonExecutionMode: Input should be 'process' or 'thread'"
    ]
    both = document(
        job={"pythonExecutionMode": "thread"},
        flinkConfiguration={"python.execution-mode": "process"},
    )
    assert problems_of(both) == [
        "spec: job.pythonExecutionMode is thread but flinkConfiguration sets "
        "python.execution-mode to process: set one of them"
    ]
    same = document(
        job={"pythonExecutionMode": "thread"},
        flinkConfiguration={"python.execution-mode": "thread"},
    )
    assert parse(same)


@pytest.mark.parametrize(
    "name",
    ["Ledger", "ledger_1", "-ledger", "ledger-", "", "a" * 64, "led.ger", "léger", "a b"],
)
def test_bad_names_are_refused(name: str) -> None:
    data = document()
    data["metadata"]["name"] = name
    assert paths_of(problems_of(data)) == ["metadata.name"]


@pytest.mark.parametrize("name", ["a", "ledger", "ledger-2", "0x", "a" * 63, "a-b-c"])
def test_good_names_are_accepted(name: str) -> None:
    data = document()
    data["metadata"]["name"] = name
    assert parse(data).name == name


def test_a_missing_name_or_metadata_is_named() -> None:
    data = document()
    data["metadata"] = {}
    assert paths_of(problems_of(data)) == ["metadata.name"]
    del data["metadata"]
    assert paths_of(problems_of(data)) == ["metadata"]
    data = document()
    del data["spec"]["job"]
    assert paths_of(problems_of(data)) == ["spec.job"]
    del data["spec"]
    assert paths_of(problems_of(data)) == ["spec"]


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("../evil.py", "'..' is not allowed"),
        ("jobs/../../evil.py", "'..' is not allowed"),
        ("jobs/..", "use a module under jobs/"),
        ("/etc/evil.py", "relative to the project"),
        ("/work/main/jobs/ledger.py", "relative to the project"),
        ("~/evil.py", "relative to the project"),
        ("~root/evil.py", "relative to the project"),
        ("jobs\\evil.py", "relative to the project"),
        ("os.path", "use a module under jobs/"),
        ("subprocess.run", "use a module under jobs/"),
        ("jobsx.ledger", "use a module under jobs/"),
        ("jobs", "use a module under jobs/"),
        ("jobs.", "use a module under jobs/"),
        ("jobs..ledger", "use a module under jobs/"),
        ("jobs.led-ger", "use a module under jobs/"),
        ("jobs.1ledger", "use a module under jobs/"),
        ("jobs/ledger", "use a module under jobs/"),
        ("", "use a module under jobs/"),
    ],
)
def test_entries_that_could_escape_are_refused(entry: str, why: str) -> None:
    found = problems_of(document(job={"entry": entry}))
    assert len(found) == 1
    assert found[0].startswith("spec.job.entry: ")
    assert why in found[0]


@pytest.mark.parametrize("entry", ["jobs.ledger", "jobs.sub.module", "jobs/x.py", "my/job.py"])
def test_modules_under_jobs_and_relative_files_are_accepted_by_the_model(entry: str) -> None:
    assert parse(document(job={"entry": entry})).spec.job.entry == entry


def test_documents_that_are_not_mappings_are_refused() -> None:
    expected = ["(document): expected a mapping with apiVersion, kind, metadata, spec"]
    for data in ([], "text", None, 3):
        assert problems_of(data) == expected


def test_api_version_and_kind_are_required_and_checked() -> None:
    data = document()
    del data["apiVersion"]
    del data["kind"]
    assert problems_of(data) == ["apiVersion: field required", "kind: field required"]
    # A missing one is listed together with the other problems.
    data["spec"]["job"]["parallelism"] = 0
    assert paths_of(problems_of(data)) == ["apiVersion", "kind", "spec.job.parallelism"]
    wrong = document()
    wrong["apiVersion"] = "eddyline.dev/v2"
    wrong["kind"] = "Deployment"
    assert paths_of(problems_of(wrong)) == ["apiVersion", "kind"]


def test_yaml_that_does_not_parse_is_a_document_problem() -> None:
    with pytest.raises(SpecError) as info:
        load_yaml("spec: [unclosed", "broken.yaml")
    assert info.value.source == "broken.yaml"
    (problem,) = info.value.problems
    assert problem.startswith("(document): not valid YAML: ")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_yaml("- a\n- b\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        load_yaml("")


# -- what a deployment is built from -------------------------------------------------------------


def test_deployment_leaves_out_requests_state_and_controller_settings() -> None:
    spec = load_yaml(FULL).spec
    deployment = spec.deployment()
    assert set(deployment) == {
        "job",
        "flinkConfiguration",
        "checkpointing",
        "restartPolicy",
        "kafka",
    }
    assert set(deployment["job"]) == {
        "entry",
        "args",
        "parallelism",
        "upgradeMode",
        "allowNonRestoredState",
    }  # pythonExecutionMode only when set: older jobs' deployments stay the same
    assert deployment["flinkConfiguration"]["taskmanager.numberOfTaskSlots"] == "4"
    # deployment() is a copy: the spec itself is untouched.
    assert spec.job.state == JobState.suspended
    assert spec.job.initial_savepoint_path == "file:///sp/savepoint-1"
    assert spec.savepoint_trigger_nonce == 7


def test_deployment_changes_with_what_the_job_is_built_from_only() -> None:
    base = parse(document()).spec
    same = [
        {"savepoint_trigger_nonce": 3},
        {"restart_nonce": 2},
        {"job": base.job.model_copy(update={"state": JobState.suspended})},
        {"job": base.job.model_copy(update={"initial_savepoint_path": "file:///sp"})},
        {"autoscaler": base.autoscaler.model_copy(update={"enabled": True})},
        {"savepoints": base.savepoints.model_copy(update={"max_count": 9, "interval": "1h"})},
    ]
    for update in same:
        assert base.model_copy(update=update).deployment() == base.deployment(), update
    different = [
        {"job": base.job.model_copy(update={"parallelism": 2})},
        {"job": base.job.model_copy(update={"args": ["--x"]})},
        {"job": base.job.model_copy(update={"upgrade_mode": UpgradeMode.stateless})},
        {"job": base.job.model_copy(update={"allow_non_restored_state": True})},
        {"flink_configuration": {"a": "b"}},
        {"checkpointing": base.checkpointing.model_copy(update={"interval": "1s"})},
        {"restart_policy": base.restart_policy.model_copy(update={"max_retries": 1})},
        {"kafka": base.kafka.model_copy(update={"input_topics": ["orders"]})},
    ]
    for update in different:
        assert base.model_copy(update=update).deployment() != base.deployment(), update


# -- the schema ----------------------------------------------------------------------------------


def test_json_schema_has_the_camel_case_properties() -> None:
    schema = json_schema()
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    defs = schema["$defs"]
    assert set(defs["FlinkJobSpec"]["properties"]) == {
        "job",
        "flinkConfiguration",
        "checkpointing",
        "savepoints",
        "restartPolicy",
        "autoscaler",
        "kafka",
        "savepointTriggerNonce",
        "restartNonce",
        "health",
    }
    assert set(defs["JobSpec"]["properties"]) == {
        "code",
        "requirements",
        "artifact",
        "entry",
        "args",
        "parallelism",
        "state",
        "upgradeMode",
        "initialSavepointPath",
        "allowNonRestoredState",
        "pythonExecutionMode",
    }
    assert {"maxCount", "maxAge", "interval"} == set(defs["SavepointsSpec"]["properties"])
    assert {"maxRetries", "backoff", "maxBackoff", "flinkAttempts"} == set(
        defs["RestartPolicy"]["properties"]
    )
    assert {"minParallelism", "maxParallelism", "targetUtilization", "scaleDownDelay"} <= set(
        defs["AutoscalerSpec"]["properties"]
    )
    assert {"bootstrapServers", "inputTopics", "outputTopics", "copartitioned"} == set(
        defs["KafkaSpec"]["properties"]
    )
    assert {"creationTimestamp", "deletionTimestamp", "name", "generation"} <= set(
        defs["Metadata"]["properties"]
    )
    status = defs["JobStatus"]["properties"]
    assert {
        "jobId",
        "lifecycle",
        "lastReconciledSpec",
        "lastStableSpec",
        "observedGeneration",
        "upgradeSavepointPath",
        "nextRetryAt",
        "outageRetryAt",
    } <= set(status)
    text = str(schema)
    for snake in ("upgrade_mode", "max_count", "job_id", "flink_configuration"):
        assert snake not in text
    assert defs["JobSpec"]["properties"]["parallelism"]["minimum"] == 1
    assert defs["JobSpec"]["properties"]["parallelism"]["maximum"] == 1024
    assert "pattern" in defs["CheckpointingSpec"]["properties"]["interval"]
    assert set(defs["JobSpec"]["required"]) == {"entry"}


# -- property: parse accepts or refuses, never crashes -------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=16)
    | st.sampled_from(["5s", "0ms", "1d", "jobs.ledger", "x.py", "../x.py", "running", "-1"])
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["entry", "interval", "name", "maxCount"]),
            children,
            max_size=3,
        )
    ),
    max_leaves=10,
)
FIELDS = [
    ("metadata",),
    ("metadata", "name"),
    ("metadata", "generation"),
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("spec",),
    ("spec", "job"),
    ("spec", "flinkConfiguration"),
    ("spec", "checkpointing"),
    ("spec", "savepoints"),
    ("spec", "restartPolicy"),
    ("spec", "autoscaler"),
    ("spec", "kafka"),
    ("spec", "savepointTriggerNonce"),
    ("spec", "restartNonce"),
    ("spec", "surprise"),
    *[
        ("spec", "job", key)
        for key in (
            "entry",
            "args",
            "parallelism",
            "state",
            "upgradeMode",
            "initialSavepointPath",
            "allowNonRestoredState",
        )
    ],
    *[("spec", "checkpointing", key) for key in ("interval", "mode", "timeout")],
    *[("spec", "savepoints", key) for key in ("interval", "maxCount", "maxAge")],
    *[("spec", "restartPolicy", key) for key in ("maxRetries", "backoff", "maxBackoff")],
    *[
        ("spec", "autoscaler", key)
        for key in ("enabled", "minParallelism", "maxParallelism", "targetUtilization")
    ],
    *[("spec", "kafka", key) for key in ("bootstrapServers", "inputTopics", "copartitioned")],
    ("apiVersion",),
    ("kind",),
    ("status",),
]


def _put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    where = data
    for key in path[:-1]:
        if not isinstance(where.get(key), dict):
            where[key] = {}
        where = where[key]
    where[path[-1]] = value


@settings(max_examples=400, deadline=None)
@given(changes=st.lists(st.tuples(st.sampled_from(FIELDS), VALUES), min_size=1, max_size=4))
def test_random_values_anywhere_give_a_job_or_a_spec_error_never_anything_else(
    changes: list[tuple[tuple[str, ...], Any]],
) -> None:
    data = document()
    for path, value in changes:
        _put(data, path, value)
    job: FlinkJob | None = None
    found: list[str] | None = None
    try:
        job = parse(data)
    except SpecError as e:
        found = e.problems
    if found is not None:
        assert found
        for problem in found:
            assert isinstance(problem, str)
            path, _, message = problem.partition(": ")
            assert path
            assert message
        return
    # Whatever is accepted is a valid job that survives its own YAML.
    assert isinstance(job, FlinkJob)
    assert load_yaml(job.to_yaml(with_status=False)) == job


@settings(max_examples=200, deadline=None)
@given(value=VALUES)
def test_random_whole_documents_never_crash_parse(value: Any) -> None:
    found: list[str] = ["accepted"]
    try:
        parse(value)
    except SpecError as e:
        found = e.problems
    assert found
