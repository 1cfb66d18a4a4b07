"""Attribution: views ⋈ clicks on (user_id, ad_id) within one tumbling event-time window.

Every pair (view, click) of a user and an ad in the same window with view.ts ≤ click.ts is one
`attributed-clicks` record. Bots are dropped; late events go to `late-events`; malformed messages
to `dead-letter`. The join and the checks are Flink SQL; the bot rule is a Python UDF.

    python -m jobs.attribution --bootstrap-servers localhost:9092 --window 1m
"""

from __future__ import annotations

import argparse
import sys

from jobs import clickstream, flags, runtime, sql

OUTPUT_COLUMNS = [
    ("window_start", "BIGINT"),
    ("window_end", "BIGINT"),
    ("user_id", "STRING"),
    ("ad_id", "STRING"),
    ("campaign_id", "STRING"),
    ("view_id", "STRING"),
    ("click_id", "STRING"),
    ("view_ts", "BIGINT"),
    ("click_ts", "BIGINT"),
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = clickstream.parser("attribution", __doc__, output_topic="attributed-clicks")
    p.add_argument("--window", type=flags.duration, default="1m", metavar="DURATION")
    return p.parse_args(argv)


def statements(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(DDL, INSERTs) of the job: plain strings, so they can be read and tested."""
    ddl = clickstream.input_ddl(args)
    ddl.append(sql.json_sink(args, "attributed", args.output_topic, OUTPUT_COLUMNS))
    w = args.window
    win = sql.interval(w)
    inserts = clickstream.side_inserts()
    inserts.append(f"""INSERT INTO `attributed`
SELECT v.user_id, v.ts - MOD(v.ts, {w}), v.ts - MOD(v.ts, {w}) + {w},
       v.user_id, v.ad_id, v.campaign_id, v.event_id, c.event_id, v.ts, c.ts
FROM (SELECT * FROM TABLE(TUMBLE(TABLE `views_ok`, DESCRIPTOR(`rt`), {win}))) AS v
JOIN (SELECT * FROM TABLE(TUMBLE(TABLE `clicks_ok`, DESCRIPTOR(`rt`), {win}))) AS c
  ON v.user_id = c.user_id AND v.ad_id = c.ad_id
 AND v.window_start = c.window_start AND v.window_end = c.window_end
 AND v.ts <= c.ts""")
    return ddl, inserts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    runtime.run_sql_job("attribution", args, *statements(args))


if __name__ == "__main__":
    main()
