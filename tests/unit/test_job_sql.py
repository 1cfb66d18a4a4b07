"""The jobs' pure parts: flags, durations, SQL building and the ledger rule (no Flink needed)."""

from __future__ import annotations

import pytest

from jobs import attribution, flags, ledger, sessions, sql


@pytest.mark.parametrize(
    ("text", "ms"),
    [("500ms", 500), ("5s", 5_000), ("30m", 1_800_000), ("1h", 3_600_000), ("7d", 604_800_000)],
)
def test_durations(text: str, ms: int) -> None:
    assert flags.duration_ms(text) == ms


@pytest.mark.parametrize("text", ["5", "5 sec", "-1s", "1.5s", ""])
def test_bad_durations_name_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        flags.duration_ms(text)


def test_bad_duration_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        attribution.parse_args(["--window", "soon"])
    assert info.value.code == 2
    assert "not a duration: 'soon'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("ms", "literal"),
    [
        (5_000, "INTERVAL '0 00:00:05.000' DAY TO SECOND(3)"),
        (1_800_000, "INTERVAL '0 00:30:00.000' DAY TO SECOND(3)"),
        (90_061_001, "INTERVAL '1 01:01:01.001' DAY TO SECOND(3)"),
    ],
)
def test_interval_literals(ms: int, literal: str) -> None:
    assert sql.interval(ms) == literal


def test_literals_escape_quotes() -> None:
    assert sql.literal("it's") == "'it''s'"


def test_job_flags_follow_the_contract_defaults() -> None:
    args = sessions.parse_args([])
    assert args.bootstrap_servers == "localhost:9092"
    assert args.group_id == "sessions"
    assert args.output_topic == "sessions"
    assert args.late_topic == "late-events"
    assert args.dead_letter_topic == "dead-letter"
    assert args.max_out_of_orderness == 5_000
    assert args.gap == 1_800_000
    assert args.starting_offsets == "committed"
    assert args.functions == "python"
    assert attribution.parse_args([]).window == 60_000
    led = ledger.parse_args([])
    assert (led.state_backend, led.delivery, led.output_topic) == (
        "hashmap",
        "exactly-once",
        "stock-levels",
    )


def test_topic_names_are_quoted_in_the_sql() -> None:
    args = attribution.parse_args(["--views-topic", "v'x", "--output-topic", "out"])
    ddl, inserts = attribution.statements(args)
    assert any("'topic' = 'v''x'" in d for d in ddl)
    assert len(inserts) == 5  # 2 dead-letter, 2 late, 1 join


def test_exactly_once_sink_has_a_stable_transactional_prefix() -> None:
    table = ledger.sink_table(ledger.parse_args(["--group-id", "shop"]))
    assert "'sink.delivery-guarantee' = 'exactly-once'" in table
    assert "'sink.transactional-id-prefix' = 'eddyline-shop'" in table
    alo = ledger.sink_table(ledger.parse_args(["--delivery", "at-least-once"]))
    assert "transactional-id-prefix" not in alo


def test_ledger_rule_applies_new_movements_and_skips_seen_ones() -> None:
    assert ledger.apply(level=10, seen=False, delta=-3) == (7, True)
    assert ledger.apply(level=10, seen=True, delta=-3) == (10, False)
