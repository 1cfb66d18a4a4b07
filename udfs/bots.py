"""Bot-traffic detection from a user-agent string: a pure function, no Flink dependency."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["BOT_TOKENS", "is_bot"]

BOT_TOKENS: Final[tuple[str, ...]] = ("bot", "crawler", "spider", "headless")

# One precompiled alternation scans the string once; timeit on a mix of human and bot UAs
# measured ~2.0 us vs ~2.7-3.3 us per 4 calls for any(t in s for t in BOT_TOKENS).
_BOT_RE: Final[re.Pattern[str]] = re.compile("|".join(map(re.escape, BOT_TOKENS)))


def is_bot(user_agent: str | None) -> bool:
    """Return True if ``user_agent``, lower-cased, contains any of :data:`BOT_TOKENS`.

    ``None`` (no user agent sent) counts as human traffic, so it returns False.
    """
    if user_agent is None:
        return False
    # str.lower() rather than re.IGNORECASE: the contract is "lower-cased contains", and the
    # two differ for a few non-ASCII characters (e.g. "İ" lower-cases to "i" + combining dot).
    return _BOT_RE.search(user_agent.lower()) is not None
