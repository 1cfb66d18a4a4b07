"""The local stack's S3 state (`eddyline up --state-storage s3`): the keys it keeps, where its
server listens and how the Flink processes get the keys. Files only; no server."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.local import objectstore
from deploy.local.stack import components, s3state
from deploy.settings import StackSettings


def test_keys_are_made_once_private_and_kept_across_restarts(tmp_path: Path) -> None:
    assert s3state.load_credentials(tmp_path) is None
    first = s3state.credentials(tmp_path)
    path = s3state.credentials_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 30
    assert first.secret_key not in repr(first)
    assert s3state.credentials(tmp_path) == first, "a restart finds the same keys"
    path.chmod(0o644)
    assert s3state.credentials(tmp_path) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "loosened by hand: tightened again"
    assert s3state.credentials(tmp_path / "other") != first, "each stack has keys of its own"


def test_the_server_listens_on_loopback_and_flink_reaches_it_there(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, state_storage="s3")
    keys = s3state.Credentials("AK", "SECRET")
    assert s3state.bind_host(settings) == "127.0.0.1"
    store = s3state.store(settings, 19000, keys)
    assert store.endpoint == "http://127.0.0.1:19000"
    opened = settings.model_copy(update={"bind_host": "0.0.0.0"})
    assert s3state.bind_host(opened) == "0.0.0.0"
    assert s3state.store(opened, 19000, keys).endpoint == "http://127.0.0.1:19000"
    assert s3state.bucket_dir(tmp_path) == tmp_path.resolve() / "objectstore/data/flink-state"


def test_keys_reach_the_server_and_flink_in_their_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "versitygw").write_text("#!/bin/sh\necho 'Version  : v9.9.9'\n")
    (bin_dir / "versitygw").chmod(0o755)
    monkeypatch.setattr(objectstore, "BIN_DIR", bin_dir)
    objectstore.version.cache_clear()
    settings = StackSettings(state_dir=tmp_path / "state", state_storage="s3")
    keys = s3state.Credentials("AK", "SECRET")
    server = components.objectstore_server(settings, 19000, keys)
    assert server.argv[1:3] == ["--port", "127.0.0.1:19000"]
    assert server.argv[-2:] == ["posix", str(s3state.data_dir(settings.state_dir))]
    assert "SECRET" not in " ".join(server.argv)
    assert server.env == {"ROOT_ACCESS_KEY_ID": "AK", "ROOT_SECRET_ACCESS_KEY": "SECRET"}
    assert server.version == "v9.9.9"
    objectstore.version.cache_clear()

    aws = s3state.store(settings, 19000, keys).aws_env()
    jm = components.jobmanager(settings, aws)
    tm = components.taskmanager(settings, 1, 16000, aws=aws)
    for spec in (jm, tm):
        assert spec.env["AWS_ACCESS_KEY_ID"] == "AK"
        assert spec.env["AWS_SECRET_ACCESS_KEY"] == "SECRET"
        assert "SECRET" not in " ".join(spec.argv)
    assert "AWS_SECRET_ACCESS_KEY" not in components.jobmanager(settings).env
