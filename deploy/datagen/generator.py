"""Deterministic input events for Eddyline's streaming jobs: ad views, ad clicks, stock movements.

The generator is pure: no Kafka, no files, no clock, no uuid4. It returns the messages in the
order they should be produced and the caller produces them (:mod:`deploy.datagen.loadgen`). The
same :class:`GeneratorConfig` always yields byte-identical output, because every random choice
comes from one ``random.Random(config.seed)``.

This module is the public face; the parts live beside it:

* :mod:`~deploy.datagen.contract`: the data contract, the message kinds, :class:`Message`;
* :mod:`~deploy.datagen.config`: :class:`GeneratorConfig`, what to generate;
* :mod:`~deploy.datagen.engine`: the slots, the event time, duplicates and extra fields;
* :mod:`~deploy.datagen.malformed`: the ways a message breaks the contract;
* :mod:`~deploy.datagen.clickstream` and :mod:`~deploy.datagen.orders`: the two profiles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from deploy.datagen.clickstream import ClickstreamEngine
from deploy.datagen.config import GeneratorConfig
from deploy.datagen.contract import (
    BOT_TOKENS,
    CLICKSTREAM_TOPICS,
    JOB_OUT_OF_ORDERNESS_MS,
    KINDS,
    MAX_STRING_CHARS,
    ORDERS_TOPIC,
    SESSION_GAP_MS,
    WINDOW_MS,
    Kind,
    Message,
    is_bot,
)
from deploy.datagen.orders import OrdersEngine

__all__ = [
    "BOT_TOKENS",
    "CLICKSTREAM_TOPICS",
    "JOB_OUT_OF_ORDERNESS_MS",
    "KINDS",
    "MAX_STRING_CHARS",
    "ORDERS_TOPIC",
    "SESSION_GAP_MS",
    "WINDOW_MS",
    "GeneratorConfig",
    "Kind",
    "Message",
    "clickstream",
    "is_bot",
    "orders",
    "summary",
]


def clickstream(config: GeneratorConfig) -> list[Message]:
    """Ad views and clicks, topics ``views`` and ``clicks``, in production order."""
    return ClickstreamEngine(config).run(with_bots=True)


def orders(config: GeneratorConfig) -> list[Message]:
    """Stock movements, topic ``orders``, in production order. ``config.bot`` is ignored."""
    return OrdersEngine(config).run(with_bots=False)


def summary(messages: Iterable[Message]) -> dict[str, int]:
    """Count messages in total, per topic and per kind (``kind.<kind>``, zeros included)."""
    topics: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    for message in messages:
        topics[message.topic] += 1
        kinds[message.kind] += 1
    result = {"total": sum(topics.values())}
    result.update(sorted(topics.items()))
    result.update((f"kind.{kind}", kinds[kind]) for kind in KINDS)
    return result
