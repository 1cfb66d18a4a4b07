"""Where a job's entry may come from: modules under jobs/ and files inside the allowed folders.

The spec model already refuses absolute paths and `..`; this module checks what a path really
resolves to on this machine (symlinks included), so a link inside an allowed folder that points
outside it is refused too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy import paths
from deploy.errors import SpecError
from deploy.spec import JobSpec


@dataclass(frozen=True)
class Entry:
    """How PythonDriver starts the job: `-pym module` or `-py file`."""

    flag: str
    target: str


def for_job(job: JobSpec, allowed: Sequence[Path] | None = None) -> Entry:
    """How PythonDriver starts `job`: its own module when it ships its code (packing checked
    the module is in it), else an entry confined to jobs/ and the allowed folders."""
    if job.code is not None:
        if job.artifact is None:
            raise SpecError(
                "spec",
                [
                    "spec.job.artifact: job.code is set but nothing was shipped: submit the "
                    "spec with `eddyline submit` (it packs the code and its requirements and "
                    "ships them; a spec applied directly, e.g. with kubectl, cannot)"
                ],
            )
        return Entry("-pym", job.entry)
    return resolve(job.entry, allowed)


def default_allowed() -> list[Path]:
    return [paths.PROJECT_ROOT / "jobs"]


def resolve(entry: str, allowed: Sequence[Path] | None = None, root: Path | None = None) -> Entry:
    """The entry as PythonDriver arguments; SpecError naming `spec.job.entry` if not allowed."""
    try:
        return _resolve(entry, allowed, root)
    except (RuntimeError, OSError) as e:  # a symlink loop, an unreadable folder
        raise _refuse(entry, f"cannot be resolved: {e}") from None


def _resolve(entry: str, allowed: Sequence[Path] | None, root: Path | None) -> Entry:
    root = (root or paths.PROJECT_ROOT).resolve()
    folders = [Path(f).resolve() for f in (allowed or default_allowed())]
    if entry.endswith(".py"):
        candidate = Path(entry)
        if candidate.is_absolute() or ".." in candidate.parts:
            raise _refuse(entry, "must be a relative path without '..'")
        real = (root / candidate).resolve()
        if not any(real.is_relative_to(f) for f in folders):
            raise _refuse(
                entry, f"resolves to {real}, outside the allowed folders {_names(folders)}"
            )
        if not real.is_file():
            raise _refuse(entry, f"no such file: {real}")
        return Entry("-py", str(real))
    parts = entry.split(".")
    if parts[0] != "jobs" or len(parts) < 2:
        raise _refuse(entry, "a module entry must be under jobs/ (e.g. jobs.ledger)")
    module_file = (root / Path(*parts)).with_suffix(".py").resolve()
    package_init = (root / Path(*parts) / "__init__.py").resolve()
    jobs_dir = (root / "jobs").resolve()
    found = [f for f in (module_file, package_init) if f.is_file()]
    if not found:
        raise _refuse(entry, f"no module {entry} under {jobs_dir}")
    if not found[0].is_relative_to(jobs_dir):
        raise _refuse(entry, f"resolves to {found[0]}, outside {jobs_dir}")
    return Entry("-pym", entry)


def _names(folders: Sequence[Path]) -> str:
    return ", ".join(str(f) for f in folders)


def _refuse(entry: str, why: str) -> SpecError:
    return SpecError("spec", [f"spec.job.entry: {entry!r} {why}"])
