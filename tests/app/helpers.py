"""Helpers of the app tests: what a block sent to one collection, as the query-shape recorder saw it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.query_shapes import RECORDER, Shape


def shapes_sent(config: pytest.Config, collection: str, action: Callable[[], object]) -> list[Shape]:
    """Run ``action``; the shapes of the app's queries to ``collection`` it sent (one per shape)."""
    recorder = config.stash[RECORDER]
    before = {key: shape.count for key, shape in recorder.shapes.items()}
    action()
    return [shape for key, shape in recorder.shapes.items()
            if key[0] == collection and shape.count > before.get(key, 0)]


def describe(shapes: list[Shape]) -> list[str]:
    """The shapes as ``location command filter`` lines, for an assertion message."""
    return [f"{shape.location} {shape.command} {shape.filter_text}" for shape in shapes]
