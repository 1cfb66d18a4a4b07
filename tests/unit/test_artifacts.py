"""Shipping a user's own job, the pure parts: what is packed and how (deterministic zips),
checksums, limits, path escapes, the entry, the spec's rules, and how the controller checks an
artifact and hands it to Flink (a fake transport at the REST client; the real cluster runs it in
tests/integration/test_own_job.py)."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from deploy.controller.model import Submit
from deploy.errors import SpecError
from deploy.flink import artifacts, entries, pipdeps, shipped, submission
from deploy.flink.rest import FlinkClient
from deploy.spec import ArtifactSpec, FlinkJobSpec, JobSpec, parse, problems

SHA = "a" * 64
LIMITS = artifacts.Limits()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


ENTRY = "wordcount_plus.job"


def user_package(root: Path, version: int = 1) -> Path:
    pkg = root / "wordcount_plus"
    write(pkg / "__init__.py", "")
    write(pkg / "job.py", f"VERSION = {version}\n")
    write(pkg / "util" / "__init__.py", "")
    write(pkg / "__pycache__" / "job.cpython-311.pyc", "cache")
    write(pkg / ".secret", "hidden")
    return pkg


def pack(files: dict[str, Path], dest: Path, limits: artifacts.Limits = LIMITS) -> Any:
    return artifacts.write_zip(files, dest, limits)


def problem_of(error: pytest.ExceptionInfo[SpecError]) -> str:
    assert len(error.value.problems) == 1
    return error.value.problems[0]


# -- what is packed --------------------------------------------------------------------------


def test_a_package_folder_is_packed_under_its_name_without_caches_or_hidden_files(
    tmp_path: Path,
) -> None:
    files = artifacts.code_files(user_package(tmp_path))
    assert sorted(files) == [
        "wordcount_plus/__init__.py",
        "wordcount_plus/job.py",
        "wordcount_plus/util/__init__.py",
    ]


def test_a_folder_of_modules_is_packed_at_the_root_and_a_file_as_itself(tmp_path: Path) -> None:
    write(tmp_path / "src" / "myjob.py", "")
    write(tmp_path / "src" / "helpers" / "__init__.py", "")
    assert sorted(artifacts.code_files(tmp_path / "src")) == ["helpers/__init__.py", "myjob.py"]
    assert list(artifacts.code_files(tmp_path / "src" / "myjob.py")) == ["myjob.py"]


@pytest.mark.parametrize("name", ["missing", "notes.txt", "empty"])
def test_code_that_is_missing_or_not_code_is_refused_naming_the_field(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path / "notes.txt", "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError) as e:
        artifacts.code_files(tmp_path / name)
    assert problem_of(e).startswith("spec.job.code: ")
    assert str(tmp_path / name) in problem_of(e)


def test_a_symlink_out_of_the_code_is_refused_and_one_inside_is_followed(tmp_path: Path) -> None:
    pkg = user_package(tmp_path / "project")
    (pkg / "alias.py").symlink_to(pkg / "job.py")
    assert "wordcount_plus/alias.py" in artifacts.code_files(pkg)
    secret = write(tmp_path / "elsewhere" / "id_rsa", "key")
    (pkg / "key.py").symlink_to(secret)
    with pytest.raises(SpecError) as e:
        artifacts.code_files(pkg)
    assert "is a symlink to" in problem_of(e)
    assert "outside" in problem_of(e)


def test_a_linked_folder_pointing_out_is_refused_too(tmp_path: Path) -> None:
    pkg = user_package(tmp_path / "project")
    (tmp_path / "home").mkdir()
    (pkg / "home").symlink_to(tmp_path / "home", target_is_directory=True)
    with pytest.raises(SpecError, match="outside"):
        artifacts.code_files(pkg)


def test_a_link_back_up_does_not_loop(tmp_path: Path) -> None:
    pkg = user_package(tmp_path)
    (pkg / "util" / "again").symlink_to(pkg, target_is_directory=True)
    assert "wordcount_plus/job.py" in artifacts.code_files(pkg)


# -- the entry -------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["wordcount_plus.job", "wordcount_plus", "solo"])
def test_the_entry_is_a_module_or_a_package_main_of_the_code(entry: str) -> None:
    names = {"wordcount_plus/job.py", "wordcount_plus/__main__.py", "solo.py"}
    artifacts.check_entry(entry, names)


@pytest.mark.parametrize("entry", ["wordcount_plus.other", "slugify", "jobs.ledger"])
def test_an_entry_not_in_the_code_is_refused(entry: str) -> None:
    with pytest.raises(SpecError) as e:
        artifacts.check_entry(entry, {"wordcount_plus/job.py", "wordcount_plus/__init__.py"})
    assert problem_of(e).startswith(f"spec.job.entry: {entry!r} is not a module of job.code")


# -- the zip: deterministic, checked ----------------------------------------------------------


def test_packing_is_deterministic_whatever_the_folder_and_file_times(tmp_path: Path) -> None:
    one = artifacts.code_files(user_package(tmp_path / "a"))
    two = artifacts.code_files(user_package(tmp_path / "b"))
    for path in two.values():
        os.utime(path, (1_000_000, 1_000_000))
    first = pack(one, tmp_path / "one.zip")
    second = pack(two, tmp_path / "two.zip")
    assert first.sha256 == second.sha256 == artifacts.sha256_of(tmp_path / "two.zip")
    assert first.size == (tmp_path / "one.zip").stat().st_size
    with zipfile.ZipFile(first.path) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert not first.native


def test_a_change_of_code_changes_the_checksum(tmp_path: Path) -> None:
    first = pack(artifacts.code_files(user_package(tmp_path / "a")), tmp_path / "1.zip")
    second = pack(artifacts.code_files(user_package(tmp_path / "b", 2)), tmp_path / "2.zip")
    assert first.sha256 != second.sha256


def test_executable_files_keep_their_mode_and_native_code_is_noticed(tmp_path: Path) -> None:
    tool = write(tmp_path / "pkg" / "tool.sh", "#!/bin/sh\n")
    tool.chmod(0o755)
    write(tmp_path / "pkg" / "_speedups.cpython-311-x86_64-linux-gnu.so", "ELF")
    packed = pack(artifacts.code_files(tmp_path / "pkg"), tmp_path / "a.zip")
    assert packed.native
    with zipfile.ZipFile(packed.path) as zf:
        mode = zf.getinfo("tool.sh").external_attr >> 16
    assert stat.S_IMODE(mode) == 0o755


def test_an_artifact_over_the_size_limit_is_refused_and_not_left_behind(tmp_path: Path) -> None:
    big = write(tmp_path / "big" / "data.py", os.urandom(4096).hex())
    limits = artifacts.Limits(max_bytes=1024, max_unpacked=1_000_000)
    with pytest.raises(SpecError) as e:
        pack({"data.py": big}, tmp_path / "out.zip", limits)
    assert "over the limit of 1.0 KiB" in problem_of(e)
    assert artifacts.MAX_BYTES_ENV in problem_of(e)
    assert not (tmp_path / "out.zip").exists()


def test_code_that_unpacks_too_big_is_refused_before_packing(tmp_path: Path) -> None:
    big = write(tmp_path / "big.py", "x" * 5000)
    limits = artifacts.Limits(max_bytes=1_000_000, max_unpacked=1000)
    with pytest.raises(SpecError, match="unpack to"):
        pack({"big.py": big}, tmp_path / "out.zip", limits)


def test_the_size_limit_comes_from_the_environment() -> None:
    assert artifacts.Limits.from_env({}).max_bytes == 256 * 1024 * 1024
    assert artifacts.Limits.from_env({artifacts.MAX_BYTES_ENV: "1000"}).max_bytes == 1000
    for bad in ("lots", "0"):
        with pytest.raises(SpecError, match=artifacts.MAX_BYTES_ENV):
            artifacts.Limits.from_env({artifacts.MAX_BYTES_ENV: bad})


def evil_zip(path: Path, name: str, *, symlink: bool = False, data: bytes = b"x") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, data)
    return path


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../etc/cron.d/x", "'..' in the path"),
        ("pkg/../../x.py", "'..' in the path"),
        ("/etc/passwd", "an absolute path"),
        ("C:/windows/x.py", "an absolute path"),
        ("pkg\\..\\x.py", "a backslash"),
    ],
)
def test_members_that_would_land_outside_are_refused(tmp_path: Path, name: str, why: str) -> None:
    path = evil_zip(tmp_path / "evil.zip", name)
    with pytest.raises(SpecError) as e:
        artifacts.verify(path, None, LIMITS)
    assert problem_of(e).startswith("spec.job.artifact: ")
    assert why in problem_of(e)


def test_a_symlink_member_is_refused(tmp_path: Path) -> None:
    path = evil_zip(tmp_path / "link.zip", "pkg/passwd", symlink=True, data=b"/etc/passwd")
    with pytest.raises(SpecError, match="is a symlink"):
        artifacts.verify(path, None, LIMITS)


def test_a_zip_bomb_is_refused_by_its_unpacked_size(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.py", b"0" * 200_000)
    assert path.stat().st_size < 2000
    with pytest.raises(SpecError, match="inflates past the unpacked limit"):
        artifacts.verify(path, None, artifacts.Limits(max_bytes=10_000, max_unpacked=100_000))


def test_a_zip_bomb_that_lies_about_its_size_is_refused_by_what_it_inflates_to(
    tmp_path: Path,
) -> None:
    """Flink's unzip inflates a member to the end of its data: the size a header claims is not
    trusted. Here both headers claim 10 bytes for a member that inflates to 5 MB."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.py", b"0" * 5_000_000)
    data = bytearray(path.read_bytes())
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 22 : local + 26] = (10).to_bytes(4, "little")
    data[central + 24 : central + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.infolist()[0].file_size == 10  # what a check of the claims would add up
    limits = artifacts.Limits(max_bytes=1_000_000, max_unpacked=4_000_000)
    with pytest.raises(SpecError, match="inflates past the unpacked limit"):
        artifacts.verify(path, None, limits)


def test_a_wrong_checksum_or_not_a_zip_is_refused(tmp_path: Path) -> None:
    packed = pack(artifacts.code_files(user_package(tmp_path)), tmp_path / "a.zip")
    artifacts.verify(packed.path, packed.sha256, LIMITS)
    with pytest.raises(SpecError, match="has sha256"):
        artifacts.verify(packed.path, SHA, LIMITS)
    junk = write(tmp_path / "junk.zip", "not a zip")
    with pytest.raises(SpecError, match="is not a zip"):
        artifacts.verify(junk, None, LIMITS)


def test_a_name_escaping_is_refused_when_packing_too(tmp_path: Path) -> None:
    source = write(tmp_path / "x.py", "")
    with pytest.raises(SpecError, match=r"'\.\.'"):
        pack({"../x.py": source}, tmp_path / "a.zip")


# -- pip ---------------------------------------------------------------------------------------


def test_requirements_are_resolved_as_wheels_for_the_clusters_python(tmp_path: Path) -> None:
    cmd = pipdeps.command(tmp_path / "t", tmp_path / "requirements.txt", None)
    assert cmd[cmd.index("--python-version") + 1] == "3.11"
    assert "--only-binary=:all:" in cmd
    assert "manylinux2014_x86_64" in cmd
    assert cmd[cmd.index("--target") + 1] == str(tmp_path / "t")
    assert cmd[-2:] == ["-r", str(tmp_path / "requirements.txt")]


def test_pips_own_error_is_what_the_user_reads() -> None:
    lines = ["Collecting nope==1", "ERROR: No matching distribution found for nope==1", ""]
    assert pipdeps.pip_error(lines) == "ERROR: No matching distribution found for nope==1"
    assert pipdeps.pip_error(["a", "b", "c", "d"]) == "b c d"


def test_a_missing_requirements_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as e:
        pipdeps.install(tmp_path / "t", tmp_path / "nope.txt")
    assert problem_of(e) == f"spec.job.requirements: no such file: {tmp_path / 'nope.txt'}"


# -- the spec --------------------------------------------------------------------------------


def document(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "eddyline.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": "own"},
        "spec": {"job": job},
    }


