"""Where Eddyline finds its own files: the project root, the JVM jar cache and the bundled Flink."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyflink

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "templates"


def in_checkout() -> bool:
    """Running from a source checkout (editable install), not from an installed wheel."""
    return (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "Makefile").is_file()


def cache_root() -> Path:
    """Where downloaded jars, the image archive and the local cluster live: the checkout's
    `.cache/` (what `make` fills), or the user's cache folder when Eddyline is installed from a
    wheel: site-packages is no place to write to."""
    if "EDDYLINE_CACHE_DIR" in os.environ:
        return Path(os.environ["EDDYLINE_CACHE_DIR"])
    if in_checkout():
        return PROJECT_ROOT / ".cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "eddyline"


def jvm_cache() -> Path:
    """The folder `make jars` fills: `kafka/` (broker + dependencies) and `flink/` (connectors)."""
    return Path(os.environ.get("EDDYLINE_JVM_DIR", cache_root() / "jvm"))


def flink_home() -> Path:
    """The Flink distribution shipped inside the apache-flink wheel."""
    return Path(pyflink.__file__).resolve().parent


def flink_python_jar() -> Path:
    jars = sorted((flink_home() / "opt").glob("flink-python-*.jar"))
    if not jars:
        raise FileNotFoundError(f"no flink-python jar in {flink_home() / 'opt'}")
    return jars[0]


def connector_jars() -> list[Path]:
    """Jars that go on the Flink cluster's classpath beside the distribution's lib/."""
    return sorted((jvm_cache() / "flink").glob("*.jar"))


def flink_plugin_jars() -> dict[str, Path]:
    """Plugin folders `make jars` resolved beside the distribution's own, by plugin name:
    s3-fs-hadoop (checkpoints and savepoints in a bucket) when its jar is there."""
    s3 = jvm_cache() / "s3"
    return {"s3-fs-hadoop": s3} if list(s3.glob("flink-s3-fs-hadoop-*.jar")) else {}


def venv_python() -> Path:
    """The interpreter Flink starts for Python workers: the one running Eddyline."""
    return Path(sys.executable)
