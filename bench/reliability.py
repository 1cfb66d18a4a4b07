"""Reliability figures: run the fault and fuzz tests and report what they survived.

    .venv/bin/python -m bench.reliability [--soak] [--no-readme]

Runs, on a throw-away stack of pytest's own, the tests that kill servers (TaskManagers, the
JobManager, the Kafka broker) under the ledger, kill the controller at each step of an upgrade,
put a fault-injecting proxy between the controller and Flink, fuzz every input topic and fuzz
FlinkJob specs and job entries. Each test reports its figures through tests/figures.py; this
collects them with the tests' outcomes and times into bench/results/reliability.json and writes
the README's Reliability section (between its reliability markers). `--soak` adds the long
versions (`make soak`): 200,000 movements and ten kills, more fuzzed messages and specs.
Exit code: pytest's (0 only when every test passed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from bench.results_file import RESULTS, machine

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN = "<!-- reliability:begin (written by python -m bench.reliability) -->"
END = "<!-- reliability:end -->"
# What tests/integration/test_fuzz_events.py sends that is valid after all (the control group).
ODDITIES = {"huge extra field", "nested extra field", "extra fields", "spacing"}
KILLED = {
    "taskmanagers": "all TaskManagers",
    "jobmanager": "the JobManager",
    "jobmanager (controller away)": "the JobManager with the controller away",
    "kafka": "the Kafka broker",
}
TESTS = [
    "tests/unit/test_spec_fuzz.py",
    "tests/unit/test_entries_fuzz.py",
    "tests/integration/test_faults_processes.py",
    "tests/integration/test_faults_controller.py",
    "tests/integration/test_controller.py::"
    "test_a_controller_killed_in_an_upgrade_resumes_it_with_exactly_one_job",
    "tests/integration/test_faults_rest.py",
    "tests/integration/test_fuzz_events.py",
]


def run_tests(soak: bool, figures: Path, junit: Path, basetemp: Path) -> int:
    """pytest over TESTS with figures reported to `figures`; its exit code."""
    marks = [] if soak else ["-m", "not soak"]
    env = {**os.environ, "EDDYLINE_FIGURES": str(figures)}
    command = [
        sys.executable, "-m", "pytest", *TESTS, *marks, "-q", "-p", "no:cacheprovider",
        f"--junitxml={junit}", f"--basetemp={basetemp}",
    ]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def outcomes(junit: Path) -> dict[str, Any]:
    """Per test: passed/failed/skipped and seconds, from pytest's JUnit XML."""
    tests: dict[str, Any] = {}
    if not junit.exists():
        return tests
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 - pytest wrote it
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        result = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                result = "failed"
            elif child.tag == "skipped":
                # pytest writes an expected failure (a known bug, strict xfail) as a skip.
                result = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
        tests[name] = {"result": result, "seconds": round(float(case.get("time", 0.0)), 1)}
    return tests


def summarise(lines: list[dict[str, Any]], tests: dict[str, Any]) -> dict[str, Any]:
    """The figures of every scenario, added up over the runs of its tests."""
    by: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by.setdefault(str(line["scenario"]), []).append(line)
    kills: Counter[str] = Counter()
    for line in by.get("process-kills", []):
        kills.update(line["kills"])
    steps = [s for line in by.get("controller-kills", []) for s in line["steps"]]
    # The two steps tests/integration/test_controller.py kills at (it reports no figures).
    steps += [
        failpoint
        for name, t in tests.items()
        if "killed_in_an_upgrade" in name and t["result"] == "passed"
        for failpoint in ("before:submit", "after:submit")
        if failpoint in name
    ]
    rest = by.get("rest-faults", [])
    events = by.get("event-fuzz", [])
    kinds: Counter[str] = Counter()
    for line in events:
        for per_topic in line["kinds"].values():
            kinds.update(per_topic)
    odd = {k: n for k, n in kinds.items() if k in ODDITIES}
    damage = {k: n for k, n in kinds.items() if k not in ODDITIES}
    specs: Counter[str] = Counter()
    for line in by.get("spec-fuzz", []):
        specs.update({k: v for k, v in line.items() if isinstance(v, int)})
    entries: Counter[str] = Counter()
    for line in by.get("entry-fuzz", []):
        entries.update({k: v for k, v in line.items() if isinstance(v, int)})
    results = Counter(t["result"] for t in tests.values())
    return {
        "tests": {
            "passed": results["passed"],
            "failed": results["failed"],
            "xfailed": results["xfailed"],
            "skipped": results["skipped"],
            "each": tests,
        },
        "process_kills": {
            "survived": dict(kills),
            "movements": _total(by, "process-kills", "movements"),
            **_exactly_once(by, "process-kills"),
        },
        "controller_kills": {
            "survived": sorted(set(steps)),
            "count": len(steps),
            "movements": _total(by, "controller-kills", "movements"),
            **_exactly_once(by, "controller-kills"),
        },
        "rest_faults": {
            **_exactly_once(by, "rest-faults"),
            "requests": sum(int(r["requests"]) for r in rest),
            "faults": dict(sum((Counter(r["faults"]) for r in rest), Counter())),
            "submissions_sent": sum(int(r["submissions_sent"]) for r in rest),
            "flink_jobs_started": sum(int(r["flink_jobs"]) for r in rest),
        },
        "event_fuzz": {
            "messages_fuzzed": sum(int(e["messages_fuzzed"]) for e in events),
            "malformed": damage,
            "odd_but_valid": odd,
            "dead_letters": [e["dead_letters"] for e in events],
            "states_after": [e["states"] for e in events],
        },
        "spec_fuzz": dict(specs),
        "entry_fuzz": dict(entries),
    }


