"""Where a job's entry may come from (deploy/flink/entries.py), against a real file tree in
tmp_path: modules under jobs/, files inside the allowed folders, and nothing that resolves
elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deploy import paths
from deploy.errors import SpecError
from deploy.flink import entries


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A project: jobs/ with a module and a package, an allowed folder, and files outside."""
    (tmp_path / "jobs" / "pkg").mkdir(parents=True)
    (tmp_path / "jobs" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "mine.py").write_text("print('mine')\n")
    (tmp_path / "jobs" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "pkg" / "inner.py").write_text("")
    (tmp_path / "allowed" / "deeper").mkdir(parents=True)
    (tmp_path / "allowed" / "job.py").write_text("")
    (tmp_path / "allowed" / "deeper" / "nested.py").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "elsewhere.py").write_text("")
    (tmp_path / "outside.py").write_text("")
    (tmp_path / "udfs").mkdir()
    (tmp_path / "udfs" / "helper.py").write_text("")
    return tmp_path


def refused(entry: str, root: Path, allowed: list[Path] | None = None) -> str:
    """The one problem `resolve` reports for `entry` (it must refuse it)."""
    with pytest.raises(SpecError) as info:
        entries.resolve(entry, allowed, root=root)
    error = info.value
    assert error.source == "spec"
    (problem,) = error.problems
    assert problem.startswith(f"spec.job.entry: {entry!r} ")
    return problem


# -- modules -------------------------------------------------------------------------------------


def test_a_module_under_jobs_runs_with_pym(root: Path) -> None:
    assert entries.resolve("jobs.mine", root=root) == entries.Entry("-pym", "jobs.mine")


def test_a_package_and_a_submodule_under_jobs_run_with_pym(root: Path) -> None:
    assert entries.resolve("jobs.pkg", root=root) == entries.Entry("-pym", "jobs.pkg")
    assert entries.resolve("jobs.pkg.inner", root=root) == entries.Entry("-pym", "jobs.pkg.inner")


def test_a_missing_module_is_refused(root: Path) -> None:
    problem = refused("jobs.nope", root)
    assert "no module jobs.nope under" in problem
    assert str((root / "jobs").resolve()) in problem


@pytest.mark.parametrize("entry", ["udfs.helper", "os.path", "outside", "jobsx.mine", "jobs"])
def test_a_module_outside_jobs_is_refused(root: Path, entry: str) -> None:
    assert "a module entry must be under jobs/" in refused(entry, root)


def test_a_module_whose_file_links_outside_jobs_is_refused(root: Path) -> None:
    os.symlink(root / "outside.py", root / "jobs" / "sneaky.py")
    problem = refused("jobs.sneaky", root)
    assert f"resolves to {(root / 'outside.py').resolve()}, outside" in problem


def test_a_module_under_a_linked_folder_outside_jobs_is_refused(root: Path) -> None:
    os.symlink(root / "other", root / "jobs" / "linked")
    assert "outside" in refused("jobs.linked.elsewhere", root)


def test_the_real_projects_jobs_resolve_by_default() -> None:
    assert entries.resolve("jobs.ledger") == entries.Entry("-pym", "jobs.ledger")
    assert entries.default_allowed() == [paths.PROJECT_ROOT / "jobs"]


# -- files ---------------------------------------------------------------------------------------


def test_a_file_inside_an_allowed_folder_runs_with_py_and_its_absolute_path(root: Path) -> None:
    got = entries.resolve("allowed/job.py", [root / "allowed"], root=root)
    expected = (root / "allowed" / "job.py").resolve()
    assert got == entries.Entry("-py", str(expected))
    assert Path(got.target).is_absolute()


def test_a_file_in_a_subfolder_of_an_allowed_folder_is_allowed(root: Path) -> None:
    got = entries.resolve("allowed/deeper/nested.py", [root / "allowed"], root=root)
    assert got == entries.Entry("-py", str((root / "allowed" / "deeper" / "nested.py").resolve()))


