"""The clickstream profile: ad views and the clicks that follow them, topics ``views`` and
``clicks``. Human users (some much busier than others) and bots with user agents of their own,
pages whose scheme and host vary in case and carry queries and fragments, so that the jobs'
normalisation and bot filtering have something to do."""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass
from typing import Any, Final

from deploy.datagen.config import GeneratorConfig
from deploy.datagen.contract import CLICK_STRINGS, CLICKSTREAM_TOPICS, Kind
from deploy.datagen.engine import Engine, picker
from deploy.datagen.malformed import break_record

_CLICK_DELAY_MS: Final = (500, 20_000)

# Real browsers' user agents: none holds a bot token, so only bots are filtered as bots.
HUMAN_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
# "{}" is where the bot token goes, in random letter case.
_BOT_AGENTS: Final = (
    ("Mozilla/5.0 (compatible; Google{}/2.1)", "bot"),
    ("Mozilla/5.0 (compatible; bing{}/2.0)", "bot"),
    ("Mozilla/5.0 (compatible; Yandex{}/3.0)", "bot"),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "{}Chrome/131.0.0.0 Safari/537.36",
        "headless",
    ),
    ("Ahrefs{}/7.0", "crawler"),
    ("python-{}/0.4", "crawler"),
    ("Mozilla/5.0 (compatible; Baidu{}/2.0)", "spider"),
    ("Screaming Frog SEO {}/19.4", "spider"),
)
# Only scheme and host case vary: path case is significant and must survive normalisation.
_ORIGINS: Final = (
    "https://shop.example.com",
    "https://shop.example.com",
    "https://shop.example.com",
    "HTTPS://SHOP.EXAMPLE.COM",
    "https://Shop.Example.com",
    "Https://shop.EXAMPLE.com",
)
_PATHS: Final = ("/", "/cart", "/checkout", "/category/shoes", "/category/bags", "/search")
_QUERIES: Final = ("", "", "", "?ref=x", "?utm_source=newsletter&utm_medium=email", "?", "?p=2")
_FRAGMENTS: Final = ("", "", "", "", "#top", "#reviews", "#")
# Query and fragment combined up front: one draw instead of two per page.
_TAILS: Final = tuple(query + fragment for query in _QUERIES for fragment in _FRAGMENTS)
_PRODUCTS: Final = 300


def _random_case(rng: random.Random, text: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in text)


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _User:
    user_id: str
    key: bytes
    agent: str
    # JSON string literals, escaped once instead of once per event.
    id_json: str
    agent_json: str

    @classmethod
    def of(cls, user_id: str, agent: str) -> _User:
        return cls(user_id, user_id.encode(), agent, _json_str(user_id), _json_str(agent))


# (due ts, tiebreak, user, ad index, page, view ts): a click waiting for its time.
_Pending = tuple[int, int, _User, int, str, int]


