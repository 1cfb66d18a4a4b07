"""Flink SQL shared by the jobs: Kafka tables, strict JSON validation and the three routes.

Every input message is read as raw bytes with its topic, partition and offset, then parsed and
checked once by a Python function (udfs.events; the `builtin` baseline checks field by field with
SQL's JSON functions instead, one JSON parse per field and check):
    error IS NOT NULL                      → dead-letter (with where it came from and why)
    valid, ts at or behind the watermark   → late-events (and nowhere else)
    valid and on time                      → the job's logic
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

from deploy import kafka_security
from udfs import events

# CAST decodes UTF-8 like DECODE does, but DECODE cannot be compiled into a watermark generator
# (Flink's codegen leaves its checked exception uncaught), and `ts` feeds the watermark.
MSG = "CAST(`payload` AS STRING)"


# A string field longer than this is malformed: no real id, page or user agent comes near it,
# and huge values would otherwise travel through state and into every output.
MAX_STRING_CHARS = events.MAX_STRING_CHARS


@dataclass(frozen=True)
class Field:
    name: str
    kind: Literal["string", "int"]


CLICKSTREAM_FIELDS = tuple(Field(name, kind) for name, kind in events.CLICKSTREAM)
ORDER_FIELDS = tuple(Field(name, kind) for name, kind in events.ORDERS)
# The Python function that parses and checks a message of each kind once (udfs.events).
CHECK_FUNCTIONS = {CLICKSTREAM_FIELDS: "check_clickstream", ORDER_FIELDS: "check_orders"}


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _wrapped(field: str, msg: str = MSG) -> str:
    # JSON_QUERY with a wrapper keeps the JSON type visible: ["abc"] for a string, [12] for a
    # number.
    return f"JSON_QUERY({msg}, {literal('$.' + field)} WITH WRAPPER)"


def int_value(field: str, msg: str = MSG) -> str:
    """The field as BIGINT when it is a JSON integer, else NULL (strings and floats are wrong).

    One JSON parse: REGEXP_EXTRACT gives NULL when the text does not match."""
    w = _wrapped(field, msg)
    return f"CAST(REGEXP_EXTRACT({w}, '^\\[(-?[0-9]{{1,18}})\\]$', 1) AS BIGINT)"


def int_written_as_float(field: str, msg: str = MSG) -> str:
    """Is the field a number written with a fraction or an exponent (`1.5e1`, `2.68e+16`)?

    JSON_QUERY re-writes numbers through BigDecimal, so those come back as `15` and
    `26821732942320384` and would pass `int_value` for integers; the raw text still tells. (A
    nested object holding the same key with such a number is refused too.)"""
    pattern = '"' + field + '"\\s*:\\s*-?[0-9]+[.eE]'
    return f"REGEXP({msg}, {literal(pattern)})"


def string_ok(field: str, msg: str = MSG) -> str:
    return f"COALESCE({_wrapped(field, msg)} LIKE '[\"%', FALSE)"


def string_value(field: str, msg: str = MSG) -> str:
    return f"JSON_VALUE({msg}, {literal('$.' + field)})"


def interval(ms: int) -> str:
    """A day-to-millisecond interval literal (SECOND alone allows only two leading digits)."""
    days, rest = divmod(ms, 86_400_000)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1_000)
    return (
        f"INTERVAL '{days} {hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}' DAY TO SECOND(3)"
    )


def kafka_options(args: argparse.Namespace, topic: str, **extra: str) -> str:
    """A Kafka table's WITH options, secured as the driver's environment says (see
    deploy.kafka_security): for the exactly-once sink too, whose transactional producer reads
    the same `properties.*`."""
    security = kafka_security.for_servers(args.bootstrap_servers).java()
    opts = {
        "connector": "kafka",
        "topic": topic,
        "properties.bootstrap.servers": args.bootstrap_servers,
        **{f"properties.{k}": v for k, v in security.items()},
        **extra,
    }
    return ",\n  ".join(f"{literal(k)} = {literal(v)}" for k, v in opts.items())


def _startup(args: argparse.Namespace) -> dict[str, str]:
    mode = {"committed": "group-offsets", "earliest": "earliest-offset", "latest": "latest-offset"}
    return {
        "properties.group.id": args.group_id,
        "scan.startup.mode": mode[args.starting_offsets],
        # `committed` with no committed offset yet starts from the beginning.
        "properties.auto.offset.reset": "earliest",
        "properties.commit.offsets.on.checkpoint": "true",
    }


def source_table(
    name: str, topic: str, args: argparse.Namespace, bounded: bool = False, watermark: bool = True
) -> str:
    """A raw-bytes Kafka table with provenance columns, event time `ts`/`rt` and a watermark."""
    extra = _startup(args)
    if bounded:
        extra["scan.bounded.mode"] = "latest-offset"
    delay = interval(args.max_out_of_orderness)
    wm = f",\n  WATERMARK FOR `rt` AS `rt` - {delay}" if watermark else ""
    return f"""CREATE TEMPORARY TABLE `{name}` (
  `payload` BYTES,
  `src_topic` STRING METADATA FROM 'topic' VIRTUAL,
  `src_partition` INT METADATA FROM 'partition' VIRTUAL,
  `src_offset` BIGINT METADATA FROM 'offset' VIRTUAL,
  `ts` AS {int_value("ts")},
  `rt` AS TO_TIMESTAMP_LTZ({int_value("ts")}, 3){wm}
) WITH (
  {kafka_options(args, topic, format="raw", **extra)}
)"""


FUNCTIONS = ("python", "pandas", "builtin")
_BOT_WORDS = ("bot", "crawler", "spider", "headless")


def json_object_check(msg: str, functions: str = "python") -> str:
    """Is `msg` exactly one JSON object? Strictly only through the Python UDF: Flink's own
    IS JSON ignores anything after the first value (see udfs/jsontext); `builtin` is the
    benchmark baseline."""
    return f"({msg} IS JSON OBJECT)" if functions == "builtin" else f"is_json_object({msg})"


def bot_check(user_agent: str, functions: str = "python", counted: str = "TRUE") -> str:
    """Is it a bot? The Python UDFs count the bots of rows where `counted` is TRUE (see
    udfs.flink._BotRule); the builtin baseline counts nothing."""
    if functions == "builtin":
        return "(" + " OR ".join(f"LOWER({user_agent}) LIKE '%{w}%'" for w in _BOT_WORDS) + ")"
    udf = "is_bot_vec" if functions == "pandas" else "is_bot"
    return f"{udf}({user_agent}, {counted})"


def page_expression(page: str, functions: str = "python") -> str:
    if functions == "builtin":
        # The same rule with regular expressions (well-formed URLs; no userinfo handling).
        scheme = f"LOWER(REGEXP_EXTRACT({page}, '^([^:/?#]*):', 1))"
        host = f"LOWER(REGEXP_EXTRACT({page}, '^[^:/?#]*://([^/?#]*)', 1))"
        path = (
            f"REGEXP_REPLACE(REGEXP_EXTRACT({page}, '^[^:/?#]*://[^/?#]*([^?#]*)', 1), '/+$', '')"
        )
        return f"CONCAT({scheme}, '://', {host}, CASE WHEN {path} = '' THEN '/' ELSE {path} END)"
    if functions == "pandas":
        return f"normalize_page_vec({page})"
    return f"normalize_page({page})"


def error_expression(
    fields: tuple[Field, ...], msg: str = "`msg`", functions: str = "python"
) -> str:
    """Why a message is malformed (NULL when it is a valid event): the first problem found."""
    cases = [
        "WHEN NOT `utf8` THEN 'payload is not valid UTF-8'",
        f"WHEN NOT {json_object_check(msg, functions)} THEN 'payload is not a JSON object'",
    ]
    for f in fields:
        if f.kind == "int":
            check = f"{int_value(f.name, msg)} IS NULL"
            what = "an integer"
        else:
            check = f"NOT {string_ok(f.name, msg)}"
            what = "a string"
        cases.append(f"WHEN {check} THEN {literal(f'field {f.name}: missing or not {what}')}")
        if f.kind == "int":
            float_written = int_written_as_float(f.name, msg)
            cases.append(f"WHEN {float_written} THEN {literal(f'field {f.name}: not an integer')}")
        if f.kind == "string":
            too_long = f"CHAR_LENGTH({string_value(f.name, msg)}) > {MAX_STRING_CHARS}"
            reason = f"field {f.name}: longer than {MAX_STRING_CHARS} characters"
            cases.append(f"WHEN {too_long} THEN {literal(reason)}")
    return "CASE " + " ".join(cases) + " END"


def checked_view(
    name: str,
    source: str,
    fields: tuple[Field, ...],
    watermark: bool = True,
    functions: str = "python",
    rules: str = "none",
) -> str:
    """The source with each field extracted, `error` and `late` flags; keeps the time attribute.

    Without a watermark (the ledger applies every movement, however late) `late` is FALSE.
    With Python functions, one Python call per message parses and checks it
    (udfs.events.check); `rules` ("bots", "bots+pages", clickstream only) has that same call
    apply the bot rule (column `bot`, counting bots on the valid route) and the page rule
    (`page_norm`). `builtin` checks field by field in SQL (the benchmark's pure-SQL baseline).
    """
    late = "COALESCE(`rt` <= CURRENT_WATERMARK(`rt`), FALSE)" if watermark else "FALSE"
    if functions != "builtin":
        return _parsed_once_view(name, source, fields, watermark, late, rules)
    columns = []
    for f in fields:
        if f.name == "ts":
            continue
        value = int_value(f.name, "`msg`") if f.kind == "int" else string_value(f.name, "`msg`")
        columns.append(f"{value} AS `{f.name}`")
    cols = ",\n  ".join(columns)
    return f"""CREATE TEMPORARY VIEW `{name}` AS
SELECT
  `src_topic`, `src_partition`, `src_offset`, `payload`, `msg`, `utf8`, `ts`, `rt`,
  {cols},
  {error_expression(fields, functions=functions)} AS `error`,
  {late} AS `late`
FROM (
  SELECT *, {MSG} AS `msg`, ENCODE({MSG}, 'UTF-8') = `payload` AS `utf8` FROM `{source}`
)"""


def _parsed_once_view(
    name: str, source: str, fields: tuple[Field, ...], watermark: bool, late: str, rules: str
) -> str:
    # The source's computed `ts` is not read (it would be one more JSON parse): the event's ts
    # comes from the Python check; `rt` (the time attribute) is read only with a watermark.
    function = CHECK_FUNCTIONS[fields]
    clicks = function == "check_clickstream"
    args = "`msg`, `utf8`" + (f", `late`, {literal(rules)}" if clicks else "")
    extra = ""
    if clicks and rules != "none":
        extra += ", `e`.`bot` AS `bot`"
        if rules == "bots+pages":
            extra += ", `e`.`page_norm` AS `page_norm`"
    cols = ", ".join(f"`e`.`{f.name}` AS `{f.name}`" for f in fields if f.name != "ts")
    rt = ", `rt`" if watermark else ""
    return f"""CREATE TEMPORARY VIEW `{name}` AS
SELECT
  `src_topic`, `src_partition`, `src_offset`, `payload`, `msg`, `utf8`, `e`.`ts` AS `ts`{rt},
  {cols},
  `e`.`error` AS `error`, `late`{extra}
FROM (
  SELECT *, {function}({args}) AS `e` FROM (
    SELECT *, {late} AS `late` FROM (
      SELECT `src_topic`, `src_partition`, `src_offset`, `payload`{rt},
        {MSG} AS `msg`, ENCODE({MSG}, 'UTF-8') = `payload` AS `utf8`
      FROM `{source}`
    )
  )
)"""


def dead_letter_sink(args: argparse.Namespace, name: str = "dead_letter") -> str:
    return f"""CREATE TEMPORARY TABLE `{name}` (`value` STRING) WITH (
  {
        kafka_options(
            args,
            args.dead_letter_topic,
            format="raw",
            **{"sink.delivery-guarantee": "at-least-once"},
        )
    }
)"""


def dead_letter_insert(checked: str, sink: str = "dead_letter") -> str:
    """Malformed messages, each as a dead-letter record saying where it was and what is wrong."""
    return f"""INSERT INTO `{sink}`
SELECT JSON_OBJECT(
  'source_topic' VALUE `src_topic`,
  'partition' VALUE `src_partition`,
  'offset' VALUE `src_offset`,
  'error' VALUE `error`,
  'payload' VALUE CASE WHEN `utf8` THEN `msg` ELSE TO_BASE64(`payload`) END,
  'payload_encoding' VALUE CASE WHEN `utf8` THEN CAST(NULL AS STRING) ELSE 'base64' END
  ABSENT ON NULL)
FROM `{checked}` WHERE `error` IS NOT NULL"""


def keyed_raw_sink(args: argparse.Namespace, name: str, topic: str) -> str:
    """A table writing (key, value) strings as they are."""
    return f"""CREATE TEMPORARY TABLE `{name}` (`k` STRING, `value` STRING) WITH (
  {
        kafka_options(
            args,
            topic,
            **{
                "key.format": "raw",
                "key.fields": "k",
                "value.format": "raw",
                "value.fields-include": "EXCEPT_KEY",
                "sink.delivery-guarantee": "at-least-once",
            },
        )
    }
)"""


def late_insert(checked: str, key: str, sink: str = "late_events") -> str:
    """Late events: the original event's fields plus `source_topic` and `reason`."""
    # The message is a valid JSON object with at least one field, so it ends in '}' (after TRIM)
    # and the two fields can be appended in place: unknown fields stay as they were.
    return f"""INSERT INTO `{sink}`
SELECT `{key}`,
  CONCAT(
    SUBSTR(TRIM(`msg`), 1, CHAR_LENGTH(TRIM(`msg`)) - 1),
    ',"source_topic":', JSON_STRING(`src_topic`), ',"reason":"late"}}')
FROM `{checked}` WHERE `error` IS NULL AND `late`"""


def json_sink(
    args: argparse.Namespace, name: str, topic: str, columns: list[tuple[str, str]]
) -> str:
    """A JSON table keyed by its `k` column (written as the Kafka key, not in the value)."""
    cols = ",\n  ".join(f"`{c}` {t}" for c, t in [("k", "STRING"), *columns])
    return f"""CREATE TEMPORARY TABLE `{name}` (
  {cols}
) WITH (
  {
        kafka_options(
            args,
            topic,
            **{
                "key.format": "raw",
                "key.fields": "k",
                "value.format": "json",
                "value.fields-include": "EXCEPT_KEY",
                "sink.delivery-guarantee": "at-least-once",
            },
        )
    }
)"""
