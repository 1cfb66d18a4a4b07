"""What a malformed message is: the ways a valid record is turned into one that breaks the
contract (not JSON, not an object, a field missing or of the wrong type, invalid UTF-8, a huge
string field, deeply nested JSON), each a real-world failure the jobs must route to the
dead-letter topic rather than crash on."""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Callable
from itertools import accumulate
from typing import Any, Final

from deploy.datagen.engine import dumps

# Far beyond MAX_STRING_CHARS, so a huge field is broken whatever the limit's exact value.
_HUGE_CHARS: Final = 102_400
# Stands in for what json.dumps would not write (invalid UTF-8, deep nesting): swapped for the
# real bytes after encoding.
_MARK: Final = "@@eddyline-mark@@"


class _Breaker:
    """The ways to turn a valid record into a message that breaks the contract."""

    def __init__(
        self,
        rng: random.Random,
        record: dict[str, Any],
        strings: tuple[str, ...],
        ints: tuple[str, ...],
    ) -> None:
        self.rng = rng
        self.record = record
        self.strings = strings
        self.fields = strings + ints
        self.ints = ints

    def not_json(self) -> bytes:
        good = dumps(self.record)
        return self.rng.choice(
            [
                b"",
                b"not json",
                b"{event_id: 1}",
                b"{'ts': 1}",
                good[: self.rng.randrange(1, len(good))],  # a prefix of an object never closes
                good + b"}",
            ]
        )

    def not_object(self) -> bytes:
        good = dumps(self.record)
        # The last two are real bugs: an event wrapped in a list, and one encoded twice.
        return self.rng.choice(
            [b"[1,2]", b'"x"', b"42", b"null", b"[" + good + b"]", dumps(good.decode())]
        )

    def missing_field(self) -> bytes:
        del self.record[self.rng.choice(self.fields)]
        return dumps(self.record)

    def wrong_type(self) -> bytes:
        rng, record = self.rng, self.record
        field = rng.choice(self.fields)
        value = record[field]
        options: list[object]
        if field in self.ints:
            options = [str(value), float(value), None, True, [value]]
            if field == "ts":
                options.append(math.nan)  # json.dumps writes NaN, which is not JSON
        else:
            digits = "".join(c for c in value if c.isdigit()) or "0"
            options = [int(digits), None, [value], {"value": value}, False]
        record[field] = rng.choice(options)
        return dumps(record)

    def bad_utf8(self) -> bytes:
        rng, record = self.rng, self.record
        if rng.random() < 0.25:
            # UTF-16 with a byte-order mark, as some Windows tools write JSON.
            return b"\xff\xfe" + dumps(record).decode().encode("utf-16-le")
        record[rng.choice(self.strings)] = _MARK
        bad = rng.choice([b"caf\xe9", b"\xc3\x28", b"\xed\xa0\x80", b"\xff\xfe"])
        return dumps(record).replace(_MARK.encode(), bad)

    def huge_field(self) -> bytes:
        self.record[self.rng.choice(self.strings)] += "x" * (
            _HUGE_CHARS + self.rng.randrange(4_096)
        )
        return dumps(self.record)

    def deep(self) -> bytes:
        rng, record = self.rng, self.record
        depth = rng.randint(200, 400)
        shape = rng.randrange(3)
        if shape == 0:
            return b"[" * depth + b"]" * depth
        if shape == 1:
            return b'{"a":' * depth + b"1" + b"}" * depth
        record["ts"] = _MARK
        nested = b"[" * depth + str(rng.getrandbits(40)).encode() + b"]" * depth
        return dumps(record).replace(f'"{_MARK}"'.encode(), nested)


# Relative weights; huge fields are rarer because each one costs 100 kB of memory.
_BREAKS: Final[tuple[tuple[Callable[[_Breaker], bytes], int], ...]] = (
    (_Breaker.not_json, 3),
    (_Breaker.not_object, 3),
    (_Breaker.missing_field, 3),
    (_Breaker.wrong_type, 4),
    (_Breaker.bad_utf8, 2),
    (_Breaker.huge_field, 1),
    (_Breaker.deep, 2),
)
_BREAK_CUMULATIVE: Final = tuple(accumulate(weight for _, weight in _BREAKS))


def break_record(
    rng: random.Random, record: dict[str, Any], strings: tuple[str, ...], ints: tuple[str, ...]
) -> bytes:
    """Turn a valid record into one that breaks the contract in one of several ways."""
    way = _BREAKS[bisect(_BREAK_CUMULATIVE, rng.random() * _BREAK_CUMULATIVE[-1])][0]
    return way(_Breaker(rng, record, strings, ints))
