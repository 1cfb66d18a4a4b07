"""is_bot: the fixed bot-token contract, by example and as a property."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from udfs.bots import BOT_TOKENS, is_bot


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        ("Googlebot/2.1", True),
        ("Mozilla/5.0 (compatible; bingbot)", True),
        ("HeadlessChrome/120", True),
        ("Baiduspider", True),
        ("AhrefsCrawler", True),
        ("Mozilla/5.0 (Windows NT 10.0) Firefox/120", False),
        ("Safari", False),
        ("", False),
        (None, False),
    ],
)
def test_examples(user_agent: str | None, expected: bool) -> None:
    assert is_bot(user_agent) is expected


def test_tokens_are_the_contract() -> None:
    assert BOT_TOKENS == ("bot", "crawler", "spider", "headless")


# Mixing tokens into arbitrary text makes hits as likely as misses; the examples pin
# case-folding corners where lower() and a case-insensitive regex would disagree.
_token_text = st.lists(
    st.one_of(st.text(), st.sampled_from(BOT_TOKENS).map(str.upper), st.sampled_from(BOT_TOKENS))
).map("".join)


@given(st.one_of(st.text(), _token_text))
@example("SPİDER")
@example("ROBOT")
@example("Bot")
def test_matches_lowercased_substring_rule(text: str) -> None:
    lowered = text.lower()
    expected = any(token in lowered for token in ("bot", "crawler", "spider", "headless"))
    assert is_bot(text) is expected
