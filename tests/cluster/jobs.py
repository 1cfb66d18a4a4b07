"""The reference jobs as users run them on the cluster: a FlinkJob spec file submitted with
`eddyline submit --kube`, run by the in-cluster controller on the Flink pods."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml

from deploy.flink.rest import FlinkClient
from tests.cluster.conftest import Release
from tests.integration.cli import eddyline
from tests.integration.jobrun import Job


class PodJob(Job):
    """A job the controller submitted, watched through the JobManager Service."""

    def __init__(self, flink_url: str, job_id: str) -> None:
        self.flink = FlinkClient(flink_url)
        self.id = job_id


def kube_args(release: Release) -> list[str]:
    return [
        "--kube",
        "--namespace",
        release.namespace,
        "--kubeconfig",
        str(release.kube.kubeconfig),
    ]


def submit(
    release: Release, tmp: Path, name: str, entry: str, args: list[str], **spec: Any
) -> None:
    doc = {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": {
            "job": {"entry": entry, "args": args, "parallelism": 1, "upgradeMode": "savepoint"},
            "checkpointing": {"interval": "2s"},
            **spec,
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = eddyline("submit", str(path), *kube_args(release))
    assert result.returncode == 0, result.stderr + result.stdout


def describe(release: Release, name: str) -> dict[str, Any]:
    result = eddyline("describe", name, "-o", "json", *kube_args(release))
    assert result.returncode == 0, result.stderr + result.stdout
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def wait_running(release: Release, name: str, timeout: float = 300) -> PodJob:
    """The FlinkJob's Flink job, once the controller reports it RUNNING and Flink agrees."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = describe(release, name)
        status = last.get("status") or {}
        job_id = status.get("jobId")
        if job_id and status.get("lifecycle") in ("RUNNING", "STABLE"):
            job = PodJob(release.flink_url, job_id)
            try:
                job.wait_running(timeout=max(10.0, deadline - time.monotonic()))
            except BaseException:
                job.flink.close()
                raise
            return job
        time.sleep(2)
    raise AssertionError(f"{name} not running after {timeout} s: {json.dumps(last.get('status'))}")


def delete(release: Release, name: str) -> None:
    result = eddyline("delete", name, *kube_args(release))
    assert result.returncode == 0, result.stderr + result.stdout
