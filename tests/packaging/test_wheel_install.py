"""The wheel a user installs: built from the checkout, installed (not editable) in a fresh venv
outside it, and used from a folder that is not the checkout. Every module imports, the package
data is there, and the CLI answers --help.

The dependencies are not downloaded again: the fresh venv sees the project venv's site-packages
through a .pth line. A path added that way is not a site folder, so the editable install's own
hooks there are never run; the test checks that `deploy` really comes from the wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy import paths

ROOT = paths.PROJECT_ROOT
PACKAGES = ("deploy", "jobs", "udfs")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    bin: Path
    site: Path
    cwd: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), capture_output=True, text=True, cwd=self.cwd, timeout=300, check=False,
            env={"PATH": f"{self.bin}:/usr/bin:/bin", "HOME": str(self.cwd), "COLUMNS": "120"},
        )  # fmt: skip


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result.stdout


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("wheel")
    dist, venv, cwd = tmp / "dist", tmp / "venv", tmp / "elsewhere"
    cwd.mkdir()
    # Built from a clean copy: setuptools reuses a checkout's build/ folder, whose stale files
    # would hide a package the configuration leaves out.
    src = tmp / "src"
    for name in ("pyproject.toml", "README.md"):
        src.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = (sys.executable, "-m", "pip")
    _ok(_run(*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)),
        "pip wheel")  # fmt: skip
    (wheel,) = dist.glob("eddyline-*.whl")
    _ok(_run(sys.executable, "-m", "venv", str(venv)), "python -m venv")
    python = venv / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_ok(_run(str(python), "-c", purelib), "purelib").strip())
    # The project venv's dependencies, seen (not run) by the fresh venv.
    (site / "zz-project-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    inst = Installed(wheel, python, venv / "bin", site, cwd)
    install = (str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel))
    _ok(inst.run(*install), "pip install of the wheel")
    return inst


def _source_files() -> tuple[set[str], set[str]]:
    """Modules and data files of the checkout's packages, as paths relative to the root."""
    modules, data = set(), set()
    for package in PACKAGES:
        for f in (ROOT / package).rglob("*"):
            if not f.is_file() or "__pycache__" in f.parts:
                continue
            (modules if f.suffix == ".py" else data).add(f.relative_to(ROOT).as_posix())
    return modules, data


def test_the_wheel_holds_every_module_and_data_file_of_the_checkout(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    modules, data = _source_files()
    assert modules - names == set(), "modules left out of the wheel"
    assert data - names == set(), "package data left out of the wheel (pyproject package-data)"
    assert {n.split("/")[0] for n in names} <= {*PACKAGES, "eddyline-0.1.0.dist-info"}, (
        "the wheel ships folders that are not Eddyline's packages"
    )


def test_every_module_imports_from_the_installed_wheel(installed: Installed) -> None:
    modules, _ = _source_files()
    dotted = sorted(
        m.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for m in modules
    )
    script = (
        "import importlib, sys\n"
        "import deploy\n"
        f"assert deploy.__file__.startswith({str(installed.site)!r}), deploy.__file__\n"
        f"for name in {dotted!r}:\n"
        "    importlib.import_module(name)\n"
        "from deploy import paths\n"
        "print(paths.in_checkout(), paths.cache_root())\n"
        "print(sorted(p.name for p in (paths.PROJECT_ROOT / 'jobs' / 'specs').glob('*.yaml')))\n"
    )
    out = _ok(installed.run(str(installed.python), "-c", script), "importing every module")
    in_checkout, cache = out.splitlines()[0].split(" ", 1)
    assert in_checkout == "False"
    assert cache == str(installed.cwd / ".cache" / "eddyline"), "caches go to the user's folder"
    assert "ledger.yaml" in out.splitlines()[1]


@pytest.mark.parametrize(
    "args",
    [["--help"], ["controller", "--help"], ["submit", "--help"], ["up", "--help"]],
    ids=" ".join,
)
def test_the_installed_cli_answers(installed: Installed, args: list[str]) -> None:
    out = _ok(installed.run(str(installed.bin / "eddyline"), *args), f"eddyline {' '.join(args)}")
    assert out.strip()
