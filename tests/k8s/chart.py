"""Rendering the eddyline chart with helm for the chart tests (no cluster needed to render).

helm is the one scripts/kube-tools.sh builds into tests.k8s.envtest.BIN_DIR
(~/.cache/eddyline/bin, or $EDDYLINE_KUBE_BIN); a test that needs it and finds none fails
saying how to build it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.envtest import BIN_DIR

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "eddyline"
# The scenarios the chart is tested with, in the chart as chart-testing expects them: every
# ci/<scenario>-values.yaml is one release (`ct lint`/`ct install` use each the same way).
CI = CHART / "ci"
VALUES_SUFFIX = "-values.yaml"
VALUES_FILES = sorted(CI.glob(f"*{VALUES_SUFFIX}"))
RELEASE = "eddyline"
NAMESPACE = "streaming"

Doc = dict[str, Any]


def ci_values(name: str) -> Path:
    """The values file of scenario `name`: ci/<name>-values.yaml."""
    path = CI / f"{name}{VALUES_SUFFIX}"
    assert path.is_file(), f"no scenario {name!r}: {path} does not exist"
    return path


def scenario(values_file: Path) -> str:
    """The scenario a ci/ values file is: minimal-values.yaml -> minimal."""
    return values_file.name.removesuffix(VALUES_SUFFIX)


def helm_binary() -> Path:
    helm = BIN_DIR / "helm"
    if not helm.exists():
        pytest.fail(
            f"helm not found at {helm}: build it with `make kube-tools` (scripts/kube-tools.sh) "
            "or point EDDYLINE_KUBE_BIN at a folder that has it",
            pytrace=False,
        )
    return helm


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(helm_binary()), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
        )
    return result


def template_args(values: Path | None = None, *sets: str, namespace: str = NAMESPACE) -> list[str]:
    args = ["template", RELEASE, str(CHART), "--namespace", namespace]
    if values is not None:
        args += ["--values", str(values)]
    for s in sets:
        args += ["--set", s]
    return args


def render(
    values: Path | None = None, *sets: str, crds: bool = False, namespace: str = NAMESPACE
) -> list[Doc]:
    """The release's manifests (with the helm test hooks; with the CRD if `crds`)."""
    args = template_args(values, *sets, namespace=namespace)
    if crds:
        args.append("--include-crds")
    out = helm(*args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


class Manifests:
    """A rendered release, with lookups by kind and name."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs

    def of(self, kind: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> Doc:
        found = [d for d in self.of(kind) if d["metadata"]["name"] == name]
        assert found, f"no {kind} {name}; have {[d['metadata']['name'] for d in self.of(kind)]}"
        return found[0]

    def has(self, kind: str, name: str) -> bool:
        return any(d["metadata"]["name"] == name for d in self.of(kind))

    def workloads(self) -> Iterator[tuple[Doc, Doc]]:
        """(workload, its pod spec) for every Deployment and Job."""
        for doc in self.docs:
            if doc["kind"] in ("Deployment", "Job"):
                yield doc, doc["spec"]["template"]["spec"]

    def pod_templates(self) -> Iterator[tuple[Doc, Doc]]:
        """(workload, its pod template)."""
        for doc in self.docs:
            if doc["kind"] in ("Deployment", "Job"):
                yield doc, doc["spec"]["template"]


def container(pod_spec: Doc, name: str) -> Doc:
    [found] = [c for c in pod_spec["containers"] if c["name"] == name]
    return found


def env(c: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def flag(args: list[str], name: str) -> str:
    """The value after `name` in an argument list."""
    assert name in args, f"{name} not in {args}"
    return args[args.index(name) + 1]
