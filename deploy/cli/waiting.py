"""`--wait`: following the controller through the store until a job is where a command asked it to
be. The commands only change the spec; the controller acts, and says how it went in the status."""

from __future__ import annotations

import time
from collections.abc import Callable

from deploy.cli.common import console, fail
from deploy.cli.options import Follow, JobTarget
from deploy.spec import FlinkJob, Lifecycle

Done = Callable[[FlinkJob | None], bool]
POLL_S = 0.5


def wait_for(
    target: JobTarget,
    name: str,
    done: Done,
    what: str,
    follow: Follow,
    quiet: bool,
    generation: int | None = None,
) -> FlinkJob | None:
    """Poll the store until `done`. The timeout is an error naming where to look; so is FAILED
    once the controller has seen `generation` (without a generation FAILED is not an error: a
    deleted job may fail on its way out)."""
    store = target.store
    deadline = time.monotonic() + follow.timeout
    with console.status(f"waiting for {name} to {what}…") as spinner:
        while True:
            job = store.get(name)
            if done(job):
                return job
            if job is not None and generation is not None and _failed_at(job, generation):
                raise fail(f"{name} FAILED: {job.status.error} ({target.hint(name)})")
            if time.monotonic() > deadline:
                now = job.status.lifecycle.value if job else "gone"
                raise fail(
                    f"{name} did not {what} within {follow.timeout:.0f} s (it is {now}; "
                    f"is the controller running? {target.hint(name)})"
                )
            if not quiet and job is not None:
                spinner.update(f"waiting for {name} to {what}… ({job.status.lifecycle.value})")
            time.sleep(POLL_S)


def _failed_at(job: FlinkJob, generation: int) -> bool:
    st = job.status
    return st.lifecycle == Lifecycle.FAILED and st.observed_generation >= generation


def running(generation: int) -> Done:
    def done(job: FlinkJob | None) -> bool:
        return job is not None and job.running_at(generation)

    return done


def suspended(generation: int) -> Done:
    def done(job: FlinkJob | None) -> bool:
        return (
            job is not None
            and job.status.observed_generation >= generation
            and job.status.lifecycle == Lifecycle.SUSPENDED
        )

    return done


def gone(job: FlinkJob | None) -> bool:
    return job is None
