"""A user's own job as shipped: one zip holding its code and its dependencies (pure logic: what
goes in, in which order, and whether a zip is safe to hand to Flink).

Flink ships it as `python.files`: the driver on the JobManager and every Python worker on the
TaskManagers unpack a `.zip` listed there and put its root on PYTHONPATH (PythonEnvUtils,
AbstractPythonEnvironmentManager), so the job's top-level imports work in main() and in its
functions alike, compiled extensions included. The zip is deterministic (sorted names, fixed
timestamps and modes), so the same code and requirements give the same sha256: a changed checksum
is a changed job (an upgrade), an unchanged one is not.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from deploy.errors import SpecError

MAX_BYTES_ENV = "EDDYLINE_ARTIFACT_MAX_BYTES"
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# A zip bomb is small and unpacks huge: the unpacked size and the number of entries are bounded too.
UNPACKED_FACTOR = 4
MAX_ENTRIES = 100_000
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: fixed, so the bytes are too
_SKIPPED_DIRS = {"__pycache__"}
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_unpacked: int = DEFAULT_MAX_BYTES * UNPACKED_FACTOR
    max_entries: int = MAX_ENTRIES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        raw = (os.environ if env is None else env).get(MAX_BYTES_ENV, "").strip()
        if not raw:
            return cls()
        try:
            size = int(raw)
        except ValueError:
            problem = f"{MAX_BYTES_ENV}: {raw!r} is not a number of bytes"
            raise SpecError("spec", [problem]) from None
        if size <= 0:
            raise SpecError("spec", [f"{MAX_BYTES_ENV}: must be positive, not {size}"])
        return cls(max_bytes=size, max_unpacked=size * UNPACKED_FACTOR)


@dataclass(frozen=True)
class Packed:
    path: Path
    sha256: str
    size: int
    native: bool  # compiled extensions inside: a zipimport (a .jar on PYTHONPATH) cannot load them


def refuse(field: str, why: str) -> SpecError:
    return SpecError("spec", [f"spec.job.{field}: {why}"])


# -- what goes in -----------------------------------------------------------------------------


def code_files(code: Path) -> dict[str, Path]:
    """The archive names of the user's code and the files they come from: a `.py` file at the
    root; a package folder (with `__init__.py`) under its own name; any other folder's contents
    at the root. Caches and hidden files stay out; a symlink must stay inside the code."""
    if not code.exists():
        raise refuse("code", f"no such file or folder: {code}")
    if code.is_file():
        if code.suffix != ".py":
            raise refuse("code", f"{code} is not a .py file, a folder or a .whl")
        return {code.name: code}
    root = code.resolve()
    prefix = PurePosixPath(code.name) if (code / "__init__.py").is_file() else PurePosixPath()
    files = dict(tree_files(root, prefix, field="code"))
    if not files:
        raise refuse("code", f"{code} holds no files")
    return files


def tree_files(
    root: Path, prefix: PurePosixPath | None = None, field: str = "code"
) -> Iterator[tuple[str, Path]]:
    """Every file under `root` as (archive name, real path), following symlinks only where they
    stay inside `root` (a link out would ship a file the user did not mean to)."""
    root = root.resolve()
    seen: set[Path] = set()

    def walk(folder: Path, name: PurePosixPath) -> Iterator[tuple[str, Path]]:
        real_folder = folder.resolve()
        if real_folder in seen:  # a link back up: already walked
            return
        seen.add(real_folder)
        for child in sorted(folder.iterdir(), key=lambda p: p.name):
            if child.name.startswith(".") or child.name in _SKIPPED_DIRS:
                continue
            if child.suffix in (".pyc", ".pyo"):
                continue
            real = child.resolve()
            if child.is_symlink() and not real.is_relative_to(root):
                raise refuse(field, f"{child} is a symlink to {real}, outside {root}")
            if real.is_dir():
                yield from walk(child, name / child.name)
            elif real.is_file():
                yield str(name / child.name), real

    yield from walk(root, prefix or PurePosixPath())


def module_files(entry: str) -> tuple[str, str]:
    """The archive names that make `entry` runnable with `python -m`: a module or a package's
    __main__."""
    path = PurePosixPath(*entry.split("."))
    return f"{path}.py", f"{path}/__main__.py"


def check_entry(entry: str, code_names: set[str]) -> None:
    """The entry must be a module of the shipped code (not of a dependency, not the cluster's)."""
    if not any(name in code_names for name in module_files(entry)):
        module, main = module_files(entry)
        raise refuse(
            "entry",
            f"{entry!r} is not a module of job.code (no {module} or {main} in it)",
        )


def top_level(names: set[str]) -> set[str]:
    return {n.split("/", 1)[0] for n in names}


# -- the zip ------------------------------------------------------------------------------------


def write_zip(files: Mapping[str, Path], dest: Path, limits: Limits) -> Packed:
    """Pack `files` (archive name → source) into `dest`, deterministically; SpecError when it is
    bigger than the limits allow or a name is unsafe."""
    total = 0
    for name, source in files.items():
        problem = name_problem(name)
        if problem:
            raise refuse("code", f"{name!r}: {problem}")
        total += source.stat().st_size
    if total > limits.max_unpacked:
        raise refuse(
            "code",
            f"the code and requirements unpack to {human_size(total)}, over the limit of "
            f"{human_size(limits.max_unpacked)} ({UNPACKED_FACTOR} x {MAX_BYTES_ENV})",
        )
    if len(files) > limits.max_entries:
        raise refuse("code", f"{len(files)} files; at most {limits.max_entries} may be shipped")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in sorted(files):
            source = files[name]
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            executable = source.stat().st_mode & stat.S_IXUSR
            info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix: the modes above are read as such
            with source.open("rb") as src, zf.open(info, "w") as out:
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
    size = dest.stat().st_size
    if size > limits.max_bytes:
        dest.unlink()
        raise too_big("the artifact", size, limits.max_bytes)
    return Packed(dest, sha256_of(dest), size, any(is_native(n) for n in files))


def too_big(what: str, size: int, limit: int) -> SpecError:
    return refuse(
        "code",
        f"{what} is {human_size(size)}, over the limit of {human_size(limit)} "
        f"(raise it with {MAX_BYTES_ENV})",
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_native(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith((".so", ".pyd", ".dylib")) or ".so." in base


def name_problem(name: str) -> str | None:
    """Why an archive member's name is unsafe to unpack (it could land outside the folder it is
    unpacked into), or None."""
    if not name:
        return "an empty name"
    if "\x00" in name:
        return "a NUL byte in the name"
    if "\\" in name:
        return "a backslash in the name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in the path"
    return None


def verify(path: Path, sha256: str | None, limits: Limits, field: str = "artifact") -> None:
    """Everything checked before an artifact is handed to Flink (which unpacks it): its size,
    its checksum and each member — no absolute path, no `..`, no symlink, no zip bomb."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise refuse(field, f"cannot read {path}: {e.strerror}") from None
    if size > limits.max_bytes:
        raise refuse(field, f"{path} is {human_size(size)}, over {human_size(limits.max_bytes)}")
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256:
            raise refuse(field, f"{path} has sha256 {got}, not the {sha256} the spec names")
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise refuse(field, f"{path} is not a zip: {e}") from None
    if len(members) > limits.max_entries:
        raise refuse(field, f"{path} has {len(members)} members, over {limits.max_entries}")
    for member in members:
        problem = name_problem(member.filename)
        if problem:
            raise refuse(field, f"{path}: member {member.filename!r} has {problem}")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise refuse(field, f"{path}: member {member.filename!r} is a symlink")
        if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(
                field, f"{path}: member {member.filename!r} is neither stored nor deflated"
            )
    # What the members really inflate to, not the sizes they claim: Flink's unzip inflates each
    # member's compressed data to its end whatever size its header gives.
    unpacked = 0
    with path.open("rb") as f:
        for member in members:
            unpacked += _inflated_size(f, member, limits.max_unpacked - unpacked, path, field)


def _inflated_size(
    f: BinaryIO, member: zipfile.ZipInfo, budget: int, path: Path, field: str
) -> int:
    """How many bytes `member`'s compressed data inflates to; SpecError past `budget`."""
    f.seek(member.header_offset)
    header = f.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise refuse(field, f"{path}: member {member.filename!r} has no local header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    f.seek(member.header_offset + 30 + name_length + extra_length)
    left = member.compress_size
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while left > 0:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            raise refuse(field, f"{path}: member {member.filename!r} is cut short")
        left -= len(chunk)
        if member.compress_type == zipfile.ZIP_STORED:
            total += len(chunk)
        else:
            try:
                total += len(inflater.decompress(chunk, budget + 1 - total))
                while inflater.unconsumed_tail and total <= budget:
                    total += len(inflater.decompress(inflater.unconsumed_tail, budget + 1 - total))
            except zlib.error as e:
                raise refuse(field, f"{path}: member {member.filename!r} is corrupt: {e}") from None
        if total > budget:
            raise refuse(
                field,
                f"{path}: member {member.filename!r} inflates past the unpacked limit "
                f"({UNPACKED_FACTOR} x {MAX_BYTES_ENV}), whatever size its header claims",
            )
    return total


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
