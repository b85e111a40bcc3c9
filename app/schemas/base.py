"""Base schema and fields of every input contract (no web framework: services load these too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

import marshmallow as ma

from app.clock import utcnow

_NOW: ContextVar[datetime | None] = ContextVar("schema_now", default=None)


@contextmanager
def app_clock(now: datetime) -> Iterator[None]:
    """Load schemas against ``now`` (the request's time, from the app's clock): every validator
    that compares with "now" reads :func:`schema_now`, so a test or tool that moves the app's clock
    moves the validators too."""
    token = _NOW.set(now)
    try:
        yield
    finally:
        _NOW.reset(token)


def schema_now() -> datetime:
    """"Now" for a validator: the app clock's time when loading inside :func:`app_clock`, else UTC now."""
    return _NOW.get() or utcnow()


class StrictSchema(ma.Schema):
    """Input schema: unknown fields are an error (422), never silently stored."""

    class Meta:
        unknown = ma.RAISE


class WholeNumber(ma.fields.Integer):
    """An integer given as ``2`` or ``2.0`` (both are JSON Schema integers); never a string, bool or 2.5."""

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid")
        return super()._deserialize(int(value), attr, data, **kwargs)
