"""The opaque cursors that carry a page's position to the client and back, and keyset pages by one
unique key for the small admin lists (facilities, clients, the outbox by status).

A citizen's lists page through ``app.services.list_index`` and the audit trail by its numbers
(``app.services.audit_log``): a keyset filter "older than the cursor" matches the rest of a list,
and the embedded server reads every document a filter matches (see the list index's docstring).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from app.services.errors import InvalidInput


def by_key(query: Any, order: str, limit: int) -> tuple[list[Any], dict[str, str] | None]:
    """One page of ``query`` sorted by one unique key (``"code"``, ``"-id"``) and the next page's cursor.

    The caller filters ``query`` to the items after the previous cursor's key; the cursor of the
    next page is ``{key: str(last item's key)}`` (None on the last page).
    """
    items = list(query.order_by(order).limit(limit + 1))
    if len(items) <= limit:
        return items, None
    items = items[:limit]
    key = order.lstrip("-")
    return items, {key: str(getattr(items[-1], key))}


class InvalidCursor(InvalidInput):
    """A cursor this API did not make (or one made for another list): 422 on ``cursor``."""

    def __init__(self) -> None:
        super().__init__({"cursor": ["Not a valid cursor."]})
        self.detail = "The request has invalid fields; see errors."  # as every other 422 of a field


def encode_cursor(values: dict[str, str]) -> str:
    """Opaque cursor for keyset paging: URL-safe base64 of compact JSON."""
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, keys: tuple[str, ...]) -> dict[str, str]:
    """Decode a cursor made by :func:`encode_cursor` with exactly ``keys``; anything else is :class:`InvalidCursor`."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        values = None
    if not isinstance(values, dict) or set(values) != set(keys) or not all(
        isinstance(values[key], str) for key in keys
    ):
        raise InvalidCursor
    return values
