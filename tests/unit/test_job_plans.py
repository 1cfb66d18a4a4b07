"""The jobs' optimized plans (planning only, nothing runs): each message meets each Python UDF
once, and with row-at-a-time functions (the default) one Python call per message parses, checks
and applies the bot and page rules.

Before `table.optimizer.reuse-optimize-block-with-digest-enabled`, the planner expanded the checked
view once per route, so the JSON check ran four times per message (twice for the
dead-letter route, once each for the late and valid routes) — three quarters of its Python work
wasted — and the bot rule, planned inside the valid route's filter, counted malformed bots."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

import pytest

from jobs import attribution, runtime, sessions
from tests.plans import planned

# PyFlink's loopback worker leaves these behind; none of it is ours (as in test_udfs_flink).
pytestmark = pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning:httplib2.*",
)

JOBS: dict[str, tuple[Callable[[list[str]], argparse.Namespace], Callable[..., object]]] = {
    "attribution": (attribution.parse_args, attribution.statements),
    "sessions": (sessions.parse_args, sessions.statements),
}


def execution_plan(job: str, functions: str) -> str:
    parse, statements = JOBS[job]
    args = parse(["--bootstrap-servers", "127.0.0.1:9", "--functions", functions])
    ddl, inserts = statements(args)  # type: ignore[misc]
    return planned(args, job, ddl, inserts)[0]


def calls(plan: str, function: str) -> int:
    return len(re.findall(rf"\b{function}\(", plan))


@pytest.mark.parametrize("job", sorted(JOBS))
def test_one_python_call_parses_checks_and_applies_the_rules(job: str) -> None:
    plan = execution_plan(job, "python")
    streams = 2  # views and clicks
    assert calls(plan, "check_clickstream") == streams, plan
    rules = "bots+pages" if job == "sessions" else "bots"
    assert plan.count(f"check_clickstream(msg, utf8, late, '{rules}')") == streams, plan
    for udf in ("is_json_object", "is_bot", "is_bot_vec", "normalize_page", "normalize_page_vec"):
        assert calls(plan, udf) == 0, plan
    # One Python operator per stream, shared by the three routes (reuse_id).
    assert plan.count("PythonCalc(") == streams, plan
    assert "Reused(" in plan
    # The only JSON parse left in Java is the event time the watermark needs (the source's
    # watermark generator, `rt` and the `late` flag: the planner does not share expressions).
    assert calls(plan, "JSON_VALUE") == 0, plan
    assert calls(plan, "JSON_QUERY") <= 4 * streams, plan


@pytest.mark.parametrize("job", sorted(JOBS))
def test_with_pandas_rules_each_message_meets_each_python_udf_once(job: str) -> None:
    plan = execution_plan(job, "pandas")
    streams = 2
    bot = "is_bot_vec"
    assert calls(plan, "check_clickstream") == streams, plan
    assert plan.count("check_clickstream(msg, utf8, late, 'none')") == streams, plan
    assert calls(plan, bot) == streams, plan
    # The bot flag is computed in the view the three routes share (its operators carry a
    # reuse_id), and told to count exactly the valid, on-time rows: the planner must not have
    # simplified that argument against the valid route's filter.
    lines = plan.splitlines()
    flagged = [i for i, line in enumerate(lines) if f"{bot}(user_agent, " in line]
    for i in flagged:
        flag = re.search(rf"{bot}\(user_agent, (\w+)\) AS bot\b", lines[i])
        assert flag, lines[i]
        assert "(reuse_id=" in lines[i], lines[i]
        assert f"(error IS NULL AND NOT(late)) AS {flag.group(1)}]" in lines[i + 1], lines[i + 1]
    assert "Reused(" in plan  # the checked view's operators are shared by the routes
    if job == "sessions":  # the page is normalised in the bot rule's Python operator
        assert calls(plan, "normalize_page_vec") == streams, plan
        assert all("normalize_page_vec(page)" in lines[i] for i in flagged), plan


def test_python_bundles_end_within_100_ms_unless_the_submission_says_otherwise() -> None:
    """A Python operator holds the watermark back until its bundle ends: the jobs' windows fire
    at most 100 ms late per Python step instead of Flink's 1 s (bench.latency measures it)."""
    args = attribution.parse_args(["--bootstrap-servers", "127.0.0.1:9"])
    shipped = runtime.table_env(args, runtime.stream_env(args), "attribution")
    assert shipped.get_config().get(runtime.BUNDLE_TIME, "unset") == "100"
    chosen = runtime.stream_env(args, {runtime.BUNDLE_TIME: "500"})
    assert (
        runtime.table_env(args, chosen, "attribution")
        .get_config()
        .get(runtime.BUNDLE_TIME, "unset")
        == "500"
    )
