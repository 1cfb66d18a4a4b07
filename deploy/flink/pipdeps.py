"""Resolving a job's Python requirements on the submitting machine, for the cluster's
interpreter: pip installs wheels built for it (CPython 3.11 on linux x86_64, like the image and
the local stack) into a folder, which is then packed with the job's code. The cluster needs no
index and no compiler: nothing is installed there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy.flink.artifacts import refuse

PYTHON_VERSION = "3.11"
ABIS = ("cp311", "abi3", "none")
# glibc-based x86_64 wheels the cluster's Debian (bookworm, glibc 2.36) can load; pip does not
# widen a PEP 600 tag to older glibcs by itself, so they are listed.
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in (36, 35, 34, 31, 28, 27, 24, 17, 12, 5)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
)
# The cluster has these already (the image and the local stack): a copy shipped with a job
# would shadow them, and apache-flink alone is several hundred MiB.
PROVIDED = ("pyflink", "apache_flink", "apache_flink_libraries")


def command(target: Path, requirements: Path | None, wheel: Path | None) -> list[str]:
    """The pip command that installs `requirements` (and the job's own wheel) into `target`."""
    cmd = [
        sys.executable, "-m", "pip", "install",
        "--target", str(target),
        # Wheels only: an sdist would be built for this machine, not for the cluster.
        "--only-binary=:all:",
        "--implementation", "cp",
        "--python-version", PYTHON_VERSION,
        *[a for abi in ABIS for a in ("--abi", abi)],
        *[a for platform in PLATFORMS for a in ("--platform", platform)],
        "--no-compile",  # .pyc files would differ run to run and change the checksum
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar", "off",
    ]  # fmt: skip
    if requirements is not None:
        cmd += ["-r", str(requirements)]
    if wheel is not None:
        cmd.append(str(wheel))
    return cmd


def install(
    target: Path,
    requirements: Path | None,
    wheel: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Install into `target`; SpecError naming the requirements file with pip's own error when
    it cannot. `progress` hears each line pip prints (it can be slow)."""
    field = "requirements" if requirements is not None else "code"
    named = requirements if requirements is not None else wheel
    if requirements is not None and not requirements.is_file():
        raise refuse("requirements", f"no such file: {requirements}")
    proc = subprocess.Popen(
        command(target, requirements, wheel),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=requirements.parent if requirements is not None else None,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.strip()
        lines.append(line)
        if progress is not None and line:
            progress(line)
    if proc.wait() != 0:
        raise refuse(field, f"pip could not install {named} for Python {PYTHON_VERSION} on "
                     f"linux x86_64: {pip_error(lines)}")  # fmt: skip
    tidy(target)
    provided = [name for name in PROVIDED if (target / name).exists()]
    if provided:
        raise refuse(
            field,
            f"{named} pulls in {', '.join(provided)}, which the cluster provides: "
            "leave apache-flink out of the requirements",
        )


def pip_error(lines: Sequence[str]) -> str:
    """pip's own words: its ERROR lines, else its last lines."""
    errors = [line.strip() for line in lines if line.strip().startswith("ERROR")]
    chosen = errors or [line.strip() for line in lines if line.strip()][-3:]
    return " ".join(chosen)[:800] or "no output"


def tidy(target: Path) -> None:
    """Drop what pip leaves for this machine only: console scripts (their #! names this
    machine's interpreter) and caches."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for cache in list(target.rglob("__pycache__")):
        shutil.rmtree(cache, ignore_errors=True)
    # Where a local wheel came from (a path on this machine) and the RECORD that hashes it: the
    # same job packed from another folder must give the same checksum. Only pip uninstall reads
    # RECORD; importlib.metadata does not need it.
    for info in target.glob("*.dist-info"):
        (info / "direct_url.json").unlink(missing_ok=True)
        (info / "RECORD").unlink(missing_ok=True)
