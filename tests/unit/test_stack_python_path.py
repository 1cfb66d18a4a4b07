"""The Flink processes' PYTHONPATH: what THREAD mode's embedded interpreter needs to find."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from deploy import paths
from deploy.local.stack import components
from deploy.settings import StackSettings


def test_the_venv_and_the_project_come_first_and_the_callers_path_last() -> None:
    purelib = sysconfig.get_paths()["purelib"]
    assert components.python_path().split(os.pathsep) == [purelib, str(paths.PROJECT_ROOT)]
    mine = components.python_path("/my/lib").split(os.pathsep)
    assert mine == [purelib, str(paths.PROJECT_ROOT), "/my/lib"]


def test_every_flink_process_gets_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "/my/lib")
    settings = StackSettings(state_dir=tmp_path / "state")
    for spec in (components.jobmanager(settings), components.taskmanager(settings, 1, 16000)):
        entries = spec.env["PYTHONPATH"].split(os.pathsep)
        assert entries[0] == sysconfig.get_paths()["purelib"]
        assert entries[-1] == "/my/lib"
        # pemja is what THREAD mode failed to import without it.
        assert any((Path(e) / "pemja").is_dir() for e in entries)
