"""The FlinkJob CRD: generated from the spec model, committed in the chart, structural."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import spec
from deploy.kube import crd

CRD_FILE = crd.CRD_PATH


def committed() -> dict[str, Any]:
    return yaml.safe_load(CRD_FILE.read_text())


def schema() -> dict[str, Any]:
    return crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def nodes(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (`spec.job.parallelism`, `status.savepoints[]`)."""
    out = [(path, node)]
    for name, sub in node.get("properties", {}).items():
        out += nodes(sub, f"{path}.{name}" if path else name)
    if "items" in node:
        out += nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out += nodes(node["additionalProperties"], f"{path}.*")
    return out


def at(path: str) -> dict[str, Any]:
    node = schema()
    for part in path.split("."):
        node = node["properties"][part]
    return node


def test_committed_crd_is_generated_from_the_spec_model() -> None:
    assert CRD_FILE.read_text() == crd.render(), (
        f"{CRD_FILE.relative_to(crd.PROJECT_ROOT)} differs from deploy/spec.py: "
        "run `.venv/bin/python -m deploy.kube.crd --write` and commit the result"
    )


def test_check_flag_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "flinkjob.yaml"
    stale.write_text(crd.render().replace("maximum: 1024", "maximum: 1023"))
    assert crd.main(["--check", "--path", str(stale)]) == 1
    assert "python -m deploy.kube.crd --write" in capsys.readouterr().out
    assert crd.main(["--write", "--path", str(stale)]) == 0
    assert crd.main(["--check", "--path", str(stale)]) == 0


def test_names_scope_and_subresources() -> None:
    doc = committed()
    assert doc["metadata"]["name"] == "flinkjobs.eddyline.dev"
    s = doc["spec"]
    assert (s["group"], s["scope"]) == ("eddyline.dev", "Namespaced")
    assert s["names"]["kind"] == "FlinkJob"
    assert s["names"]["plural"] == "flinkjobs"
    [version] = s["versions"]
    assert version["name"] == "v1alpha1"
    assert f"{s['group']}/{version['name']}" == spec.API_VERSION
    assert version["served"]
    assert version["storage"]
    assert version["subresources"] == {"status": {}}


def test_structural_every_node_typed_and_no_json_schema_leftovers() -> None:
    forbidden = {"$ref", "$defs", "anyOf", "oneOf", "allOf", "const", "title"}
    for path, node in nodes(schema()):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not forbidden & set(node), f"{path}: {sorted(forbidden & set(node))}"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path
            assert "minimum" in node, path
        if "default" in node:
            assert node["default"] is not None, path


def test_metadata_restricts_only_the_name_like_the_model() -> None:
    metadata = at("metadata")
    assert set(metadata["properties"]) == {"name"}
    name = metadata["properties"]["name"]
    assert name["maxLength"] == 63
    pattern = re.compile(name["pattern"])
    for good in ("ledger", "a", "job-2"):
        assert pattern.match(good)
        spec.Metadata(name=good)
    for bad in ("Ledger", "-job", "job-", "a.b", "a_b"):
        assert not pattern.match(bad)
        with pytest.raises(ValueError, match="lower-case"):
            spec.Metadata(name=bad)


def test_field_constraints_come_from_the_model() -> None:
    parallelism = at("spec.job.parallelism")
    assert (parallelism["type"], parallelism["minimum"], parallelism["maximum"]) == (
        "integer",
        1,
        1024,
    )
    assert at("spec.job.upgradeMode")["enum"] == [m.value for m in spec.UpgradeMode]
    assert at("spec")["required"] == ["job"]
    assert at("spec.job")["required"] == ["entry"]
    target = at("spec.autoscaler.targetUtilization")
    assert (target["minimum"], target["exclusiveMinimum"], target["maximum"]) == (0, True, 1)
    assert re.match(at("spec.checkpointing.interval")["pattern"], "10s")
    assert at("status.lifecycle")["enum"] == [s.value for s in spec.Lifecycle]
    # Nested models are inlined wherever they are used, status included.
    assert at("status.lastReconciledSpec")["nullable"] is True
    assert at("status.lastReconciledSpec.job.parallelism") == parallelism


def test_free_form_maps_keep_what_users_write() -> None:
    for path in (
        "spec.flinkConfiguration",
        "status.autoscaler",
        "status.lastReconciledSpec.flinkConfiguration",
    ):
        assert at(path) == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    # ...because the model accepts numbers and booleans there and makes them strings.
    parsed = spec.FlinkJobSpec.model_validate(
        {"job": {"entry": "jobs.ledger"}, "flinkConfiguration": {"a": 2, "b": True}}
    )
    assert parsed.flink_configuration == {"a": "2", "b": "true"}


def test_nullable_enums_are_checked_by_a_rule_that_lets_null_through() -> None:
    trigger = at("status.operation.trigger")
    assert trigger["nullable"] is True
    assert "enum" not in trigger  # the API server would refuse null against any enum
    [rule] = trigger["x-kubernetes-validations"]
    assert rule["rule"] == 'self in ["upgrade", "suspend", "periodic", "manual", "delete"]'
    assert at("status.operation.upgradeMode")["x-kubernetes-validations"][0]["rule"] == (
        'self in ["stateless", "savepoint", "last-state"]'
    )


def apply_defaults(node: dict[str, Any], value: Any) -> Any:
    """What the API server's structural defaulting does to a value."""
    if isinstance(value, dict) and "properties" in node:
        out = dict(value)
        for name, sub in node["properties"].items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = apply_defaults(sub, out[name])
        return out
    if isinstance(value, list) and "items" in node:
        return [apply_defaults(node["items"], v) for v in value]
    return value


def test_api_server_defaults_mean_what_the_model_defaults_mean() -> None:
    sparse = {
        "job": {"entry": "jobs.ledger"},
        "checkpointing": {},
        "savepoints": {},
        "restartPolicy": {},
        "autoscaler": {},
        "kafka": {},
    }
    defaulted = apply_defaults(at("spec"), sparse)
    assert defaulted != sparse  # the CRD does fill in defaults
    model = spec.FlinkJobSpec.model_validate
    assert model(defaulted) == model(sparse)


def test_printer_columns_point_at_schema_fields() -> None:
    columns = {c["name"]: c for c in crd.PRINTER_COLUMNS}
    assert {"Lifecycle", "Parallelism", "Job ID"} <= set(columns)
    for column in crd.PRINTER_COLUMNS:
        path = column["jsonPath"].lstrip(".")
        if path.startswith("metadata."):
            continue
        node = at(path)
        expected = {"integer": "integer", "string": "string"}[node["type"]]
        assert column["type"] == expected, column


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ({"anyOf": [{"type": "string"}, {"type": "integer"}]}, "only `X | None`"),
        ({"type": "string", "oneOf": [{"minLength": 1}]}, "no structural form"),
        ({"description": "untyped"}, "needs a type"),
        ({"$ref": "#/$defs/Loop"}, "refers to itself"),
        ({"$ref": "#/$defs/Missing"}, "unresolved"),
    ],
)
def test_untranslatable_schemas_are_refused(source: dict[str, Any], problem: str) -> None:
    loop = {"type": "object", "title": "Loop", "properties": {"next": {"$ref": "#/$defs/Loop"}}}
    defs = {"Loop": loop}
    with pytest.raises(crd.SchemaError, match=re.escape(problem)):
        crd._Translator(defs).node(source, "x")
