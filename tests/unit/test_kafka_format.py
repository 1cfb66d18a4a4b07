"""The KRaft storage format command: a cluster id that starts with "-" is still one argument."""

from __future__ import annotations

from pathlib import Path

from deploy.local.stack import components, prepare
from deploy.settings import StackSettings


def test_a_cluster_id_starting_with_a_dash_is_passed_with_the_flag(tmp_path: Path) -> None:
    argv = components.kafka_format(StackSettings(state_dir=tmp_path), "java", "-x3AbC")
    assert "--cluster-id=-x3AbC" in argv
    assert "-x3AbC" not in argv  # never a separate word the parser could take for an option


def test_new_cluster_ids_are_22_url_safe_characters() -> None:
    ids = {prepare.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and "=" not in i for i in ids)
