"""The object store Flink keeps checkpoints and savepoints in: a real versitygw (POSIX backend)
started by deploy.local.objectstore, spoken to with boto3. No mocks. The binary comes from
scripts/kube-tools.sh (`make kube-tools`); without it these tests fail saying so."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from deploy.errors import ComponentStartError, MissingToolError
from deploy.local.objectstore import ObjectStore, ObjectStoreServer, binary
from deploy.local.stack.ports import free_port

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStoreServer]:
    try:
        binary()
    except MissingToolError as e:
        pytest.fail(str(e), pytrace=False)
    base = tmp_path_factory.mktemp("objectstore")
    srv = ObjectStoreServer(base / "data", log=base / "versitygw.log")
    srv.start()
    yield srv
    srv.stop()
    assert not srv.running()


@pytest.fixture(scope="module")
def s3(server: ObjectStoreServer) -> ObjectStore:
    return server.store


@pytest.fixture
def bucket(s3: ObjectStore) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def test_a_created_bucket_is_listed_and_is_a_folder_of_the_root(
    server: ObjectStoreServer, s3: ObjectStore, bucket: str
) -> None:
    names = [b["Name"] for b in s3.client().list_buckets()["Buckets"]]
    assert bucket in names
    assert (server.root / bucket).is_dir()
    assert s3.keys(bucket) == []


def test_objects_are_put_listed_by_prefix_read_back_and_deleted(
    s3: ObjectStore, bucket: str
) -> None:
    client = s3.client()
    keys = ["ckpt/job/chk-1/_metadata", "ckpt/job/chk-1/state", "ckpt/job/shared/a", "sp/x"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.keys(bucket) == sorted(keys)
    assert s3.keys(bucket, "ckpt/job/chk-1/") == keys[:2]
    assert client.get_object(Bucket=bucket, Key=keys[2])["Body"].read() == keys[2].encode()

    client.delete_object(Bucket=bucket, Key=keys[0])
    deleted = client.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[1:3]]}
    )
    assert sorted(d["Key"] for d in deleted.get("Deleted", [])) == keys[1:3]
    assert s3.keys(bucket) == ["sp/x"]
    with pytest.raises(ClientError) as missing:
        client.head_object(Bucket=bucket, Key=keys[0])
    assert missing.value.response["Error"]["Code"] == "404"


def test_listing_pages_through_more_than_one_page(s3: ObjectStore, bucket: str) -> None:
    client = s3.client()
    for i in range(25):
        client.put_object(Bucket=bucket, Key=f"many/{i:03d}", Body=b"x")
    first = client.list_objects_v2(Bucket=bucket, Prefix="many/", MaxKeys=10)
    assert first["IsTruncated"]
    assert len(first["Contents"]) == 10
    assert s3.keys(bucket, "many/") == [f"many/{i:03d}" for i in range(25)]


def test_a_multipart_upload_of_more_than_5_mb_is_one_object(s3: ObjectStore, bucket: str) -> None:
    client = s3.client()
    parts_data = [os.urandom(5 * MB), os.urandom(5 * MB), os.urandom(MB + 17)]  # last may be small
    upload = client.create_multipart_upload(Bucket=bucket, Key="big/state")
    parts = []
    for number, data in enumerate(parts_data, start=1):
        part = client.upload_part(
            Bucket=bucket,
            Key="big/state",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=data,
        )
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    assert s3.keys(bucket) == [], "parts are not an object before the upload completes"
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big/state",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    whole = b"".join(parts_data)
    head = client.head_object(Bucket=bucket, Key="big/state")
    assert head["ContentLength"] == len(whole)
    assert head["ETag"].strip('"').endswith("-3"), "a multipart ETag counts its parts"
    got = client.get_object(Bucket=bucket, Key="big/state")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(whole).digest()


def test_boto3_managed_transfer_uploads_in_parts_and_reads_back(
    s3: ObjectStore, bucket: str, tmp_path: Path
) -> None:
    from boto3.s3.transfer import TransferConfig  # noqa: PLC0415 - only this test needs it

    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(os.urandom(12 * MB))
    config = TransferConfig(multipart_threshold=5 * MB, multipart_chunksize=5 * MB)
    client = s3.client()
    client.upload_file(str(src), bucket, "managed/blob", Config=config)
    assert client.head_object(Bucket=bucket, Key="managed/blob")["ETag"].strip('"').endswith("-3")
    client.download_file(bucket, "managed/blob", str(dst), Config=config)
    assert dst.read_bytes() == src.read_bytes()


def test_flink_settings_point_at_the_server_and_hold_no_secret(s3: ObjectStore) -> None:
    config = s3.flink_config()
    assert config["s3.endpoint"] == s3.endpoint
    assert config["s3.path.style.access"] == "true"
    assert s3.secret_key not in json.dumps(config)
    assert s3.aws_env()["AWS_SECRET_ACCESS_KEY"] == s3.secret_key


def test_a_wrong_secret_key_is_refused(s3: ObjectStore, bucket: str) -> None:
    wrong = ObjectStore(s3.endpoint, s3.access_key, s3.secret_key + "x", s3.region)
    with pytest.raises(ClientError) as refused:
        wrong.client(attempts=1).list_objects_v2(Bucket=bucket)
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    unknown = ObjectStore(s3.endpoint, "nobody", s3.secret_key, s3.region)
    with pytest.raises(ClientError) as refused:
        unknown.client(attempts=1).put_object(Bucket=bucket, Key="k", Body=b"v")
    # AWS answers 403 InvalidAccessKeyId; versitygw 1.8.0 answers 404 XAdminUserNotFound.
    assert refused.value.response["Error"]["Code"] in {"InvalidAccessKeyId", "XAdminUserNotFound"}
    assert s3.keys(bucket) == []


def test_each_server_has_its_own_credentials(server: ObjectStoreServer, tmp_path: Path) -> None:
    with ObjectStoreServer(tmp_path / "data", log=tmp_path / "vgw.log") as other:
        assert other.endpoint != server.store.endpoint
        assert other.secret_key != server.store.secret_key
        assert other.secret_key not in repr(other)
        assert other.client().list_buckets()["Buckets"] == []


def test_a_server_started_again_has_its_port_keys_and_objects(tmp_path: Path) -> None:
    """Stopped for a while (an outage) and started again: clients configured for it go on."""
    server = ObjectStoreServer(tmp_path / "data", log=tmp_path / "s3.log")
    first = server.start()
    try:
        first.create_bucket("state")
        first.client().put_object(Bucket="state", Key="chk-1/_metadata", Body=b"x")
        server.stop()
        with pytest.raises(EndpointConnectionError):
            first.client(timeout=2.0, attempts=1).list_buckets()
        again = server.start()
        assert again == first
        assert first.keys("state") == ["chk-1/_metadata"]
    finally:
        server.stop()


def test_a_taken_port_fails_the_start_naming_the_log(tmp_path: Path) -> None:
    port = free_port("127.0.0.1")
    log = tmp_path / "vgw.log"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        srv = ObjectStoreServer(tmp_path / "data", port=port, log=log, timeout=20)
        started = time.monotonic()
        with pytest.raises(ComponentStartError) as failed:
            srv.start()
    message = str(failed.value)
    assert str(log) in message
    assert "address already in use" in message
    assert f"127.0.0.1:{port}" in message
    assert time.monotonic() - started < 15, "a dead server is noticed, not waited out"
    assert not srv.running()


def test_the_cli_prints_json_and_stops_on_sigint(tmp_path: Path) -> None:
    root = tmp_path / "data"
    argv = [sys.executable, "-m", "deploy.cli.objectstore", "run", "--root", str(root)]
    with subprocess.Popen(
        [*argv, "--bucket", "ckpts", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            store = ObjectStore(
                info["endpoint"], info["access_key"], info["secret_key"], info["region"]
            )
            assert [b["Name"] for b in store.client().list_buckets()["Buckets"]] == ["ckpts"]
            assert Path(info["root"]) == root
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=20)
            assert proc.returncode == 0, stderr
        finally:
            if proc.poll() is None:
                proc.kill()
    with pytest.raises(EndpointConnectionError):
        store.client(timeout=1, attempts=1).list_buckets()
