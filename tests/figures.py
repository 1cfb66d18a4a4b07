"""Figures the fault and fuzz tests report (kills survived, messages and specs fuzzed, records
lost or duplicated), for `python -m bench.reliability`.

A test calls `record("scenario", name=value, ...)`; when EDDYLINE_FIGURES names a file, one JSON
line is appended to it, otherwise nothing happens (a plain `make test`).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV = "EDDYLINE_FIGURES"


def record(scenario: str, **figures: Any) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"scenario": scenario, "time": time.time(), **figures}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
