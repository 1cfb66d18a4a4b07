"""Elastic TaskManagers: how many to run for the slots the jobs want, which extra ones to stop,
and the request file between the controller and the supervisor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.controller.capacity import slots_wanted
from deploy.local.slots import LocalTaskManagers
from deploy.local.stack import elastic
from deploy.local.stack.state import ComponentState, StackState, save
from deploy.spec import FlinkJob, JobStatus, Lifecycle
from tests.unit.builders import flinkjob, with_status


def test_desired_taskmanagers_cover_the_wanted_slots_within_the_bounds() -> None:
    assert elastic.desired_taskmanagers(None, 4, 1, 4) == 1  # nobody asked: the base
    assert elastic.desired_taskmanagers(0, 4, 1, 4) == 1
    assert elastic.desired_taskmanagers(4, 4, 1, 4) == 1
    assert elastic.desired_taskmanagers(5, 4, 1, 4) == 2
    assert elastic.desired_taskmanagers(100, 4, 1, 4) == 4  # never beyond the maximum
    assert elastic.desired_taskmanagers(3, 1, 2, 4) == 3
    assert elastic.desired_taskmanagers(1, 1, 2, 4) == 2  # never below the base


def test_only_idle_extras_are_stopped_newest_first_after_the_grace() -> None:
    now = 1000.0
    old = now - elastic.IDLE_GRACE_S
    extras = [
        elastic.Extra("taskmanager-2", 2, old),
        elastic.Extra("taskmanager-3", 3, old),
        elastic.Extra("taskmanager-4", 4, None),  # busy: never stopped
    ]
    assert elastic.to_stop(extras, running=4, desired=1, now=now) == [
        "taskmanager-3",
        "taskmanager-2",
    ]
    assert elastic.to_stop(extras, running=4, desired=3, now=now) == ["taskmanager-3"]
    assert elastic.to_stop(extras, running=4, desired=4, now=now) == []
    fresh = [elastic.Extra("taskmanager-2", 2, now - 1)]
    assert elastic.to_stop(fresh, running=2, desired=1, now=now) == []


def test_the_request_file_round_trips_and_bad_content_reads_as_no_request(tmp_path: Path) -> None:
    assert elastic.read_request(tmp_path) is None
    elastic.write_request(tmp_path, 6)
    assert elastic.read_request(tmp_path) == 6
    elastic.request_file(tmp_path).write_text("{not json")
    assert elastic.read_request(tmp_path) is None
    elastic.request_file(tmp_path).write_text('{"slots": -3}')
    assert elastic.read_request(tmp_path) is None


def _job(name: str, parallelism: int, scaling: bool = False, **status: Any) -> FlinkJob:
    job = flinkjob(
        name=name,
        job={"entry": "jobs.ledger", "parallelism": parallelism, "args": []},
        autoscaler={"enabled": scaling},
    )
    return with_status(job, JobStatus(**status))


def test_slots_wanted_counts_running_jobs_at_the_parallelism_they_should_run_at() -> None:
    scaled = _job("b", 1, scaling=True, autoscaler={"parallelism": 3, "base": 1})
    suspended = _job("c", 5)
    suspended = suspended.model_copy(update={"spec": suspended.spec.with_job(state="suspended")})
    failed = _job("d", 7, lifecycle=Lifecycle.FAILED)
    assert slots_wanted([_job("a", 2), scaled, suspended, failed]) == 5


def test_local_provider_writes_changes_only_and_reports_headroom(tmp_path: Path) -> None:
    provider = LocalTaskManagers(tmp_path)
    assert provider.headroom() == 0  # no stack there
    provider.want(3)
    assert elastic.read_request(tmp_path) == 3
    elastic.request_file(tmp_path).unlink()
    provider.want(3)  # unchanged: not written again
    assert elastic.read_request(tmp_path) is None
    tm = ComponentState(name="taskmanager-1", kind="taskmanager", port=1, version="x", log=tmp_path)
    save(
        tmp_path,
        StackState(
            supervisor_pid=1,
            flink_url="http://x",
            bootstrap_servers="x:1",
            components=[tm],
            slots_per_taskmanager=2,
            max_taskmanagers=3,
        ),
    )
    assert provider.headroom() == 4
