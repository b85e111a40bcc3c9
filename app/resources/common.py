"""Schemas and helpers shared by resource groups: strict input, pages (cursors: ``app.services.paging``)."""

from __future__ import annotations

import flask_smorest
import marshmallow as ma

from app.schemas.base import StrictSchema
from app.schemas.text import Text, require_text_fields
from app.web.json_body import HosoParser

MAX_PAGE_SIZE = 100


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's blueprint: bounded JSON, the text rule, one schema instance per route.

    Every argument schema must take its strings as ``Text`` fields (checked when the route is
    declared, so a schema that would let unstorable text through cannot be served). Given a schema
    class, webargs builds an instance (copying every field) on each request; one built here serves
    them all, as marshmallow schemas keep no state between loads.
    """

    ARGUMENTS_PARSER = HosoParser()

    def arguments(self, schema, **kwargs):  # type: ignore[no-untyped-def]
        require_text_fields(schema)
        return super().arguments(schema() if isinstance(schema, type) else schema, **kwargs)


class PageArgsSchema(StrictSchema):
    """``limit`` (1-100) and an opaque ``cursor`` from the previous page."""

    limit = ma.fields.Integer(
        load_default=20, validate=ma.validate.Range(1, MAX_PAGE_SIZE),
        metadata={"description": "Page size (1-100)"},
    )
    cursor = Text(
        256, load_default=None,
        metadata={"description": "Opaque cursor from `next_cursor` of the previous page"},
    )


def page_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A list answer ``{"items": [...], "next_cursor": str | null}``."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(allow_none=True, required=True),
        },
        name=name,
    )


class Always(ma.fields.String):
    """An answer field whose value is fixed (``token_type``: ``Bearer``), documented as a plain string."""

    def __init__(self, value: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.value = value

    def serialize(self, attr, obj, accessor=None, **kwargs):  # type: ignore[no-untyped-def]
        return self.value


class AccessTokenSchema(ma.Schema):
    """A bearer token answer (dumps an ``IssuedToken``)."""

    access_token = ma.fields.String(required=True, attribute="token")
    token_type = Always("Bearer", required=True, metadata={"description": "Always `Bearer`"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds"})
