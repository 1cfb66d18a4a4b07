"""The starting points most decision tests share, as fixtures (built by tests/unit/builders)."""

from __future__ import annotations

import pytest

from deploy.spec import FlinkJob
from tests.unit.builders import change_job, deployed, flinkjob, stopping


@pytest.fixture
def deployed_job() -> FlinkJob:
    """Job j1 runs the FlinkJob's spec; nothing is in flight."""
    return deployed(flinkjob())


@pytest.fixture
def upgrading(deployed_job: FlinkJob) -> FlinkJob:
    """The user asked for parallelism 2 (generation 2); j1 is being stopped with a savepoint
    (trigger t1) since T0."""
    return stopping(change_job(deployed_job, parallelism=2))