class ClickstreamEngine(Engine):
    """Views from users picked by key skew; a share of views schedules its click for later."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__(config)
        rng = self.rng
        self.ad_ids = [f"ad{i:02d}" for i in range(config.ads)]
        # Fixed per seed: an ad always belongs to the same campaign.
        self.ad_campaigns = [f"c{rng.randrange(config.campaigns)}" for _ in range(config.ads)]
        self.ad_json = [
            f'"ad_id":{_json_str(ad)},"campaign_id":{_json_str(campaign)}'
            for ad, campaign in zip(self.ad_ids, self.ad_campaigns, strict=True)
        ]
        user_ids = [f"u{i:04d}" for i in range(config.users)]
        # Shuffled so that the hottest users under key_skew are not simply the lowest ids.
        rng.shuffle(user_ids)
        self.humans = [_User.of(uid, rng.choice(HUMAN_AGENTS)) for uid in user_ids]
        self.bots: list[_User] = []
        for i in range(max(1, config.users // 20)):
            template, token = rng.choice(_BOT_AGENTS)
            agent = template.format(_random_case(rng, token))
            self.bots.append(_User.of(f"u{config.users + i:04d}", agent))
        self.pick_human = picker(len(self.humans), config.key_skew)
        self.human_clicks: list[_Pending] = []
        self.bot_clicks: list[_Pending] = []
        self._tiebreak = 0

    def page(self) -> str:
        # random() * len indexing rather than rng.choice: this runs for every event.
        r = self.rng.random
        if r() < 0.7:
            path = f"/products/{int(r() * _PRODUCTS) + 1}"
        else:
            path = _PATHS[int(r() * len(_PATHS))]
        if path != "/" and r() < 0.25:
            path += "/"
        return _ORIGINS[int(r() * len(_ORIGINS))] + path + _TAILS[int(r() * len(_TAILS))]

    def record(self, prefix: str, user: _User, ad: int, page: str, ts: int) -> dict[str, Any]:
        return {
            "event_id": self.new_id(prefix),
            "user_id": user.user_id,
            "ad_id": self.ad_ids[ad],
            "campaign_id": self.ad_campaigns[ad],
            "page": page,
            "user_agent": user.agent,
            "ts": ts,
        }

    def event(self, topic: str, user: _User, ad: int, page: str, ts: int, kind: Kind) -> None:
        prefix = "v" if topic == "views" else "c"
        if self.wants_extras():
            value = self.with_extras(self.record(prefix, user, ad, page, ts))
        else:
            # Formatting the JSON directly is about 3x faster than json.dumps, which matters
            # at a million events. It is exact because every piece is either escaped above or
            # built from characters JSON never escapes (ids, digits, the URL parts).
            value = (
                f'{{"event_id":"{self.new_id(prefix)}","user_id":{user.id_json},'
                f'{self.ad_json[ad]},"page":"{page}","user_agent":{user.agent_json},"ts":{ts}}}'
            ).encode()
        self.emit(topic, user.key, value, ts, kind)

    def view(self, user: _User, ts: int, kind: Kind, clicks: list[_Pending] | None) -> None:
        rng = self.rng
        ad = int(rng.random() * len(self.ad_ids))
        page = self.page()
        self.event("views", user, ad, page, ts, kind)
        if clicks is not None and rng.random() < self.cfg.click_ratio:
            self._tiebreak += 1
            due = ts + rng.randint(*_CLICK_DELAY_MS)
            heapq.heappush(clicks, (due, self._tiebreak, user, ad, page, ts))

    def click(self, pending: _Pending, ts: int, kind: Kind) -> None:
        _, _, user, ad, page, _ = pending
        self.event("clicks", user, ad, page, ts, kind)

    def _on_time(self, clicks: list[_Pending], kind: Kind) -> None:
        previous, target = self.now, self.next_time()
        if clicks and clicks[0][0] <= target:
            pending = heapq.heappop(clicks)
            # Stop the clock at the click's due time so its delay is the one drawn; it is
            # only later when other kinds of slot already moved the clock past it.
            self.now = max(previous, pending[0])
            self.click(pending, self.now, kind)
            return
        self.now = target
        if kind == "bot":
            user = self.bots[int(self.rng.random() * len(self.bots))]
        else:
            user = self.humans[self.pick_human(self.rng)]
        self.view(user, self.now, kind, clicks)

    def normal(self) -> None:
        self._on_time(self.human_clicks, "normal")

    def bot(self) -> None:
        self._on_time(self.bot_clicks, "bot")

    def out_of_order(self, ts: int) -> None:
        clicks = self.human_clicks
        if clicks and clicks[0][0] <= self.now:
            pending = heapq.heappop(clicks)
            # Never before its view, so the pair still joins.
            self.click(pending, max(ts, pending[5]), "out_of_order")
        else:
            self.view(self.humans[self.pick_human(self.rng)], ts, "out_of_order", clicks)

    def late(self, ts: int) -> None:
        rng, ratio = self.rng, self.cfg.click_ratio
        user = self.humans[self.pick_human(rng)]
        if rng.random() < ratio / (1 + ratio):
            # A click with no view behind it.
            ad = int(rng.random() * len(self.ad_ids))
            self.event("clicks", user, ad, self.page(), ts, "late")
        else:
            # No click follows: it would be due long before the running time.
            self.view(user, ts, "late", None)

    def malformed(self) -> None:
        rng = self.rng
        topic = rng.choice(CLICKSTREAM_TOPICS)
        user = self.humans[self.pick_human(rng)]
        ad = int(rng.random() * len(self.ad_ids))
        record = self.record("v" if topic == "views" else "c", user, ad, self.page(), self.now)
        key = None if rng.random() < 0.25 else user.key
        self.emit_broken(topic, key, break_record(rng, record, CLICK_STRINGS, ("ts",)))
