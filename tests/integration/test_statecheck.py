"""deploy.kube.statecheck against a real S3 server (versitygw): the JobManager pod's check that its
state location can be written, read and deleted, naming the location and the store's answer
when it cannot."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.kube.statecheck import StateCheckError, check, split_uri
from deploy.local.objectstore import ObjectStore, ObjectStoreServer
from deploy.local.stack.ports import free_port


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    root = tmp_path_factory.mktemp("statecheck")
    with ObjectStoreServer(root / "data", log=root / "versitygw.log") as store:
        store.create_bucket("state")
        yield store


def run_check(
    store: ObjectStore, uri: str, secret: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": store.access_key,
        "AWS_SECRET_ACCESS_KEY": secret or store.secret_key,
    }
    return subprocess.run(
        [sys.executable, "-m", "deploy.kube.statecheck", uri, "--endpoint", store.endpoint,
         "--region", store.region, "--path-style", "--attempts", "1"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip


def test_a_usable_location_passes_and_leaves_nothing(s3: ObjectStore) -> None:
    done = run_check(s3, "s3://state/eddyline/release")
    assert done.returncode == 0, done.stderr
    assert "ok: s3://state/eddyline/release can be written, read and deleted" in done.stdout
    assert [
        k for k in s3.keys("state") if ".eddyline-state-check/" in k and not k.endswith("/")
    ] == []


def test_refused_credentials_name_the_location_and_the_answer(s3: ObjectStore) -> None:
    done = run_check(s3, "s3://state/eddyline/release", secret="not-the-key")
    assert done.returncode == 1
    assert "cannot write to s3://state/eddyline/release" in done.stderr
    assert "SignatureDoesNotMatch (HTTP 403)" in done.stderr


def test_a_missing_bucket_is_named(s3: ObjectStore) -> None:
    with pytest.raises(StateCheckError, match=r"s3://nope/x .*NoSuchBucket \(HTTP 404\)"):
        check("s3://nope/x", endpoint=s3.endpoint, path_style=True, client=s3.client(attempts=1))


def test_an_endpoint_nobody_answers_is_named() -> None:
    endpoint = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    store = ObjectStore(endpoint, "key", "secret")
    with pytest.raises(StateCheckError, match=rf"cannot write to s3://b \(endpoint {endpoint}\)"):
        check("s3://b", endpoint=endpoint, client=store.client(timeout=2, attempts=1))


@pytest.mark.parametrize("uri", ["file:///opt/flink/state", "s3://", "bucket/prefix"])
def test_only_s3_locations_are_checked(uri: str) -> None:
    with pytest.raises(StateCheckError, match="is not an s3://bucket"):
        split_uri(uri)
    assert split_uri("s3a://b/p/q/") == ("b", "p/q")
