"""Hypothesis strategies for hostile input that Python's parsers accept and later layers may not.

Every JSON value is produced as raw JSON text (bytes), never through ``json.dumps`` of a Python
object, because the interesting cases are exactly those that a Python object cannot express or that
``json.dumps`` would refuse to write: lone surrogates as ``\\ud800`` escapes, invalid UTF-8 bytes,
nesting tens of thousands deep, integers past the 4,300-digit conversion limit, ``1e999``, ``NaN``.
Path and query values are produced as percent-encoded text for the same reason.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

NAMES = ("Nguyễn Văn Nam", "Trần Thị Hoa", "Lê Đức Thọ", "Phạm Thị Ngọc Ánh", "Đặng Thùy Trâm",
         "Hồ Thị Hương", "Vũ Quốc Việt")
LOWER = "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
LETTERS = LOWER + LOWER.upper()
# C0 controls, DEL, C1 controls, and the separators and marks that break line-based formats
CONTROLS = ("".join(map(chr, range(0x00, 0x20))) + "\x7f" + "".join(map(chr, range(0x80, 0xA0)))
            + "\u2028\u2029\ufeff\u200b\u202e")
OPERATORS = ('{"$ne": ""}', '{"$gt": ""}', '{"$regex": ".*"}', '{"$where": "sleep(1000)"}',
             '{"$exists": true}', '{"$in": ["", null]}', '["$ne", ""]', '{"a.b": 1}', '{"$": 1}')
WRONG_TYPES = ("true", "false", "null", "0", "-1", "1.5", '""', "[]", "{}", "[[]]", '[""]', '"0"',
               '{"": ""}')
DEPTHS = (1_000, 3_000, 100_000)


@dataclass(frozen=True)
class Hostile:
    """One hostile JSON value: its kind (for reports) and its raw JSON text."""

    kind: str
    raw: bytes

    def __repr__(self) -> str:
        shown = self.raw[:60] + (b"..." if len(self.raw) > 60 else b"")
        return f"{self.kind}({shown!r}, {len(self.raw)} bytes)"


def as_json(text: str) -> bytes:
    """A JSON string literal, every non-ASCII character escaped (lone surrogates included)."""
    return json.dumps(text).encode("ascii")


def as_utf8_json(text: str) -> bytes:
    """A JSON string literal in UTF-8 (for text that can be encoded)."""
    return json.dumps(text, ensure_ascii=False).encode()


words = st.text(alphabet=LETTERS, min_size=1, max_size=12)
names = st.one_of(st.sampled_from(NAMES), st.lists(words, min_size=1, max_size=4).map(" ".join))


@st.composite
def with_surrogate(draw: st.DrawFn) -> str:
    """Text with one to three lone surrogates (high or low) at random places."""
    text = draw(names)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + chr(draw(st.integers(0xD800, 0xDFFF))) + text[at:]
    return text


@st.composite
def with_controls(draw: st.DrawFn) -> str:
    """Text with NUL, C0 or C1 control characters inside (or made only of them)."""
    text = draw(names)
    controls = draw(st.text(alphabet=CONTROLS, min_size=1, max_size=4))
    at = draw(st.integers(0, len(text)))
    return draw(st.sampled_from((text[:at] + controls + text[at:], controls, "\x00", text + "\x00")))


nfd = names.map(lambda text: unicodedata.normalize("NFD", text))


@st.composite
def invalid_utf8(draw: st.DrawFn) -> bytes:
    """A JSON string whose bytes are not UTF-8 (a stray continuation, an encoded surrogate, ...)."""
    bad = draw(st.sampled_from((b"\xff", b"\xfe\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xc0\xaf",
                                b"\xf4\x90\x80\x80", b"Nguy\xe1\xbb")))
    text = draw(names).encode()
    at = draw(st.integers(0, len(text)))
    return b'"' + text[:at].replace(b'"', b"") + bad + text[at:] + b'"'


def nested(depth: int, style: str) -> bytes:
    """JSON nested ``depth`` deep, built as text (json.dumps would recurse)."""
    if style == "array":
        return b"[" * depth + b"]" * depth
    if style == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'[{"a":' * (depth // 2) + b"1" + b"}]" * (depth // 2)


deep = st.builds(nested, st.one_of(st.sampled_from(DEPTHS), st.integers(1_000, 100_000)),
                 st.sampled_from(("array", "object", "mixed")))


@st.composite
def huge_integer(draw: st.DrawFn) -> bytes:
    """An integer of 5,000 to 50,000 digits (Python refuses to convert more than 4,300)."""
    digits = draw(st.one_of(st.just(5_000), st.integers(4_301, 50_000)))
    sign = draw(st.sampled_from((b"", b"-")))
    return sign + b"1" + b"0" * (digits - 1)


huge_float = st.sampled_from((b"1e999", b"-1e999", b"1e-999", b"1E400", b"-0.0", b"4.9e-325",
                              b"1" + b"0" * 400 + b".5", b"0." + b"0" * 5_000 + b"1"))
non_finite = st.sampled_from((b"NaN", b"Infinity", b"-Infinity", b"[NaN]", b'{"a": Infinity}'))
operator = st.sampled_from(OPERATORS).map(str.encode)
wrong_type = st.sampled_from(WRONG_TYPES).map(str.encode)
long_key = st.integers(1_000, 100_000).map(lambda n: b'{"' + b"k" * n + b'": 1}')
surrogate_key = with_surrogate().map(lambda key: b"{" + as_json(key) + b': "x"}')


def length_strategy(max_length: int | None, over: int) -> st.SearchStrategy[bytes]:
    """A string of letters ``over`` characters past ``max_length`` (100,000 when none is known)."""
    length = 100_000 if max_length is None else max_length + over
    return st.sampled_from((LETTERS[:29], "ễ", "Nam ")).map(
        lambda unit: as_utf8_json((unit * (length // len(unit) + 1))[:length].strip() or "a" * length))


def nfd_at_limit(max_length: int | None) -> st.SearchStrategy[bytes]:
    """Decomposed text exactly at the limit: fine by code points, over it once composed or not."""
    length = 200 if max_length is None else max_length
    unit = unicodedata.normalize("NFD", "Nguyễn ")
    return st.just(as_utf8_json((unit * (length // len(unit) + 1))[:length]))


# Kinds that the JSON parser meets before any field is looked at: one field stands for all.
PARSER_KINDS = ("invalid-utf8", "deep-nesting", "huge-integer", "huge-float", "nan-infinity", "long-key")


def value_strategies(max_length: int | None) -> dict[str, st.SearchStrategy[bytes]]:
    """Every hostile kind for one JSON field, as raw JSON text."""
    return {
        "lone-surrogate": with_surrogate().map(as_json),
        "invalid-utf8": invalid_utf8(),
        "nfd": nfd.map(as_utf8_json),
        "nfd-at-limit": nfd_at_limit(max_length),
        "control-chars": with_controls().map(as_json),
        "at-max-length": length_strategy(max_length, 0) if max_length else length_strategy(200, 0),
        "over-max-length": length_strategy(max_length, 1) if max_length else length_strategy(1_000, 0),
        "100k-string": length_strategy(None, 0),
        "deep-nesting": deep,
        "huge-integer": huge_integer(),
        "huge-float": huge_float,
        "nan-infinity": non_finite,
        "long-key": long_key,
        "surrogate-key": surrogate_key,
        "operator-object": operator,
        "wrong-type": wrong_type,
    }


def body_strategies() -> dict[str, st.SearchStrategy[bytes]]:
    """Hostile whole bodies (not a mutation of one field)."""
    return {
        "body-deep-nesting": deep,
        "body-huge-integer": huge_integer(),
        "body-nan": non_finite,
        "body-invalid-utf8": invalid_utf8().map(lambda text: b'{"a": ' + text + b"}"),
        "body-lone-surrogate": with_surrogate().map(lambda text: b'{"a": ' + as_json(text) + b"}"),
        "body-wrong-type": st.sampled_from((b"[]", b'""', b"null", b"0", b"[{}]", b"\xef\xbb\xbf{}")),
    }


# Extra top-level members added to a good body.
extra_member = {
    "extra-long-key": long_key.map(lambda obj: obj[1:-1]),
    "extra-surrogate-key": surrogate_key.map(lambda obj: obj[1:-1]),
    "extra-operator-key": st.sampled_from((b'"$where": "1"', b'"$set": {"locked": false}',
                                           b'"_id": {"$ne": null}', b'"__proto__": {}')),
}


def _pct(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def text_strategies(original: str) -> dict[str, st.SearchStrategy[str]]:
    """Hostile path-segment or query values, percent-encoded (bytes that no str can hold)."""
    return {
        "lone-surrogate": st.sampled_from(("%ED%A0%80", "%ED%BF%BF")).map(lambda s: original + s),
        "invalid-utf8": st.sampled_from(("%FF", "%C3", "%80%80", "%C0%AF", "%F4%90%80%80")).map(
            lambda s: original + s),
        "nfd": nfd.map(_pct),
        "control-chars": with_controls().map(_pct),
        "nul": st.just(original + "%00"),
        "over-long": st.sampled_from((300, 5_000, 100_000)).map(lambda n: "A" * n),
        "huge-integer": st.integers(4_301, 20_000).map(lambda n: "9" * n),
        "operator-text": st.sampled_from(('{"$ne": ""}', "$ne", "[$ne]", "a.b", "..", "%2e%2e%2f", "*",
                                          ".*", "null", "-1", "0", "1e999", "NaN")).map(
            lambda s: s if s.startswith("%") else _pct(s)),
    }


def json_with(body: Any, path: tuple[str | int, ...], raw: bytes) -> bytes:
    """The JSON text of ``body`` with the value at ``path`` replaced by ``raw``."""
    sentinel = "\u0001hostile-value\u0001"
    target = _copy(body)
    if not path:
        return raw
    holder = target
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = sentinel
    text = json.dumps(target, ensure_ascii=False).encode()
    marker = json.dumps(sentinel, ensure_ascii=False).encode()
    assert text.count(marker) == 1
    return text.replace(marker, raw)


def json_plus(body: dict[str, Any], member: bytes) -> bytes:
    """The JSON text of ``body`` with one more raw member."""
    text = json.dumps(body, ensure_ascii=False).encode()
    return text[:-1] + (b", " if body else b"") + member + b"}"


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def leaf_paths(body: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every member of ``body`` (containers and leaves), the first item of each list standing for all."""
    paths: list[tuple[str | int, ...]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            paths.append((*prefix, key))
            paths.extend(leaf_paths(value, (*prefix, key)))
    elif isinstance(body, list) and body:
        paths.append((*prefix, 0))
        paths.extend(leaf_paths(body[0], (*prefix, 0)))
    return paths


def dotted(path: tuple[str | int, ...]) -> str:
    """``("diagnoses", 0, "code")`` -> ``diagnoses[0].code``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out or "<body>"
