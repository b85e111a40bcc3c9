"""The one rule for text a client sends: storable Unicode, NFC, no control characters, a bounded length.

Every string of every input (JSON bodies, query parameters, form fields, NDJSON lines, QĐ 130 XML
fields) is loaded by a marshmallow schema, and every string field of those schemas is a
:class:`Text` (``require_text_fields`` refuses a schema with any other string field when a route
declares it). So a string the database cannot store (a lone surrogate such as ``"\\ud800"`` is
valid JSON but not UTF-8), a name in decomposed form (some hospital systems send NFD), or a
control character never gets past the edge, and every field's length is one the model stores.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import marshmallow as ma

# C0 and C1 control characters and DEL, and lone surrogates (U+D800-U+DFFF cannot be UTF-8).
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, LF and CR allowed

# The same rules as JSON Schema patterns (ECMA-262) for the OpenAPI document.
SINGLE_LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
MULTILINE_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
SURROGATE_MESSAGE = "Not valid Unicode text (a lone surrogate cannot be stored)."
CONTROL_MESSAGE = "Control characters are not allowed here."


class TextError(ValueError):
    """A string that breaks the text rule; the message says which part."""


def has_lone_surrogate(value: str) -> bool:
    """True when ``value`` holds a code point that no UTF-8 text can carry."""
    return _SURROGATE.search(value) is not None


def clean_text(value: str, *, multiline: bool = False) -> str:
    """``value`` in NFC, or :class:`TextError` for a lone surrogate or a control character.

    ``multiline`` allows tab, line feed and carriage return (free-text notes); nothing else of
    the control ranges is ever allowed.
    """
    if has_lone_surrogate(value):
        raise TextError(SURROGATE_MESSAGE)
    if (_CONTROL_EXCEPT_LINES if multiline else _CONTROL).search(value):
        raise TextError(CONTROL_MESSAGE)
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return value


class Text(ma.fields.String):
    """A string field under the text rule, with a maximum length (after NFC normalisation).

    ``min_length`` defaults to 0; ``multiline`` allows line breaks and tabs. Validators given in
    ``validate`` run on the normalised value.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, multiline: bool = False,
                 **kwargs: Any) -> None:
        validators = kwargs.pop("validate", None)
        chain = [ma.validate.Length(min_length, max_length)]
        if validators is not None:
            chain += list(validators) if isinstance(validators, list | tuple) else [validators]
        if not any(isinstance(v, ma.validate.Regexp | ma.validate.OneOf) for v in chain):
            # Tell the OpenAPI document (and clients generated from it) which characters are refused.
            metadata = kwargs.setdefault("metadata", {})
            metadata.setdefault("pattern", MULTILINE_PATTERN if multiline else SINGLE_LINE_PATTERN)
        super().__init__(validate=chain, **kwargs)
        self.max_length = max_length
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return clean_text(text, multiline=self.multiline)
        except TextError as error:
            raise ma.ValidationError(str(error)) from None


class EmailText(Text):
    """An e-mail address under the text rule (at most 254 characters, RFC 5321)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("format", "email")  # as ma.fields.Email documents it
        super().__init__(254, validate=ma.validate.Email(), **kwargs)


def _inner_fields(field: ma.fields.Field) -> list[ma.fields.Field]:
    inner: list[ma.fields.Field] = []
    if isinstance(field, ma.fields.List):
        inner.append(field.inner)
    if isinstance(field, ma.fields.Tuple):
        inner += list(field.tuple_fields)
    if isinstance(field, ma.fields.Dict):
        inner += [f for f in (field.key_field, field.value_field) if f is not None]
    return inner


def require_text_fields(schema: ma.Schema | type[ma.Schema], _seen: set[type] | None = None) -> None:
    """Raise ``TypeError`` when an input schema (or one nested in it) has a string field that is
    not a :class:`Text`, or a field that takes arbitrary values (``Raw``, a ``Dict`` without
    typed values)."""
    cls = schema if isinstance(schema, type) else type(schema)
    seen = _seen if _seen is not None else set()
    if cls in seen:
        return
    seen.add(cls)
    for name, field in cls._declared_fields.items():
        pending = [field]
        while pending:
            current = pending.pop()
            if isinstance(current, ma.fields.String) and not isinstance(current, Text):
                raise TypeError(f"{cls.__name__}.{name}: input strings must be app.schemas.text.Text fields")
            if type(current) is ma.fields.Raw or (
                    isinstance(current, ma.fields.Dict) and current.value_field is None):
                raise TypeError(f"{cls.__name__}.{name}: input fields must have a type")
            if isinstance(current, ma.fields.Nested):  # Pluck too
                require_text_fields(current.schema, seen)
            pending += _inner_fields(current)