def artifact(**fields: Any) -> dict[str, Any]:
    return {"uri": f"file:///state/artifacts/{SHA}.zip", "sha256": SHA, "size": 10, **fields}


def test_with_code_the_entry_is_the_users_module_and_without_it_one_under_jobs() -> None:
    job = parse(document({"code": "src", "entry": "wordcount_plus.job"})).spec.job
    assert job.entry == "wordcount_plus.job"
    with pytest.raises(SpecError) as e:
        parse(document({"entry": "wordcount_plus.job"}))
    assert problem_of(e).startswith("spec.job.entry: ")
    assert "use a module under jobs/" in problem_of(e)
    with pytest.raises(SpecError) as e:
        parse(document({"code": "src", "entry": "../evil.py"}))
    assert problem_of(e).startswith("spec.job.entry: ")


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ({"sha256": "not-hex"}, "spec.job.artifact.sha256"),
        ({"uri": "s3://bucket/x.zip"}, "spec.job.artifact.uri"),
        ({"size": -1}, "spec.job.artifact.size"),
        ({"store": "bucket"}, "spec.job.artifact.store"),
    ],
)
def test_a_malformed_artifact_is_refused(fields: dict[str, Any], path: str) -> None:
    with pytest.raises(SpecError) as e:
        parse(document({"code": "src", "entry": "m", "artifact": artifact(**fields)}))
    assert problem_of(e).startswith(f"{path}: ")


