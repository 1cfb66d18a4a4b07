"""bench.profile's pure parts: counting frames of py-spy's collapsed stacks and of Flink's flame
graph tree."""

from __future__ import annotations

from bench import profile


def test_collapsed_stacks_give_self_and_on_the_stack_shares() -> None:
    lines = [
        "main;run;is_json_object;loads 30",
        "main;run;is_bot;search 10",
        "main;run 5",
        "main;recurse;recurse 2",  # a frame twice on one stack counts once
        "garbage line",
    ]
    own, total, samples = profile.self_and_total(lines)
    assert samples == 47
    assert own == {"loads": 30, "search": 10, "run": 5, "recurse": 2}
    assert total["main"] == 47
    assert total["run"] == 45
    assert total["recurse"] == 2


def test_a_flink_flame_graph_tree_gives_self_samples() -> None:
    tree = {
        "name": "root",
        "value": 100,
        "children": [
            {"name": "Task.run", "value": 90, "children": [
                {"name": "PythonCalc.process", "value": 60, "children": []},
                {"name": "KafkaSource.poll", "value": 20},
            ]},
        ],
    }  # fmt: skip
    own, samples = profile.flink_frames(tree)
    assert samples == 100
    assert own == {"root": 10, "Task.run": 10, "PythonCalc.process": 60, "KafkaSource.poll": 20}


def test_the_table_shows_the_top_frames_as_shares() -> None:
    own, _, samples = profile.self_and_total(["a;b 3", "a;c 1"])
    lines = profile.table("frame", own, samples)
    assert lines[:3] == ["| frame | share |", "|---|---|", "| `b` | 75.0% |"]
