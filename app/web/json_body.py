"""Parsing JSON a client sends, within bounds: depth, number size, storable text.

Python's ``json`` accepts what a database cannot store or a program cannot survive: nesting a
thousand deep raises ``RecursionError``, an integer of over 4,300 digits raises ``ValueError``,
``1e999`` becomes infinity, ``NaN`` is accepted, and a lone surrogate escape (``"\\ud800"``)
becomes a string that UTF-8 cannot encode. :func:`loads` turns each of these into
:class:`JsonBodyError`, which the API answers with a 400 problem document. Every JSON body
(webargs, through ``HosoParser``) and every NDJSON line is parsed here.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask_smorest import abort
from webargs import core
from webargs.flaskparser import FlaskParser

from app.schemas.text import has_lone_surrogate

MAX_DEPTH = 32
# 2**63 has 19 digits: longer integers cannot be stored (BSON) and mean nothing to HoSo.
MAX_NUMBER_CHARS = 40
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonBodyError(ValueError):
    """A body that is not JSON HoSo takes; the message is safe to show to the client."""


def _parse_int(token: str) -> int:
    if len(token) > MAX_NUMBER_CHARS:
        raise JsonBodyError(f"A number may have at most {MAX_NUMBER_CHARS} characters.")
    return int(token)


def _parse_float(token: str) -> float:
    if len(token) > MAX_NUMBER_CHARS:
        raise JsonBodyError(f"A number may have at most {MAX_NUMBER_CHARS} characters.")
    value = float(token)
    if not math.isfinite(value):
        raise JsonBodyError("A number must be finite.")
    return value


def _parse_constant(token: str) -> Any:
    raise JsonBodyError(f"{token} is not JSON.")


def _depth_and_text_ok(value: Any, check_text: bool) -> None:
    """Walk ``value`` without recursion: nesting within ``MAX_DEPTH``, no lone surrogate."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth > MAX_DEPTH:
                raise JsonBodyError(f"JSON may nest at most {MAX_DEPTH} levels deep.")
            items = current.items() if isinstance(current, dict) else enumerate(current)
            for key, item in items:
                if check_text and isinstance(key, str) and has_lone_surrogate(key):
                    raise JsonBodyError("The body holds a lone surrogate escape, which is not text.")
                stack.append((item, depth + 1))
        elif check_text and isinstance(current, str) and has_lone_surrogate(current):
            raise JsonBodyError("The body holds a lone surrogate escape, which is not text.")


def loads(data: str | bytes) -> Any:
    """Parse one JSON document (bytes must be UTF-8) or raise :class:`JsonBodyError`."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError:
        raise JsonBodyError("The body is not UTF-8.") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                           parse_constant=_parse_constant)
    except RecursionError:
        raise JsonBodyError(f"JSON may nest at most {MAX_DEPTH} levels deep.") from None
    except JsonBodyError:
        raise
    except ValueError as error:  # json.JSONDecodeError included
        raise JsonBodyError(f"Not valid JSON: {getattr(error, 'msg', 'malformed')}.") from None
    # Both checks walk the document, so they run only when a cheap scan of the text says they may
    # find something: more brackets than the depth allows, or a surrogate escape.
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    escaped = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
    if deep or escaped:
        _depth_and_text_ok(value, escaped)
    return value


class HosoParser(FlaskParser):
    """webargs' Flask parser with bounded JSON: a body it refuses is a 400 problem document."""

    def _raw_load_json(self, req):  # type: ignore[no-untyped-def]
        if not core.is_json(req.mimetype):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return loads(data)
        except JsonBodyError as error:
            abort(400, message=str(error))