def test_empty_code_or_requirements_are_refused() -> None:
    with pytest.raises(ValidationError) as e:
        JobSpec.model_validate({"code": "", "requirements": "", "entry": "jobs.smoke"})
    assert [p.split(":")[0] for p in problems(e.value)] == ["code", "requirements"]


def test_the_deployment_knows_the_artifact_by_its_checksum_only() -> None:
    spec = parse(
        document({"code": "src", "requirements": "r.txt", "entry": "m", "artifact": artifact()})
    ).spec
    moved = spec.with_job(
        code="elsewhere",
        artifact=ArtifactSpec.model_validate(artifact(uri="file:///other/artifacts/x.zip")),
    )
    assert spec.deployment() == moved.deployment()
    assert spec.deployment()["job"]["artifactSha256"] == SHA
    changed = spec.with_job(artifact=ArtifactSpec.model_validate(artifact(sha256="b" * 64)))
    assert spec.deployment() != changed.deployment()


def test_code_without_an_artifact_is_refused_saying_to_use_eddyline_submit() -> None:
    job = JobSpec.model_validate({"code": "src", "entry": "wordcount_plus.job"})
    with pytest.raises(SpecError) as e:
        entries.for_job(job)
    assert problem_of(e).startswith("spec.job.artifact: job.code is set but nothing was shipped")
    assert "`eddyline submit`" in problem_of(e)
    shipped_job = job.model_copy(update={"artifact": ArtifactSpec.model_validate(artifact())})
    assert entries.for_job(shipped_job) == entries.Entry("-pym", "wordcount_plus.job")


