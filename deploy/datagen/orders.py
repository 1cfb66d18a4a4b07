"""The orders profile: stock movements, topic ``orders`` (key ``sku``): mostly single-item
sales from a few busy SKUs, now and then a restock. Bots do not apply here."""

from __future__ import annotations

from typing import Any, Final

from deploy.datagen.config import GeneratorConfig
from deploy.datagen.contract import ORDER_STRINGS, ORDERS_TOPIC, Kind
from deploy.datagen.engine import Engine, picker
from deploy.datagen.malformed import break_record

# Mostly single items.
_SALES: Final = (-1, -1, -1, -1, -2, -2, -2, -3, -4, -5)


class OrdersEngine(Engine):
    """Stock movements of SKUs picked by key skew, across a few warehouses."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        rng = self.rng
        skus = [f"sku-{i:04d}" for i in range(config.skus)]
        rng.shuffle(skus)
        self.skus = [(sku, sku.encode()) for sku in skus]
        self.warehouses = [f"wh{i}" for i in range(config.warehouses)]
        self.pick_sku = picker(len(self.skus), config.key_skew)

    def movement(self, ts: int) -> tuple[bytes, dict[str, Any]]:
        r = self.rng.random
        sku, key = self.skus[self.pick_sku(self.rng)]
        restock = r() < 0.1
        delta = int(r() * 91) + 10 if restock else _SALES[int(r() * len(_SALES))]
        record = {
            "movement_id": self.new_id("m"),
            "sku": sku,
            "delta": delta,
            "warehouse": self.warehouses[int(r() * len(self.warehouses))],
            "ts": ts,
        }
        return key, record

    def _send(self, ts: int, kind: Kind) -> None:
        key, record = self.movement(ts)
        if self.wants_extras():
            value = self.with_extras(record)
        else:
            # Same shortcut as for clickstream events: sku and warehouse ids need no escaping.
            value = (
                f'{{"movement_id":"{record["movement_id"]}","sku":"{record["sku"]}",'
                f'"delta":{record["delta"]},"warehouse":"{record["warehouse"]}","ts":{ts}}}'
            ).encode()
        self.emit(ORDERS_TOPIC, key, value, ts, kind)

    def normal(self) -> None:
        self.now = self.next_time()
        self._send(self.now, "normal")

    def bot(self) -> None:
        self.normal()

    def out_of_order(self, ts: int) -> None:
        self._send(ts, "out_of_order")

    def late(self, ts: int) -> None:
        self._send(ts, "late")

    def malformed(self) -> None:
        sku, record = self.movement(self.now)
        key = None if self.rng.random() < 0.25 else sku
        self.emit_broken(
            ORDERS_TOPIC, key, break_record(self.rng, record, ORDER_STRINGS, ("delta", "ts"))
        )
