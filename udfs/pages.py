"""Page-URL normalisation: pure functions, no Flink dependency."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["distinct_pages", "normalize_page"]


def normalize_page(page: str) -> str:
    """Normalise a page URL so that the same page always yields the same string.

    The result is ``scheme.lower() + "://" + host.lower() + (path.rstrip("/") or "/")``,
    with the parts taken from :func:`urllib.parse.urlsplit`. The query string and fragment
    are dropped. "host" is the netloc with any ``user:pass@`` userinfo removed; a port is
    kept (``http://A.com:8080/x`` -> ``http://a.com:8080/x``). Path case is preserved.

    It never raises for any ``str``. Odd input is handled as follows:

    * No scheme and no ``//``: urlsplit puts everything in the path, so the scheme and host
      are empty: ``"shop.example.com/cart"`` -> ``"://shop.example.com/cart"`` and
      ``"/cart/"`` -> ``":///cart"``.
    * Empty string: ``""`` -> ``":///"``.
    * Scheme-relative ``//Host/x`` -> ``"://host/x"``.
    * Strings urlsplit rejects with ``ValueError`` (an unbalanced IPv6 bracket such as
      ``"http://[::1"``, or a netloc that changes under NFKC normalisation) are returned
      unchanged, so each still counts as one distinct page.

    The function is idempotent for well-formed ``scheme://host/path`` URLs, not for every
    odd input (``":///"`` itself has no scheme for urlsplit and becomes ``"://:"``).
    """
    try:
        parts = urlsplit(page)
    except ValueError:
        return page
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme.lower()}://{host.lower()}{parts.path.rstrip('/') or '/'}"


def distinct_pages(pages: Iterable[str]) -> int:
    """Return the number of distinct pages in ``pages`` after :func:`normalize_page`."""
    return len({normalize_page(page) for page in pages})