# -- the controller's side ---------------------------------------------------------------------


class FakeJobManager:
    def __init__(self, jars: list[str]) -> None:
        self.jars = jars
        self.runs: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/jars" and request.method == "GET":
            files = [{"id": j, "name": j.split("_", 1)[-1]} for j in self.jars]
            return httpx.Response(200, json={"files": files})
        if request.url.path.endswith("/run"):
            body = json.loads(request.content)
            self.runs.append(body)
            return httpx.Response(200, json={"jobid": body["jobId"]})
        return httpx.Response(404, json={"errors": ["not found"]})

    def client(self) -> FlinkClient:
        return FlinkClient("http://jm:8081", transport=httpx.MockTransport(self))


def stored_artifact(tmp_path: Path) -> ArtifactSpec:
    packed = pack(artifacts.code_files(user_package(tmp_path / "code")), tmp_path / "a.zip")
    dest = tmp_path / "state" / "artifacts" / f"{packed.sha256}.zip"
    dest.parent.mkdir(parents=True)
    packed.path.rename(dest)
    return ArtifactSpec(uri=dest.as_uri(), sha256=packed.sha256, size=packed.size)


def test_a_stored_artifact_passes_and_a_missing_one_is_waited_for(tmp_path: Path) -> None:
    client = FakeJobManager([]).client()
    art = stored_artifact(tmp_path)
    assert shipped.check(client, art, ENTRY) == shipped.Check()
    assert shipped.check(client, None, "jobs.ledger") == shipped.Check()
    shipped.path_of(art).unlink()
    check = shipped.check(client, art, ENTRY)
    assert check.problem is None
    assert check.waiting is not None
    assert "submit the spec again" in check.waiting


