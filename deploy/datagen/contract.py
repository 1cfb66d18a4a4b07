"""The data contract the generated events follow, and the kinds a message is generated as.

JSON, UTF-8, one event per message, event time ``ts`` in epoch milliseconds:

* ``views`` and ``clicks`` (key ``user_id``): event_id, user_id, ad_id, campaign_id, page,
  user_agent, ts.
* ``orders`` (key ``sku``): movement_id, sku, delta (negative = sale, positive = restock),
  warehouse, ts.

All string fields are JSON strings, ``ts`` and ``delta`` JSON integers. Unknown extra fields
may appear and must be accepted. A string field longer than :data:`MAX_STRING_CHARS` is
treated as broken (the generator's "huge field" messages are far beyond it).

Every message carries the :data:`Kind` it was generated as, so tests and demos can check what
the jobs did with each one:

* ``normal``: ``ts`` is the running event time, which never goes backwards.
* ``out_of_order``: ``ts`` is 1..max_out_of_order_ms behind the running event time, so never
  more than that behind the largest ``ts`` produced so far: the jobs' 5 s bound covers it.
* ``late``: about ``late_by_ms`` behind the largest ``ts`` produced so far (never less than
  half of it); otherwise a valid event.
* ``duplicate``: a byte copy (topic, key, value) of an earlier normal or out-of-order message
  of the same profile, picked among the recent ones so that it is not late itself.
* ``malformed``: not JSON, not an object, a field missing or of the wrong type, invalid
  UTF-8, a huge string field or deeply nested JSON (see :mod:`deploy.datagen.malformed`).
* ``bot``: a valid clickstream event whose user agent contains a bot token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, get_args

# The jobs' own definitions, re-exported: the generator must agree with what they check.
from jobs.sql import MAX_STRING_CHARS
from udfs.bots import BOT_TOKENS, is_bot

__all__ = [
    "BOT_TOKENS",
    "CLICKSTREAM_TOPICS",
    "CLICK_STRINGS",
    "JOB_OUT_OF_ORDERNESS_MS",
    "KINDS",
    "MAX_STRING_CHARS",
    "ORDERS_TOPIC",
    "ORDER_STRINGS",
    "SESSION_GAP_MS",
    "WINDOW_MS",
    "Kind",
    "Message",
    "is_bot",
]

Kind = Literal["normal", "out_of_order", "late", "duplicate", "malformed", "bot"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)

# What the downstream jobs are configured with; the generator's guarantees are stated
# against these numbers.
JOB_OUT_OF_ORDERNESS_MS: Final = 5_000
WINDOW_MS: Final = 60_000
SESSION_GAP_MS: Final = 1_800_000

CLICKSTREAM_TOPICS: Final[tuple[str, str]] = ("views", "clicks")
ORDERS_TOPIC: Final = "orders"

# The string fields of each topic; every other field is an integer (ts, and delta for orders).
CLICK_STRINGS: Final = ("event_id", "user_id", "ad_id", "campaign_id", "page", "user_agent")
ORDER_STRINGS: Final = ("movement_id", "sku", "warehouse")


@dataclass(frozen=True, slots=True)
class Message:
    """One Kafka record to produce, with the kind it was generated as."""

    topic: str
    key: bytes | None
    value: bytes
    kind: Kind