def test_a_file_in_any_of_several_allowed_folders_is_allowed(root: Path) -> None:
    allowed = [root / "allowed", root / "other"]
    got = entries.resolve("other/elsewhere.py", allowed, root=root)
    assert got.flag == "-py"
    assert got.target == str((root / "other" / "elsewhere.py").resolve())


def test_a_relative_path_with_a_dot_segment_inside_the_folder_is_allowed(root: Path) -> None:
    got = entries.resolve("allowed/./job.py", [root / "allowed"], root=root)
    assert got.target == str((root / "allowed" / "job.py").resolve())


def test_a_link_that_stays_inside_the_allowed_folder_is_allowed(root: Path) -> None:
    os.symlink(root / "allowed" / "job.py", root / "allowed" / "alias.py")
    got = entries.resolve("allowed/alias.py", [root / "allowed"], root=root)
    assert got.target == str((root / "allowed" / "job.py").resolve())


def test_the_default_allowed_folder_is_the_projects_jobs(root: Path) -> None:
    # Without `allowed`, only the real project's jobs/ is allowed: nothing in tmp_path is.
    assert "outside the allowed folders" in refused("allowed/job.py", root)


@pytest.mark.parametrize("entry", ["../outside.py", "allowed/../outside.py", "allowed/../../x.py"])
def test_dot_dot_is_refused(root: Path, entry: str) -> None:
    assert "must be a relative path without '..'" in refused(entry, root, [root / "allowed"])


def test_an_absolute_path_is_refused_even_inside_an_allowed_folder(root: Path) -> None:
    inside = str((root / "allowed" / "job.py").resolve())
    assert "must be a relative path without '..'" in refused(inside, root, [root / "allowed"])


def test_a_file_outside_the_allowed_folders_is_refused(root: Path) -> None:
    problem = refused("outside.py", root, [root / "allowed"])
    assert f"resolves to {(root / 'outside.py').resolve()}" in problem
    assert f"outside the allowed folders {(root / 'allowed').resolve()}" in problem
    assert "outside the allowed folders" in refused("other/elsewhere.py", root, [root / "allowed"])


def test_a_symlink_inside_an_allowed_folder_pointing_outside_is_refused(root: Path) -> None:
    os.symlink(root / "outside.py", root / "allowed" / "sneaky.py")
    problem = refused("allowed/sneaky.py", root, [root / "allowed"])
    assert f"resolves to {(root / 'outside.py').resolve()}, outside the allowed folders" in problem


def test_a_linked_folder_inside_an_allowed_folder_pointing_outside_is_refused(root: Path) -> None:
    os.symlink(root / "other", root / "allowed" / "portal")
    assert "outside the allowed folders" in refused(
        "allowed/portal/elsewhere.py", root, [root / "allowed"]
    )


def test_a_missing_file_is_refused(root: Path) -> None:
    problem = refused("allowed/missing.py", root, [root / "allowed"])
    assert f"no such file: {(root / 'allowed' / 'missing.py').resolve()}" in problem


def test_a_dangling_link_is_refused(root: Path) -> None:
    os.symlink(root / "allowed" / "gone.py", root / "allowed" / "dangling.py")
    assert "no such file" in refused("allowed/dangling.py", root, [root / "allowed"])


def test_a_folder_named_like_a_file_is_refused(root: Path) -> None:
    (root / "allowed" / "folder.py").mkdir()
    assert "no such file" in refused("allowed/folder.py", root, [root / "allowed"])


def test_allowed_folders_are_compared_after_resolving_links(root: Path) -> None:
    os.symlink(root / "allowed", root / "allowed-link")
    got = entries.resolve("allowed/job.py", [root / "allowed-link"], root=root)
    assert got.target == str((root / "allowed" / "job.py").resolve())


def test_a_symlink_loop_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    (jobs / "mod.py").symlink_to(jobs / "mod.py")  # points at itself
    with pytest.raises(SpecError, match=r"cannot be resolved"):
        entries.resolve("jobs/mod.py", [jobs], root=tmp_path)
    with pytest.raises(SpecError, match=r"spec\.job\.entry"):
        entries.resolve("jobs.mod", [jobs], root=tmp_path)
