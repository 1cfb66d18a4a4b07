"""The smoke job's transform as a plain function."""

from __future__ import annotations

import json

from jobs.smoke import parse_args, transform


def test_transform_adds_upper_and_length() -> None:
    out = json.loads(transform(json.dumps({"id": 7, "word": "flink", "extra": True})))
    assert out == {"id": 7, "word": "flink", "upper": "FLINK", "length": 5}


def test_bad_messages_become_error_records_not_crashes() -> None:
    for raw in ("not json", "{}", json.dumps({"id": "7", "word": "x"}), "[1]"):
        out = json.loads(transform(raw))
        assert out["raw"] == raw
        assert out["error"]


def test_flags_follow_the_job_contract() -> None:
    args = parse_args(["--bootstrap-servers", "k:1", "--starting-offsets", "latest", "--bounded"])
    assert args.bootstrap_servers == "k:1"
    assert args.starting_offsets == "latest"
    assert args.bounded