def _total(by: dict[str, list[dict[str, Any]]], scenario: str, key: str) -> int:
    return sum(int(line[key]) for line in by.get(scenario, []))


def _exactly_once(by: dict[str, list[dict[str, Any]]], scenario: str) -> dict[str, int]:
    """Output records lost and duplicated against the oracle, over the scenario's runs."""
    return {k: _total(by, scenario, k) for k in ("lost", "duplicated")}


def markdown(result: dict[str, Any]) -> str:
    s = result
    pk, ck, rf, ef = s["process_kills"], s["controller_kills"], s["rest_faults"], s["event_fuzz"]
    sf, en = s["spec_fuzz"], s["entry_fuzz"]
    kills = ", ".join(
        f"{KILLED.get(name, name)} x{n}" for name, n in sorted(pk["survived"].items())
    )
    faults = ", ".join(f"{n} {name}" for name, n in sorted(rf["faults"].items()) if name != "none")
    m = s["machine"]
    lines = [
        f"Latest run: {s['date'][:10]}, `{s['command']}` ({s['profile']}), "
        f"{m['cpus']} CPUs; {s['tests']['passed']} tests passed, {s['tests']['failed']} failed, "
        f"{s['tests']['xfailed']} known bug (expected failure), {s['minutes']:.0f} min. "
        "Figures: `bench/results/reliability.json`.",
        "",
        "| what | survived | output records lost | duplicated |",
        "|---|---|---|---|",
        f"| servers killed (SIGKILL) while the ledger works through {pk['movements']:,} "
        f"movements under the controller | {kills} | {pk['lost']} | {pk['duplicated']} |",
        f"| the controller killed (SIGKILL) at a step of a savepoint upgrade | {ck['count']} "
        f"kills: {', '.join(ck['survived']) or '—'} | {ck['lost']} | {ck['duplicated']} |",
        f"| Flink REST faults between the controller and Flink ({rf['requests']:,} requests) "
        f"| {faults or '—'}; {rf['submissions_sent']} submissions sent, "
        f"{rf['flink_jobs_started']} Flink jobs started (one per generation) | {rf['lost']} "
        f"| {rf['duplicated']} |",
        "",
        f"- Bad events: {ef['messages_fuzzed']:,} fuzzed messages into views, clicks and orders: "
        f"{sum(ef['malformed'].values()):,} malformed "
        f"({', '.join(f'{k} {v}' for k, v in sorted(ef['malformed'].items()))}) and "
        f"{sum(ef['odd_but_valid'].values()):,} odd but valid "
        f"({', '.join(f'{k} {v}' for k, v in sorted(ef['odd_but_valid'].items()))}). Every "
        "malformed one in `dead-letter` once with its offset and payload, none lost, every job "
        "still RUNNING and never restarted, in = contributed + late + dead-lettered + filtered.",
        f"- Bad specs: {sf.get('valid', 0) + sf.get('invalid', 0):,} FlinkJob documents "
        f"generated from the JSON schema ({sf.get('invalid', 0):,} with a violation, each "
        f"refused naming its field) and {sf.get('submitted', 0):,} submitted through "
        f"`eddyline submit` ({sf.get('submitted_refused', 0):,} refused with the store "
        "unchanged); job entries against random trees with links: "
        f"{en.get('entries', 0):,} ({en.get('accepted', 0):,} accepted, each a file inside an "
        f"allowed folder or a module under jobs/; {en.get('refused', 0):,} refused) and "
        f"{en.get('model_entries', 0):,} entry texts against the spec model.",
    ]
    return "\n".join(lines)


def write_readme(section: str, readme: Path = README) -> bool:
    """Replace the text between the markers; False when the README has none."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    p.add_argument("--soak", action="store_true", help="the long versions too (make soak)")
    p.add_argument("--no-readme", action="store_true", help="print the section instead")
    p.add_argument("--out", type=Path, default=RESULTS / "reliability.json")
    args = p.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="eddyline-reliability-") as tmp:
        figures, junit = Path(tmp) / "figures.jsonl", Path(tmp) / "junit.xml"
        figures.touch()
        code = run_tests(args.soak, figures, junit, Path(tmp) / "pytest")
        lines = [json.loads(x) for x in figures.read_text().splitlines() if x.strip()]
        tests = outcomes(junit)
    result = summarise(lines, tests)
    result.update(
        date=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        machine=machine(),
        profile="short and soak" if args.soak else "short",
        command="make soak" if args.soak else "python -m bench.reliability",
        minutes=round((time.monotonic() - started) / 60, 1),
        exit_code=code,
        raw=lines,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    section = markdown(result)
    if args.no_readme or not write_readme(section):
        print(section)
    print(f"figures: {args.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
