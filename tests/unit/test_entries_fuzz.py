"""Job entries fuzzed against random file trees: whatever `deploy.flink.entries.resolve` accepts
really is a file inside an allowed folder (after following every link), and whatever is such a file,
named without `..` or an absolute path, is accepted. `..`, absolute paths and links out are
refused with a problem naming spec.job.entry — never another exception. The spec model, which
sees only the text, refuses absolute paths and `..` before anything touches the disk.

The oracle is os.path.realpath and os.path.commonpath over the same tree: a second way to say
"inside", independent of the pathlib calls entries.py makes.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.errors import SpecError
from deploy.flink import entries
from deploy.spec import parse
from tests import figures

FUZZED: Counter[str] = Counter()
DIRS = ("jobs", "jobs/pkg", "allowed", "allowed/sub", "also", "outside", "outside/sub")
ALLOWED = ("allowed", "also")
NAMES = ("a.py", "b.py", "job.py", "x", "__init__.py", "mod.py")
SEGMENTS = (*DIRS, *(d.rsplit("/", 1)[-1] for d in DIRS), *NAMES, "..", ".", "link", "link.py")


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    """Files in some folders and links anywhere, pointing anywhere (in, out, up, nowhere)."""
    # Allowed folders and jobs/ twice as likely, so that a fair share of entries is accepted.
    folders = st.sampled_from([*DIRS, *ALLOWED, "allowed/sub", "jobs", "jobs/pkg"])
    files = draw(st.sets(st.tuples(folders, st.sampled_from(NAMES)), min_size=2, max_size=12))
    existing = sorted(f"{d}/{n}" for d, n in files)
    link_targets = st.one_of(
        st.sampled_from(existing),  # a real file, inside or outside the allowed folders
        st.sampled_from(existing),
        st.sampled_from([f"{d}/{n}" for d in DIRS for n in NAMES]),
        st.sampled_from(DIRS),
        st.sampled_from(["../../etc/passwd", "/etc/passwd", "/tmp", "missing.py", ".."]),
    )
    links = draw(
        st.lists(
            st.tuples(
                folders,
                st.sampled_from(["link", "link.py", "mod.py", "pkg2"]),
                link_targets,
                st.booleans(),  # relative (from the link's folder) or absolute
            ),
            max_size=5,
        )
    )
    return {"files": sorted(files), "links": links}


def build(root: Path, tree: dict[str, Any]) -> None:
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for folder, name in tree["files"]:
        (root / folder / name).write_text("")
    for folder, name, target, relative in tree["links"]:
        link = root / folder / name
        if link.exists() or link.is_symlink():
            continue
        if target.startswith("/"):
            dest = target
        elif relative:
            dest = os.path.relpath(root / target, root / folder)
        else:
            dest = str(root / target)
        os.symlink(dest, link)


def entry_texts() -> st.SearchStrategy[str]:
    paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5).map("/".join)
    files = st.tuples(st.sampled_from(["", "/", "./", "~/", "\\"]), paths).map("".join)
    modules = st.lists(
        st.sampled_from(["jobs", "pkg", "pkg2", "mod", "link", "a", "b", "x", "os"]),
        min_size=1,
        max_size=4,
    ).map(".".join)
    return st.one_of(files.filter(lambda p: p.endswith(".py")), files, modules)


ROOT = "@root@"  # stands for the tree's absolute path in a drawn entry


@st.composite
def entries_for(draw: st.DrawFn, tree: dict[str, Any]) -> str:
    """An entry aimed at the tree: one of its own files, links or modules, as is or bent
    (`./`, `sub/../`, a `..` escape, an absolute path), or random segments."""
    own = [f"{d}/{n}" for d, n in tree["files"]] + [f"{d}/{n}" for d, n, _, _ in tree["links"]]
    modules = [
        ".".join(f"{d}/{n}".removesuffix(".py").removesuffix("/__init__").split("/"))
        for d, n in tree["files"]
        if d.startswith("jobs") and n.endswith(".py")
    ] + [f"{d}.{n}".replace("/", ".").removesuffix(".py") for d, n, _, _ in tree["links"]]
    if not own or draw(st.integers(0, 4)) == 0:
        return draw(entry_texts())
    path = draw(st.sampled_from(own))
    bend = draw(st.sampled_from(["as is", "as is", "as is", "dot", "up and down", "escape",
                                 "absolute", "module", "module"]))  # fmt: skip
    if bend == "dot":
        return "./" + path
    if bend == "up and down":
        head, _, tail = path.partition("/")
        return f"{head}/sub/../{tail}"
    if bend == "escape":
        return "allowed/../" + path
    if bend == "absolute":
        return f"{ROOT}/{path}"
    if bend == "module" and modules:
        return draw(st.sampled_from(modules))
    return path


def _inside(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def expected(root: Path, entry: str) -> str | None:
    """What resolve should start (its real path or module name), None when it must refuse."""
    real_root = os.path.realpath(root)
    if entry.endswith(".py"):
        parts = entry.split("/")
        if entry.startswith("/") or ".." in parts:
            return None
        real = os.path.realpath(os.path.join(real_root, entry))
        folders = [os.path.realpath(os.path.join(real_root, f)) for f in ALLOWED]
        if any(_inside(real, f) for f in folders) and os.path.isfile(real):
            return real
        return None
    parts = entry.split(".")
    if parts[0] != "jobs" or len(parts) < 2 or not all(p.isidentifier() for p in parts):
        return None
    jobs = os.path.realpath(os.path.join(real_root, "jobs"))
    base = os.path.join(real_root, *parts)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return entry if _inside(os.path.realpath(candidate), jobs) else None
    return None


def check(tree: dict[str, Any], entry: str) -> None:
    FUZZED["entries"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, tree)
        entry = entry.replace(ROOT, str(root))
        want = expected(root, entry)
        allowed = [root / f for f in ALLOWED]
        try:
            got = entries.resolve(entry, allowed, root=root)
        except SpecError as e:
            FUZZED["refused"] += 1
            (problem,) = e.problems
            assert problem.startswith(f"spec.job.entry: {entry!r} "), problem
            assert want is None, f"{entry!r} refused ({problem}) but it is {want}"
            return
        FUZZED["accepted"] += 1
        FUZZED["accepted_files" if entry.endswith(".py") else "accepted_modules"] += 1
        assert want is not None, f"{entry!r} accepted as {got} but it must be refused"
        if entry.endswith(".py"):
            assert got == entries.Entry("-py", want)
            real = os.path.realpath(got.target)
            assert any(_inside(real, os.path.realpath(root / f)) for f in ALLOWED)
            assert os.path.isfile(real)
        else:
            assert got == entries.Entry("-pym", entry)


def check_model(entry: str) -> None:
    """The spec model refuses absolute and `..` file paths whatever the disk holds."""
    FUZZED["model_entries"] += 1
    doc = {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": "fuzz"},
        "spec": {"job": {"entry": entry}},
    }
    problems: list[str] = []
    try:
        job = parse(doc)
    except SpecError as e:
        problems = e.problems
    if problems:
        assert all(p.startswith("spec.job.entry: ") for p in problems), problems
        return
    if job.spec.job.entry.endswith(".py"):
        parts = entry.split("/")
        assert not entry.startswith(("/", "~", "\\")), entry
        assert "\\" not in entry
        assert ".." not in parts, entry


FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_an_entry_is_accepted_exactly_when_it_is_a_file_inside_an_allowed_folder(
    data: st.DataObject,
) -> None:
    tree = data.draw(trees())
    check(tree, data.draw(entries_for(tree)))


@settings(FUZZ, max_examples=300)
@given(entry_texts() | st.text(max_size=40))
def test_the_spec_model_refuses_absolute_paths_and_dot_dot(entry: str) -> None:
    check_model(entry)


@pytest.mark.soak
@pytest.mark.timeout(3600)
@settings(FUZZ, max_examples=5000)
@given(st.data())
def test_soak_entries_against_random_trees(data: st.DataObject) -> None:
    tree = data.draw(trees())
    check(tree, data.draw(entries_for(tree)))


def test_a_link_out_of_an_allowed_folder_is_refused_even_when_named_like_a_job(
    tmp_path: Path,
) -> None:
    """The case the fuzzing is for, spelled out: allowed/job.py → ../outside/job.py."""
    build(tmp_path, {"files": [("outside", "job.py")], "links": []})
    os.symlink("../outside/job.py", tmp_path / "allowed" / "job.py")
    with pytest.raises(SpecError, match="outside the allowed folders"):
        entries.resolve("allowed/job.py", [tmp_path / "allowed"], root=tmp_path)


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    figures.record("entry-fuzz", **FUZZED)
