"""The `eddyline` commands that create, show and remove FlinkJobs: submit, list, describe, delete.
The lifecycle commands (suspend, resume, scale, savepoint) are in lifecycle.py.

A command changes the desired spec in the store and returns (or, with `--wait`, follows the
controller until it has acted); the controller does the work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape

from deploy import kafka_io
from deploy.cli import diff, shipping, tables, waiting
from deploy.cli.common import EXIT_INVALID, Output, OutputOpt, console, err, fail
from deploy.cli.options import (
    JOB_DIRS_ENV,
    DescribeOutput,
    DescribeOutputOpt,
    Follow,
    JobTarget,
    ListOutput,
    ListOutputOpt,
    Name,
    allowed_dirs,
    command,
)
from deploy.errors import EddylineError, KafkaAccessError, SpecError
from deploy.flink import entries
from deploy.flink.runtime import copartition_problem
from deploy.local.stack import state
from deploy.spec import FlinkJob, JobState, load_yaml

# JOB_DIRS_ENV is here for tests/integration/managed.py, which imports it from this module.
__all__ = ["JOB_DIRS_ENV", "delete", "describe", "emit", "list_jobs", "no_such_job", "submit"]

SpecFile = Annotated[Path, typer.Argument(help="a FlinkJob YAML file, or - for stdin")]


def emit(job: FlinkJob, output: Output, message: str) -> None:
    """What a command that changed a job prints: the whole object for scripts, else a line."""
    if output == Output.json:
        typer.echo(json.dumps(job.document()))
    else:
        console.print(message)


def no_such_job(name: str) -> typer.Exit:
    return fail(f"no job named {name!r} (see `eddyline list`)")


# -- submit --------------------------------------------------------------------------------------


@command
def submit(
    spec_file: SpecFile, target: JobTarget, follow: Follow, output: OutputOpt = Output.table
) -> None:
    """Create or change a FlinkJob. The whole spec is checked first: an invalid one is refused
    with every problem listed (exit code 2) and nothing is applied."""
    source = "stdin" if str(spec_file) == "-" else str(spec_file)
    job = _checked(_read(spec_file, source), source, target)
    store = target.store
    before = store.get(job.name)
    job = shipping.shipped(job, spec_file, source, target, before, quiet=output == Output.json)
    try:
        # Before the FlinkJob is stored (its artifact already is, content-addressed): a change
        # that would lose running state is refused, every operator named, unless the spec says
        # to drop it (allowNonRestoredState).
        diff.refuse_dropped_state(target, job)
    except SpecError as e:
        raise fail(str(e).replace("spec is not", f"{source} is not"), EXIT_INVALID) from None
    try:
        applied = store.apply(job)
    except EddylineError as e:
        raise fail(e, EXIT_INVALID) from None
    generation = applied.metadata.generation
    if before is None:
        verb = "created"
    else:
        verb = "unchanged" if generation == before.metadata.generation else "configured"
    if follow.wait:
        wanted = (
            waiting.suspended if applied.spec.job.state == JobState.suspended else waiting.running
        )
        quiet = output == Output.json
        applied = (
            waiting.wait_for(target, job.name, wanted(generation), "run", follow, quiet, generation)
            or applied
        )
    emit(applied, output, f"flinkjob/{applied.name} {verb} (generation {generation})")


def _read(spec_file: Path, source: str) -> str:
    try:
        return sys.stdin.read() if source == "stdin" else spec_file.read_text()
    except OSError as e:
        raise fail(f"cannot read {source}: {e.strerror}", EXIT_INVALID) from None
    except UnicodeDecodeError as e:
        raise fail(f"cannot read {source}: not UTF-8 text ({e.reason})", EXIT_INVALID) from None


def _checked(text: str, source: str, target: JobTarget) -> FlinkJob:
    """The job the text declares, checked as far as it can be from here; exit 2 if not valid."""
    local = target.cluster is None
    try:
        job = load_yaml(text, source)
        if job.spec.job.code is None and job.spec.job.requirements is not None:
            raise SpecError("spec", ["spec.job.requirements: needs job.code (the job's own code)"])
        # On Kubernetes the controller checks it where the jobs run; the user's own code is
        # checked when it is packed.
        if local and job.spec.job.code is None:
            entries.resolve(job.spec.job.entry, allowed_dirs())
        _check_partitions(job, target, local)
    except SpecError as e:
        raise fail(str(e).replace("spec is not", f"{source} is not"), EXIT_INVALID) from None
    return job


def _check_partitions(job: FlinkJob, target: JobTarget, local: bool) -> None:
    """Refuse joined input topics with different partition counts now, if Kafka can tell."""
    topics = job.spec.kafka.input_topics
    if not job.spec.kafka.copartitioned or len(topics) < 2:
        return
    if not local and not job.spec.kafka.bootstrap_servers:
        return  # the cluster's default Kafka: the controller checks before deploying
    settings = target.settings
    current = state.load(settings.state_dir)
    if current is not None:
        state.register_stack(current)  # its broker may want TLS and SASL
    servers = job.spec.kafka.bootstrap_servers or (
        current.bootstrap_servers if current else settings.bootstrap_servers
    )
    try:
        counts = kafka_io.partition_counts(servers, topics, timeout=3.0)
    except KafkaAccessError as e:
        # Credentials, trust or an ACL: the controller (perhaps configured otherwise) checks
        # again and waits, but a user should hear now what this machine was told.
        err.print(f"[yellow]warning:[/yellow] {escape(str(e))}", highlight=False, soft_wrap=True)
        return
    except Exception:  # Kafka not reachable from here: the controller checks before deploying
        return
    if any(n is None for n in counts.values()):
        return  # not all created yet: the controller waits for them
    problem = copartition_problem(counts, topics)
    if problem:
        raise SpecError("spec", [f"spec.kafka.inputTopics: {problem}"])


# -- list / describe -----------------------------------------------------------------------------


@command
def list_jobs(target: JobTarget, output: ListOutputOpt = ListOutput.table) -> None:
    """The FlinkJobs and their state."""
    jobs = target.store.list()
    if output == ListOutput.json:
        typer.echo(json.dumps({"items": [j.document() for j in jobs]}))
    elif not jobs:
        console.print("No FlinkJobs. Submit one with `eddyline submit jobs/specs/ledger.yaml`.")
    else:
        console.print(tables.job_table(jobs, wide=output == ListOutput.wide))


@command
def describe(
    name: Name, target: JobTarget, output: DescribeOutputOpt = DescribeOutput.table
) -> None:
    """One FlinkJob in detail: its spec, status, savepoints, conditions and recent events."""
    job = target.store.get(name)
    if job is None:
        raise no_such_job(name)
    if output == DescribeOutput.json:
        typer.echo(json.dumps(job.document(), indent=2))
    elif output == DescribeOutput.yaml:
        typer.echo(yaml.safe_dump(job.document(), sort_keys=False), nl=False)
    else:
        tables.print_details(job, target.flink_url())


# -- delete --------------------------------------------------------------------------------------


@command
def delete(
    name: Name,
    *,  # --savepoint is listed first in --help, before the shared options
    savepoint: Annotated[
        bool, typer.Option("--savepoint", help="stop with a final savepoint first")
    ] = False,
    target: JobTarget,
    follow: Follow,
) -> None:
    """Stop the job (optionally with a final savepoint) and forget it."""
    target.store.request_delete(name, savepoint)
    if follow.wait:
        waiting.wait_for(target, name, waiting.gone, "be deleted", follow, quiet=False)
        console.print(f"flinkjob/{name} deleted")
    else:
        console.print(f"flinkjob/{name} deletion requested")