def test_an_entry_outside_the_shipped_code_or_a_foreign_upload_is_refused(
    tmp_path: Path,
) -> None:
    """A spec written by hand (kubectl) cannot point a shipped job's entry at a module the
    cluster has (the standard library, the image's packages), nor at an upload `submit --kube`
    did not make."""
    client = FakeJobManager([]).client()
    art = stored_artifact(tmp_path)
    for entry in ("http.server", "jobs.ledger", "wordcount_plus.missing"):
        check = shipped.check(client, art, entry)
        assert check.problem is not None, entry
        assert "is not a module of job.code" in check.problem
    jar = f"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0_eddyline-artifact-{SHA}.jar"
    for name in (f"x_eddyline-artifact-{SHA}.jar", f"{jar[:36]}_flink-python-{SHA}.jar"):
        upload = ArtifactSpec(
            uri=f"file:///opt/flink/uploads/{name}", store="jobmanager", sha256=SHA, size=1
        )
        check = shipped.check(FakeJobManager([name]).client(), upload, ENTRY)
        assert check.problem is not None, name
        assert "is not an artifact" in check.problem


def test_a_tampered_or_foreign_artifact_is_refused(tmp_path: Path) -> None:
    client = FakeJobManager([]).client()
    art = stored_artifact(tmp_path)
    with shipped.path_of(art).open("ab") as f:
        f.write(b"tampered")
    check = shipped.check(client, art, ENTRY)
    assert check.problem is not None
    assert "has sha256" in check.problem
    foreign = art.model_copy(update={"uri": "file:///etc/passwd"})
    check = shipped.check(client, foreign, ENTRY)
    assert check.problem is not None
    assert "is not an artifact" in check.problem


def test_an_uploaded_artifact_the_jobmanager_lost_is_waited_for(tmp_path: Path) -> None:
    jar = f"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0_eddyline-artifact-{SHA}.jar"
    art = ArtifactSpec(
        uri=f"file:///opt/flink/uploads/{jar}", store="jobmanager", sha256=SHA, size=1
    )
    assert shipped.check(FakeJobManager([jar]).client(), art, ENTRY) == shipped.Check()
    check = shipped.check(FakeJobManager(["other.jar"]).client(), art, ENTRY)
    assert check.waiting is not None
    assert "no longer has the job's artifact" in check.waiting
    assert "eddyline submit --kube" in check.waiting


