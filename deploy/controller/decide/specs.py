"""Which spec runs and whether it differs from the deployed one: pure comparisons."""

from __future__ import annotations

from deploy.spec import FlinkJobSpec, JobStatus


def needs_upgrade(spec: FlinkJobSpec, deployed: FlinkJobSpec | None) -> bool:
    return deployed is None or spec.deployment() != deployed.deployment()


def parallelism_only(spec: FlinkJobSpec, deployed: FlinkJobSpec | None) -> bool:
    """Whether the only difference to the deployed spec is the job's parallelism."""
    if deployed is None or spec.job.parallelism == deployed.job.parallelism:
        return False
    same = spec.with_job(parallelism=deployed.job.parallelism)
    return same.deployment() == deployed.deployment()


def effective_spec(spec: FlinkJobSpec, status: JobStatus) -> FlinkJobSpec:
    """The spec the job runs: the autoscaler's parallelism replaces the spec's while the
    autoscaler is enabled and the user has not set a new parallelism since it decided."""
    chosen = status.autoscaler.get("parallelism")
    if spec.autoscaler.enabled and chosen and status.autoscaler.get("base") == spec.job.parallelism:
        return spec.with_job(parallelism=int(chosen))
    return spec
