"""The FlinkJob CustomResourceDefinition, generated from the spec model in deploy/spec.py.

    python -m deploy.kube.crd            # print it
    python -m deploy.kube.crd --write    # rewrite helm/eddyline/crds/flinkjob.yaml
    python -m deploy.kube.crd --check    # exit 1 when the committed file has drifted from the model

Kubernetes validates custom resources against a *structural* OpenAPI v3 schema, which is
stricter than the JSON Schema pydantic writes: every node has a `type`, there are no `$ref`s,
a nullable field is `nullable: true` rather than `anyOf [X, null]`, `exclusiveMinimum` is a
flag beside `minimum`, there is no `const`, and `additionalProperties` never sits beside
`properties` (unknown fields are pruned, or refused under strict field validation). This module
translates one into the other and refuses anything it cannot translate faithfully, so a new kind
of field in the model fails here rather than in the API server.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from deploy import spec
from deploy.errors import SchemaError
from deploy.paths import PROJECT_ROOT

GROUP = "eddyline.dev"
VERSION = "v1alpha1"
KIND = spec.KIND
PLURAL = "flinkjobs"
SINGULAR = "flinkjob"
SHORT_NAMES = ["fj"]
CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_PATH = PROJECT_ROOT / "helm" / "eddyline" / "crds" / "flinkjob.yaml"

# Maps whose values Kubernetes keeps as written: Flink configuration values are strings for
# Flink, but YAML users write `numberOfTaskSlots: 2` or `true`, which the model turns into
# strings (a structural map of strings would refuse them); the autoscaler's status is the
# controller's own free-form record. Keyed by (model title, field).
FREE_FORM = {("FlinkJobSpec", "flinkConfiguration"), ("JobStatus", "autoscaler")}

# Keywords of pydantic's JSON schema that carry over unchanged into Kubernetes' schema.
_KEPT = {
    "type",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "required",
    "format",
}
# The order keys are written in, so the file reads type first and nested parts last.
_ORDER = [
    "type",
    "description",
    "nullable",
    "enum",
    "default",
    "format",
    "pattern",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
    "required",
    "items",
    "additionalProperties",
    "properties",
]
# Dropped on purpose: titles are pydantic's repetition of the field name, `additionalProperties:
# false` is Kubernetes' default behaviour (pruning) and is not allowed beside `properties`.
_DROPPED = {"title", "additionalProperties"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Lifecycle", "type": "string", "jsonPath": ".status.lifecycle"},
    {
        "name": "Parallelism",
        "type": "integer",
        "jsonPath": ".status.parallelism",
        "description": "the parallelism the job runs with (the autoscaler may change it)",
    },
    {"name": "Job ID", "type": "string", "jsonPath": ".status.jobId"},
    {
        "name": "Desired",
        "type": "integer",
        "jsonPath": ".spec.job.parallelism",
        "priority": 1,
        "description": "the parallelism the spec asks for",
    },
    {"name": "State", "type": "string", "jsonPath": ".spec.job.state", "priority": 1},
    {"name": "Entry", "type": "string", "jsonPath": ".spec.job.entry", "priority": 1},
    {"name": "Error", "type": "string", "jsonPath": ".status.error", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


class _Translator:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs
        self.resolving: list[str] = []

    def node(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        out = self._node(schema, where)
        return {k: out[k] for k in sorted(out, key=_ORDER.index)}

    def _node(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        if "$ref" in schema:
            return self._ref(schema, where)
        if "anyOf" in schema:
            return self._nullable(schema, where)
        unknown = (
            set(schema)
            - _KEPT
            - _DROPPED
            - {
                "properties",
                "items",
                "default",
                "const",
                "exclusiveMinimum",
                "exclusiveMaximum",
            }
        )
        if unknown:
            raise SchemaError(f"{where}: no structural form for {sorted(unknown)}")
        out: dict[str, Any] = {k: v for k, v in schema.items() if k in _KEPT}
        if "const" in schema:
            out["enum"] = [schema["const"]]
        for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if bound in schema:
                out[flag] = schema[bound]
                out[bound] = True
        if schema.get("default") is not None:
            out["default"] = schema["default"]
        if "type" not in out:
            raise SchemaError(f"{where}: a structural schema needs a type")
        if out["type"] == "object":
            self._object(schema, out, where)
        elif out["type"] == "array":
            if "items" not in schema:
                raise SchemaError(f"{where}: an array needs items")
            out["items"] = self.node(schema["items"], f"{where}[]")
        return out

    def _object(self, schema: dict[str, Any], out: dict[str, Any], where: str) -> None:
        extra = schema.get("additionalProperties", False)
        props = schema.get("properties")
        if props is not None:
            if extra not in (False, None):
                raise SchemaError(f"{where}: both properties and additionalProperties")
            title = schema.get("title", "")
            out["properties"] = {
                name: (
                    self._free_form(sub)
                    if (title, name) in FREE_FORM
                    else self.node(sub, f"{where}.{name}")
                )
                for name, sub in props.items()
            }
        elif extra is True or extra == {}:
            out["x-kubernetes-preserve-unknown-fields"] = True
        elif isinstance(extra, dict):
            out["additionalProperties"] = self.node(extra, f"{where}.*")
        else:
            raise SchemaError(f"{where}: an object with neither properties nor a value schema")

    def _free_form(self, schema: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if "description" in schema:
            out["description"] = schema["description"]
        return out

    def _ref(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        name = schema["$ref"].removeprefix("#/$defs/")
        if name not in self.defs:
            raise SchemaError(f"{where}: unresolved reference {schema['$ref']}")
        if name in self.resolving:  # Kubernetes schemas cannot recurse
            raise SchemaError(f"{where}: {name} refers to itself")
        self.resolving.append(name)
        try:
            target = copy.deepcopy(self.defs[name])
            target.update({k: v for k, v in schema.items() if k != "$ref"})
            return self.node(target, where)
        finally:
            self.resolving.pop()

    def _nullable(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        branches = [b for b in schema["anyOf"] if b != {"type": "null"}]
        if len(branches) != 1 or len(branches) == len(schema["anyOf"]):
            raise SchemaError(f"{where}: only `X | None` unions have a structural form")
        merged = {**branches[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
        out = self.node(merged, where)
        out["nullable"] = True
        if "enum" in out:
            # The API server checks `enum` even for null, and no enum entry lets null through;
            # a CEL rule is skipped for null, so it carries the allowed values instead.
            allowed = out.pop("enum")
            choices = ", ".join(json.dumps(v) for v in allowed)
            out["x-kubernetes-validations"] = [
                {"rule": f"self in [{choices}]", "message": f"must be one of {choices}"}
            ]
        return out


def openapi_schema() -> dict[str, Any]:
    """The FlinkJob's openAPIV3Schema: the model's JSON schema in structural form."""
    source = spec.json_schema()
    translator = _Translator(source.pop("$defs", {}))
    props = source["properties"]
    # The API server owns apiVersion, kind and metadata; a CRD may only restrict metadata.name.
    # The model checks the name's pattern in a validator, not in its schema.
    name = {**translator.defs["Metadata"]["properties"]["name"], "pattern": spec._NAME.pattern}
    return {
        "type": "object",
        "description": "A PyFlink job that the Eddyline controller keeps running on the Flink "
        "session cluster as declared.",
        "required": [r for r in source.get("required", []) if r != "metadata"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": {"name": translator.node(name, "metadata.name")},
            },
            "spec": translator.node(props["spec"], "spec"),
            "status": translator.node(props["status"], "status"),
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition document."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "eddyline"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["eddyline"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


HEADER = (
    "# The FlinkJob CRD — generated from deploy/spec.py by `python -m deploy.kube.crd --write`.\n"
    "# Do not edit: tests/unit/test_crd.py fails when this file and the model differ.\n"
)


def render() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.kube.crd", description="the FlinkJob CRD"
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {CRD_PATH}")
    group.add_argument("--check", action="store_true", help="exit 1 if the file has drifted")
    parser.add_argument("--path", type=Path, default=CRD_PATH)
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        args.path.parent.mkdir(parents=True, exist_ok=True)
        args.path.write_text(text)
        return 0
    if args.check:
        current = args.path.read_text() if args.path.exists() else ""
        if current != text:
            print(f"{args.path} differs from deploy/spec.py: run python -m deploy.kube.crd --write")
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
