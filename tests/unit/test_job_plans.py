"""The jobs' optimized plans (planning only, nothing runs): each message meets each Python UDF
once. Before `table.optimizer.reuse-optimize-block-with-digest-enabled`, the planner expanded the
checked view once per route, so the JSON check ran four times per message (twice for the
dead-letter route, once each for the late and valid routes) — three quarters of its Python work
wasted — and the bot rule, planned inside the valid route's filter, counted malformed bots."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

import pytest

from jobs import attribution, sessions
from tests.plans import planned

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


# PyFlink's loopback worker leaves these behind; none of it is ours (as in test_udfs_flink).
@pytest.mark.filterwarnings(
    r"ignore:subprocess \d+ is still running:ResourceWarning",
    r"ignore:unclosed file <_io\.Buffered:ResourceWarning",
    "ignore::DeprecationWarning:httplib2.*",
)
@pytest.mark.parametrize("job", sorted(JOBS))
@pytest.mark.parametrize(("functions", "bot"), [("python", "is_bot"), ("pandas", "is_bot_vec")])
def test_each_message_meets_each_python_udf_once(job: str, functions: str, bot: str) -> None:
    plan = execution_plan(job, functions)
    streams = 2  # views and clicks
    assert calls(plan, "is_json_object") == streams, plan
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
        page = "normalize_page_vec" if functions == "pandas" else "normalize_page"
        assert calls(plan, page) == streams, plan
        assert all(f"{page}(page)" in lines[i] for i in flagged), plan
