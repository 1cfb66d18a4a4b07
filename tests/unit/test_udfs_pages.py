"""normalize_page and distinct_pages: the fixed contract, by example and as properties."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from udfs.pages import distinct_pages, normalize_page


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("HTTPS://Shop.Example.COM/Cart/?id=1#top", "https://shop.example.com/Cart"),
        ("http://a.com", "http://a.com/"),
        ("http://a.com///", "http://a.com/"),
        ("http://a.com/", "http://a.com/"),
        ("http://a.com/Some/Path/", "http://a.com/Some/Path"),
        ("http://a.com?x=1", "http://a.com/"),
        ("http://a.com#frag", "http://a.com/"),
        ("http://User:Pass@A.com:8080/x/", "http://a.com:8080/x"),
        ("http://[::1]:80/x", "http://[::1]:80/x"),
        # Odd input, as documented in normalize_page's docstring.
        ("", ":///"),
        ("shop.example.com/cart", "://shop.example.com/cart"),
        ("//Host/x", "://host/x"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_examples(page: str, expected: str) -> None:
    assert normalize_page(page) == expected


def test_distinct_pages_counts_normalised_pages() -> None:
    pages = [
        "https://shop.example.com/cart",
        "HTTPS://Shop.Example.COM/cart/?id=1",
        "https://shop.example.com/cart#top",
        "https://shop.example.com/Cart",
        "http://shop.example.com/cart",
    ]
    assert distinct_pages(pages) == 3
    assert distinct_pages([]) == 0
    assert distinct_pages(iter(["http://a.com", "http://a.com/"])) == 1


@given(st.text())
def test_never_raises_for_any_text(text: str) -> None:
    assert isinstance(normalize_page(text), str)


# Well-formed URLs only: for arbitrary text the properties below do not hold and are not
# part of the contract (e.g. ":///" has no scheme for urlsplit and becomes "://:", and
# "http://[::1" is returned unchanged, fragment and all).
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_schemes = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    st.text(alphabet=_ALNUM + "+-.", max_size=8),
)
_labels = st.text(alphabet=_ALNUM + "-", min_size=1, max_size=12)
_hosts = st.builds(
    lambda labels, port: ".".join(labels) + port,
    st.lists(_labels, min_size=1, max_size=4),
    st.one_of(st.just(""), st.integers(0, 65535).map(lambda p: f":{p}")),
)
_userinfo = st.one_of(
    st.just(""),
    st.text(alphabet=_ALNUM + "-._~!$&'()*+,;=:%", max_size=10).map(lambda u: u + "@"),
)
# RFC 3986 pchar plus "/"; "?" and "#" would start the query/fragment.
_path_chars = _ALNUM + "-._~%!$&'()*+,;=:@/"
_paths = st.one_of(st.just(""), st.text(alphabet=_path_chars, max_size=30).map(lambda p: "/" + p))
_query_chars = _path_chars + "?"
_queries = st.one_of(st.just(""), st.text(alphabet=_query_chars, max_size=20).map("?".__add__))
_fragments = st.one_of(
    st.just(""), st.text(alphabet=_query_chars + "#", max_size=20).map("#".__add__)
)
_bases = st.builds(
    lambda scheme, userinfo, host, path: f"{scheme}://{userinfo}{host}{path}",
    _schemes,
    _userinfo,
    _hosts,
    _paths,
)
_urls = st.builds(lambda base, q, f: base + q + f, _bases, _queries, _fragments)


@given(_urls)
def test_idempotent(url: str) -> None:
    once = normalize_page(url)
    assert normalize_page(once) == once


@given(_bases, _queries, _fragments)
def test_query_and_fragment_never_affect_result(base: str, query: str, fragment: str) -> None:
    assert normalize_page(base + query + fragment) == normalize_page(base)


@given(_urls)
def test_scheme_and_host_are_lower_case_and_path_case_kept(url: str) -> None:
    result = normalize_page(url)
    scheme, sep, rest = result.partition("://")
    assert sep == "://"
    host, slash, path = rest.partition("/")
    assert slash == "/"
    assert scheme == scheme.lower()
    assert host == host.lower()
    assert "@" not in host
    assert "/" + path == (urlsplit(url).path.rstrip("/") or "/")
