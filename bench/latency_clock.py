"""Event time on the wall clock for bench.latency: each generated message restamped as it is
sent, and the generator's pace for a send rate. Pure (tests/unit/test_latency.py)."""

from __future__ import annotations

import re
from collections import OrderedDict

from deploy.datagen import generator

_TS = re.compile(rb'"ts":(-?\d{1,18})(?=[,}])')


class Restamper:
    """Moves generated event time onto the wall clock, message by message, as they are sent.

    A message's new `ts` is the send time minus how far the generator put it behind the newest
    `ts` it had generated so far (times `scale`: the generator's event time per message over
    the pace's), so out-of-order and late events stay as far behind as generated, in wall time.
    A duplicate is sent as the same bytes as its original was. Messages without an integer
    `ts` (some malformed ones) go as they are."""

    def __init__(self, scale: float = 1.0, horizon: int = 4_096) -> None:
        self.scale = scale
        self.high: int | None = None
        self._horizon = horizon
        self._sent: OrderedDict[bytes, bytes] = OrderedDict()

    def stamp(self, message: generator.Message, now_ms: int) -> bytes:
        if message.kind == "duplicate":
            copy = self._sent.get(message.value)
            if copy is not None:
                return copy
        found = _TS.search(message.value)
        if found is None:
            return message.value
        ts = int(found.group(1))
        self.high = ts if self.high is None else max(self.high, ts)
        new = now_ms - round((self.high - ts) * self.scale)
        value = message.value[: found.start(1)] + str(new).encode() + message.value[found.end(1) :]
        if message.kind in ("normal", "out_of_order"):
            self._sent[message.value] = value
            if len(self._sent) > self._horizon:
                self._sent.popitem(last=False)
        return value


def pace(rate: float) -> tuple[int, float]:
    """The generator's mean event-time step (whole ms, ≥ 1) for `rate` messages/s, and the
    factor that turns its event time into wall time at that pace."""
    gap = max(1, round(1000 / rate))
    return gap, (1000 / rate) / gap
