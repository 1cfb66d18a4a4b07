"""The `eddyline` commands that move a running FlinkJob through its lifecycle: suspend, resume,
scale and savepoint. Each is one change of the spec; with `--wait` it follows the controller until
the job is where the change asked it to be."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer

from deploy.cli import waiting
from deploy.cli.common import Output, OutputOpt, console
from deploy.cli.jobs import emit, no_such_job
from deploy.cli.options import Follow, JobTarget, Name, command
from deploy.spec import FlinkJob, FlinkJobSpec, JobState


@dataclass(frozen=True)
class Change:
    """A change of the spec, and what `--wait` waits for once the controller has seen it."""

    edit: Callable[[FlinkJobSpec], FlinkJobSpec]
    message: str  # printed after the change; {name} and {generation} are filled in
    wanted: Callable[[int], waiting.Done]  # from the new generation: is the job there?
    what: str  # "run", "suspend", …: what the job is waited for to do


def apply(name: str, change: Change, target: JobTarget, follow: Follow, output: Output) -> None:
    job = target.store.update_spec(name, change.edit)
    if follow.wait:
        generation = job.metadata.generation
        done = change.wanted(generation)
        quiet = output == Output.json
        job = waiting.wait_for(target, name, done, change.what, follow, quiet, generation) or job
    emit(job, output, change.message.format(name=name, generation=job.metadata.generation))


@command
def suspend(
    name: Name, target: JobTarget, follow: Follow, output: OutputOpt = Output.table
) -> None:
    """Stop the job with a savepoint; `resume` starts it again from there."""
    change = Change(
        edit=lambda spec: spec.with_job(state=JobState.suspended),
        message="flinkjob/{name} suspend requested (generation {generation})",
        wanted=waiting.suspended,
        what="suspend",
    )
    apply(name, change, target, follow, output)


@command
def resume(name: Name, target: JobTarget, follow: Follow, output: OutputOpt = Output.table) -> None:
    """Start a suspended job again from its savepoint."""
    change = Change(
        edit=lambda spec: spec.with_job(state=JobState.running),
        message="flinkjob/{name} resume requested (generation {generation})",
        wanted=waiting.running,
        what="run",
    )
    apply(name, change, target, follow, output)


@command
def scale(
    name: Name,
    parallelism: Annotated[int, typer.Option(min=1, max=1024, help="the new parallelism")],
    target: JobTarget,
    follow: Follow,
    output: OutputOpt = Output.table,
) -> None:
    """Change the job's parallelism: in place on the adaptive scheduler (same job, from its
    latest checkpoint), else an upgrade per its upgradeMode."""
    change = Change(
        edit=lambda spec: spec.with_job(parallelism=parallelism),
        message=f"flinkjob/{{name}} parallelism → {parallelism} (generation {{generation}})",
        wanted=waiting.running,
        what="run at the new parallelism",
    )
    apply(name, change, target, follow, output)


@command
def savepoint(
    name: Name, target: JobTarget, follow: Follow, output: OutputOpt = Output.table
) -> None:
    """Take a savepoint of the running job now (the job keeps running)."""
    current = target.store.get(name)
    if current is None:
        raise no_such_job(name)
    known = {s.path for s in current.status.savepoints}

    def taken(_: int) -> waiting.Done:
        def done(job: FlinkJob | None) -> bool:
            return job is not None and any(
                s.path not in known and s.trigger == "manual" for s in job.status.savepoints
            )

        return done

    change = Change(
        edit=lambda spec: spec.model_copy(
            update={"savepoint_trigger_nonce": (spec.savepoint_trigger_nonce or 0) + 1}
        ),
        message="flinkjob/{name} savepoint requested",
        wanted=taken,
        what="take a savepoint",
    )
    apply(name, change, target, follow, output)
    if follow.wait and output == Output.table:
        job = target.store.get(name)
        if job is not None:
            newest = max(job.status.savepoints, key=lambda s: s.time)
            console.print(f"  savepoint: {newest.path}")
