"""The Dockerfile read statically: what it copies is in the build context, its Python and Flink
match the project's pins, and the paths, user and commands the Helm chart relies on are the ones
it creates. `make image` builds it for real and tests/cluster runs it in pods; these checks fail
fast, without a build, when the Dockerfile and the chart drift apart."""

from __future__ import annotations

import fnmatch
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml

from deploy import paths

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "helm" / "eddyline"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEPS = ".cache/image/deps/"  # what `make image` resolved on the host


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def args_of(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def context_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY from the build context (not --from a stage)."""
    out = []
    for rest in args_of("COPY"):
        words = shlex.split(rest)
        if any(w.startswith("--from=") for w in words):
            continue
        words = [w for w in words if not w.startswith("--")]
        out.append((words[:-1], words[-1]))
    return out


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative, posix) out of the build context: the last
    matching pattern wins; a pattern also matches everything under a matching folder."""
    patterns = [
        p.strip()
        for p in (ROOT / ".dockerignore").read_text().splitlines()
        if p.strip() and not p.startswith("#")
    ]
    excluded = False
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        candidates = [pat, pat.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates) or any(
            fnmatch.fnmatchcase(part, pat.removeprefix("**/"))
            for part in parts
            if pat.startswith("**/")
        ):
            excluded = not negate
    return excluded


def env_values() -> dict[str, str]:
    values: dict[str, str] = {}
    for rest in args_of("ENV"):
        for item in shlex.split(rest):
            key, _, value = item.partition("=")
            values[key] = value
    return values


def run_text() -> str:
    return "\n".join(args_of("RUN"))


def test_everything_copied_from_the_context_exists_and_is_not_ignored() -> None:
    copies = context_copies()
    assert copies
    for sources, _ in copies:
        for source in sources:
            if source.startswith(DEPS):
                # Made by scripts/build-image.sh before every build (wheels, jars, plugins).
                assert not dockerignore_excludes(source.rstrip("/")), source
                assert source.removeprefix(DEPS).rstrip("/") in ("", "wheels", "jars", "plugins"), (
                    source
                )
                continue
            path = ROOT / source
            assert path.exists(), f"COPY {source}: no such file in the project"
            rel = source.rstrip("/")
            assert not dockerignore_excludes(rel), f"COPY {source}: excluded by .dockerignore"
            if path.is_dir():
                some = next(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
                assert not dockerignore_excludes(some.relative_to(ROOT).as_posix()), some


def test_dockerignore_keeps_the_rest_out() -> None:
    for path in (".venv/bin/python", ".git/HEAD", "tests/unit/test_crd.py", ".cache/jvm/x.jar"):
        assert dockerignore_excludes(path), path
    assert dockerignore_excludes("deploy/__pycache__/spec.cpython-311.pyc")


def test_the_installed_project_is_complete() -> None:
    """`pip install` of /opt/eddyline needs pyproject's readme and every package it lists."""
    copied = {
        PurePosixPath(src.rstrip("/")).as_posix() for srcs, _ in context_copies() for src in srcs
    }
    assert "pyproject.toml" in copied
    assert PYPROJECT["project"]["readme"] in copied
    top_level = {
        p.rstrip("*").split(".")[0]
        for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert top_level <= copied, f"packages not copied: {top_level - copied}"
    # The dependencies from what the host resolved (offline when it did), then the project.
    assert "/opt/venv/bin/pip install $offline -r /deps/requirements.txt" in run_text()
    assert 'offline="--no-index --find-links /deps/wheels"' in run_text()
    assert "--no-deps --no-build-isolation -e /opt/eddyline" in run_text()
    for sources, dest in context_copies():
        for src in sources:
            if (ROOT / src).is_dir() and not src.startswith(DEPS):  # a package keeps its name
                assert dest == f"/opt/eddyline/{src.rstrip('/')}/", (src, dest)


def test_python_matches_the_project() -> None:
    wanted = re.search(r">=(\d+\.\d+)", PYPROJECT["project"]["requires-python"])
    assert wanted
    version = wanted.group(1)
    [python_image] = [a for a in args_of("ARG") if a.startswith("PYTHON_IMAGE=")]
    assert python_image == f"PYTHON_IMAGE=python:{version}-slim-bookworm"
    # The site-packages path the Dockerfile and the chart name must be that Python's.
    site = f"/opt/venv/lib/python{version}/site-packages/pyflink"
    assert env_values()["FLINK_HOME"] == site
    assert site in run_text()


def test_flink_is_the_pinned_wheel_with_what_the_image_uses() -> None:
    """The image's Flink is the apache-flink wheel pyproject pins; the files the Dockerfile and
    the chart use from it exist in that wheel (the one installed here)."""
    [pin] = [d for d in PYPROJECT["project"]["dependencies"] if d.startswith("apache-flink==")]
    from deploy import versions  # noqa: PLC0415 - after the pin is read, for the message

    assert versions.flink() == pin.split("==")[1], "the venv's apache-flink is not the pin"
    home = paths.flink_home()
    for rel in (
        "bin/jobmanager.sh",
        "bin/taskmanager.sh",
        "bin/config.sh",
        "conf/config.yaml",
        "conf/log4j-console.properties",
        "opt",
    ):
        assert (home / rel).exists(), rel
    for copied in ("conf/config.yaml", "conf/log4j-console.properties"):
        assert f'"$FLINK_DIST"/{copied}' in run_text(), copied
    assert list((home / "plugins" / "metrics-prometheus").glob("*.jar"))
    assert "metrics-prometheus" in run_text()


def test_kafka_connector_comes_from_the_project_pom() -> None:
    [maven] = [a for a in args_of("RUN") if "mvn " in a]
    maven = maven.split(" && if ls /deps/plugins")[0]
    # The jars resolved on the host come first; Maven only runs without them.
    assert maven.index("cp /deps/jars/*.jar /jars/") < maven.index("mvn ")
    profile = re.search(r"-P (\w+)", maven)
    assert profile
    pom = (ROOT / "deploy" / "jvm" / "pom.xml").read_text()
    assert f"<id>{profile.group(1)}</id>" in pom
    assert "flink-sql-connector-kafka" in pom
    assert "COPY deploy/jvm/pom.xml pom.xml" in "\n".join(f"COPY {a}" for a in args_of("COPY"))
    assert any(
        a.startswith("--from=jars /jars/ /opt/venv/lib/") and a.endswith("/pyflink/lib/")
        for a in args_of("COPY")
    )


def test_s3_plugin_comes_from_the_project_pom_into_its_own_plugin_folder() -> None:
    """Flink loads filesystems from plugins/<name>/ with a class loader of their own; a jar in
    lib/ would clash with Flink's classes. Host-resolved first, Maven only without it."""
    [run] = [a for a in args_of("RUN") if "mvn " in a]
    plugin = run.split(" && if ls /deps/plugins")[1]
    assert plugin.index(
        "cp /deps/plugins/s3-fs-hadoop/*.jar /plugins/s3-fs-hadoop/"
    ) < plugin.index("mvn ")
    assert "-P s3 " in plugin
    assert "-DoutputDirectory=/plugins/s3-fs-hadoop" in plugin
    pom = (ROOT / "deploy" / "jvm" / "pom.xml").read_text()
    assert "<id>s3</id>" in pom
    assert "<artifactId>flink-s3-fs-hadoop</artifactId>" in pom
    assert (
        "--from=jars /plugins/ /opt/venv/lib/python3.11/site-packages/pyflink/plugins/"
        in args_of("COPY")
    )
    assert '"$FLINK_DIST"/plugins/s3-fs-hadoop/flink-s3-fs-hadoop-*.jar' in run_text()
    build = (ROOT / "scripts" / "build-image.sh").read_text()
    assert 'cp .cache/jvm/s3/*.jar "$deps/plugins/s3-fs-hadoop/"' in build


def rendered_chart_text() -> str:
    return "\n".join(p.read_text() for p in (CHART / "templates").rglob("*") if p.is_file())


def test_user_matches_the_chart() -> None:
    [user] = args_of("USER")
    assert user == "9999:9999"
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert "runAsUser: 9999" in helpers
    assert "runAsGroup: 9999" in helpers
    assert "useradd --system --uid 9999" in run_text()


@pytest.mark.parametrize(
    "path",
    ["/opt/flink/conf", "/opt/flink/log", "/opt/flink/tmp", "/opt/flink/state"],
)
def test_folders_the_chart_mounts_exist_and_belong_to_flink(path: str) -> None:
    steps = [step.strip() for step in run_text().split("&&")]
    assert any(step.startswith("mkdir -p") and path in step.split() for step in steps)
    assert any(step.startswith("chown -R 9999:9999") and path in step.split() for step in steps)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    mounted = rendered_chart_text() + values["flink"]["state"]["mountPath"]
    assert path in mounted


def test_commands_the_chart_runs_exist_in_the_image() -> None:
    chart = rendered_chart_text()
    env = env_values()
    # Flink's start scripts through the /opt/flink/dist link to the wheel's distribution.
    assert 'ln -s "$FLINK_DIST" /opt/flink/dist' in run_text()
    for script in ("jobmanager.sh", "taskmanager.sh"):
        assert f"/opt/flink/dist/bin/{script}" in chart
        assert (paths.flink_home() / "bin" / script).exists()
    # `eddyline` (the controller) and `python` (the helm test, Flink's Python workers) on PATH.
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert "python3 -m venv /opt/venv" in run_text()
    assert "/opt/venv/bin/python" in chart
    assert PYPROJECT["project"]["scripts"]["eddyline"] == "deploy.cli.app:app"
    assert "command: [eddyline]" in chart
    # Flink's own variables point where the chart mounts its configuration and logs.
    assert env["FLINK_CONF_DIR"] == "/opt/flink/conf"
    assert env["FLINK_LOG_DIR"] == "/opt/flink/log"
    assert env["JAVA_HOME"] == "/opt/java"
    assert 'ln -s "/usr/lib/jvm/java-17-openjdk-' in run_text()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # the root filesystem is read-only


def test_ports_exposed_are_the_charts_defaults() -> None:
    [expose] = args_of("EXPOSE")
    exposed = {int(p) for p in expose.split()}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    wanted = {
        *values["jobmanager"]["ports"].values(),
        *values["taskmanager"]["ports"].values(),
        values["controller"]["metricsPort"],
    }
    assert exposed == wanted