def test_the_artifact_is_submitted_as_python_files_with_the_module_entry(tmp_path: Path) -> None:
    jm = FakeJobManager(["abc_flink-python.jar"])
    art = stored_artifact(tmp_path)
    spec = FlinkJobSpec.model_validate(
        {
            "job": {"code": "src", "entry": "wordcount_plus.job", "artifact": art.model_dump()},
            "flinkConfiguration": {"python.files": "/opt/extra.py"},
        }
    )
    client = jm.client()
    client.ensure_jar = lambda jar: "abc_flink-python.jar"  # type: ignore[method-assign]
    job_id = "0" * 32
    submission.submit(client, Submit(job_id, spec, None), "own", "kafka:9092", [])
    (run,) = jm.runs
    assert run["programArgsList"][:2] == ["-pym", "wordcount_plus.job"]
    assert run["flinkConfiguration"]["python.files"] == f"{shipped.path_of(art)},/opt/extra.py"


# -- the CLI's packing helpers -------------------------------------------------------------------


def test_a_wheels_own_modules_are_its_code_and_its_metadata_is_not(tmp_path: Path) -> None:
    from deploy.cli import shipping  # noqa: PLC0415 - the CLI's imports are slow; only here

    wheel = tmp_path / "wordcount_plus-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in ("wordcount_plus/job.py", "wordcount_plus-1.0.dist-info/METADATA"):
            zf.writestr(name, "")
    assert shipping._wheel_modules(wheel) == {"wordcount_plus/job.py"}
    with pytest.raises(SpecError, match="is not a wheel"):
        shipping._wheel_modules(write(tmp_path / "fake.whl", "nope"))


def test_an_artifact_is_stored_once_by_its_checksum(tmp_path: Path) -> None:
    from deploy.cli import shipping  # noqa: PLC0415

    packed = pack(artifacts.code_files(user_package(tmp_path / "code")), tmp_path / "a.zip")
    first = shipping.store_locally(packed, tmp_path / "state")
    second = shipping.store_locally(packed, tmp_path / "state")
    assert first == second
    assert first.uri == (tmp_path / "state" / "artifacts" / f"{packed.sha256}.zip").as_uri()
    assert [p.name for p in (tmp_path / "state" / "artifacts").iterdir()] == [
        f"{packed.sha256}.zip"
    ]
    assert shipped.check(FakeJobManager([]).client(), first, ENTRY) == shipped.Check()


# -- the controller's decisions ------------------------------------------------------------------


def test_the_status_records_the_artifact_the_running_job_was_shipped_with() -> None:
    from deploy.controller.decide import decide  # noqa: PLC0415
    from tests.unit.builders import flinkjob, obs, running, step  # noqa: PLC0415

    job = flinkjob(job={"code": "src", "entry": "wordcount_plus.job", "artifact": artifact()})
    job, plan = step(job, obs())
    submit = plan.actions[0]
    assert isinstance(submit, Submit)
    assert job.status.artifact_sha256 is None  # not until Flink shows the job
    job, _ = step(job, obs(new_job=running(submit.job_id)))
    assert job.status.artifact_sha256 == SHA
    assert job.status.job_id == submit.job_id
    # A job without shipped code runs the cluster's own: nothing recorded.
    plain = flinkjob()
    plain, plan = step(plain, obs())
    plain, _ = step(plain, obs(new_job=running(plan.actions[0].job_id)))
    assert plain.status.artifact_sha256 is None
    assert decide(job, obs(job=running(submit.job_id))).actions == []


def test_a_precheck_problem_with_the_artifact_refuses_and_a_missing_one_waits() -> None:
    from deploy.controller.decide import decide  # noqa: PLC0415
    from tests.unit.builders import flinkjob, obs  # noqa: PLC0415

    job = flinkjob(job={"code": "src", "entry": "wordcount_plus.job"})
    refused = decide(job, obs(precheck_error="spec.job.artifact: nothing was shipped")).status
    assert refused.lifecycle.value == "FAILED"
    assert refused.error == "spec.job.artifact: nothing was shipped"
    waiting = decide(job, obs(kafka_error="the JobManager no longer has the job's artifact"))
    assert waiting.actions == []
    assert waiting.status.lifecycle.value != "FAILED"
    assert waiting.status.error is not None
    assert "no longer has the job's artifact" in waiting.status.error
