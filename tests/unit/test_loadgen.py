"""Pacing of `eddyline generate --rate`."""

from __future__ import annotations

from deploy.datagen.loadgen import Pacer


def test_unlimited_rate_never_waits() -> None:
    assert Pacer(0, started=100.0).delay(sent=10_000, now=100.0) == 0.0


def test_waits_until_the_schedule_allows_the_next_message() -> None:
    pacer = Pacer(rate=100, started=10.0)
    assert round(pacer.delay(sent=50, now=10.2), 9) == 0.3  # the 50th message is due at 10.5 s
    assert round(pacer.delay(sent=50, now=10.5), 9) == 0.0
    assert pacer.delay(sent=50, now=11.0) == 0.0  # behind schedule: send at once
