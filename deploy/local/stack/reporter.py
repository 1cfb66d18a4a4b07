"""The Prometheus reporter of the local stack's Flink processes, and the plugin folder it is in.

Flink's own reporter listens on every interface (it takes a port, no address). Unless the stack
is opened on purpose (`bind_host` a wildcard), its processes use `BoundPrometheusReporterFactory`
(java/, the same reporter with a `host` option), compiled here once into the JVM cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from deploy import paths
from deploy.errors import MissingToolError
from deploy.settings import StackSettings

SOURCE = Path(__file__).parent / "java" / "BoundPrometheusReporterFactory.java"
BOUND_FACTORY = "org.apache.flink.metrics.prometheus.BoundPrometheusReporterFactory"
FLINK_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
PROMETHEUS_PLUGIN = "metrics-prometheus"
_SERVICE = "META-INF/services/org.apache.flink.metrics.reporter.MetricReporterFactory"


def factory_class(settings: StackSettings) -> str:
    """The reporter factory the stack's Flink processes use."""
    return FLINK_FACTORY if settings.listens_everywhere else BOUND_FACTORY


def _flink_jars() -> tuple[Path, list[Path]]:
    """Flink's Prometheus reporter jar and the jars to compile against."""
    home = paths.flink_home()
    reporter = sorted((home / "plugins" / PROMETHEUS_PLUGIN).glob("flink-metrics-prometheus-*.jar"))
    dist = sorted((home / "lib").glob("flink-dist-*.jar"))
    if not reporter or not dist:
        raise MissingToolError(f"Flink's Prometheus reporter or flink-dist not found in {home}")
    return reporter[-1], [reporter[-1], dist[-1]]


def bound_reporter_jar() -> Path:
    """The compiled factory, built on first use into the JVM cache (keyed by its source and the
    Flink jars it was compiled against); several stacks starting at once build it safely."""
    _reporter, classpath = _flink_jars()
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + "|".join(p.name for p in classpath).encode()).hexdigest()
    jar = paths.jvm_cache() / "eddyline" / f"bound-prometheus-reporter-{digest[:16]}.jar"
    if jar.exists():
        return jar
    javac = shutil.which("javac")
    if javac is None:
        raise MissingToolError(
            "javac not found: the local stack compiles a loopback-only Prometheus reporter for "
            "Flink; install a JDK 17 (e.g. `apt-get install openjdk-17-jdk-headless`), or open "
            "the stack on purpose with EDDYLINE_BIND_HOST=0.0.0.0"
        )
    jar.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jar.parent) as tmp:
        classes = Path(tmp) / "classes"
        done = subprocess.run(
            [javac, "--release", "11", "-nowarn", "-d", str(classes), "-cp",
             os.pathsep.join(str(p) for p in classpath), str(SOURCE)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        if done.returncode != 0:
            raise MissingToolError(f"compiling {SOURCE.name} failed: {done.stderr.strip()}")
        built = Path(tmp) / jar.name
        with zipfile.ZipFile(built, "w", zipfile.ZIP_DEFLATED) as out:
            out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
            out.writestr(_SERVICE, BOUND_FACTORY + "\n")
            for cls in sorted(classes.rglob("*.class")):
                out.write(cls, cls.relative_to(classes).as_posix())
        os.replace(built, jar)
    return jar


def link_plugins(settings: StackSettings, plugins: Path) -> None:
    """The stack's plugin folder (FLINK_PLUGINS_DIR): the distribution's plugins as symlinks,
    Flink's S3 filesystem (`make jars`, the same plugin the image has) so that state can live in
    a bucket, and the Prometheus one as a folder of its own holding the bound reporter beside
    Flink's."""
    home_plugins = paths.flink_home() / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    sources = {p.name: p for p in home_plugins.iterdir() if p.is_dir()}
    for name, folder in paths.flink_plugin_jars().items():
        sources[name] = folder
    for existing in plugins.iterdir():
        if existing.name not in sources:
            _remove(existing)
    for name in sorted(set(sources) - {PROMETHEUS_PLUGIN}):
        link = plugins / name
        if not (link.is_symlink() and link.resolve() == sources[name].resolve()):
            _remove(link)
            link.symlink_to(sources[name])
    reporter, _ = _flink_jars()
    jars = [reporter] if settings.listens_everywhere else [reporter, bound_reporter_jar()]
    folder = plugins / PROMETHEUS_PLUGIN
    if folder.is_symlink() or folder.is_file():
        folder.unlink()
    folder.mkdir(exist_ok=True)
    names = {j.name: j for j in jars}
    for existing in folder.iterdir():
        if existing.name not in names or existing.resolve() != names[existing.name].resolve():
            existing.unlink()
    for name, target in names.items():
        link = folder / name
        if not link.exists():
            link.symlink_to(target)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
