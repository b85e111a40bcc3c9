"""Base schema and fields of every input contract (no web framework: services load these too)."""

from __future__ import annotations

import marshmallow as ma


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
