"""Workarounds that exist only for the embedded development database (SecantusDB).

Production runs on MongoDB, where none of these is needed; each is harmless there. Keeping them
here, under names, lets a reader of production code see which lines exist for the development
server and what each costs or prevents (measurements in ``../shared/FIELD-NOTES.md``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# SecantusDB checks each candidate of an ``$in`` against the whole list: 200 values cost 30 ms
# in one query and 12 ms in chunks of 25 (measured; MongoDB is indifferent).
IN_CHUNK = 25


def in_chunks(values: Sequence[T]) -> Iterator[list[T]]:
    """``values`` in slices of ``IN_CHUNK``, for ``$in`` queries and updates."""
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start:start + IN_CHUNK])
