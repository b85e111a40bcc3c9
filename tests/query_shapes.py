"""The query-shape recorder: every query the application sends during the test run, judged against
the declared shard keys (``app/infra/shard_keys.py``).

A pymongo command listener, registered for the whole session, sees every command of every client
the tests build. A command belongs to the *application* when, walking its call stack outward, a
frame of a module under ``app/`` comes before any frame under ``tests/`` or ``bench/``: a test's own
fixture queries do not count, a service called by a test does. For each such ``find``,
``update``/``delete`` statement (its ``q``), ``findAndModify``, ``count``, ``distinct`` and
``aggregate`` (its leading ``$match``, else an empty filter), it records the *shape*: collection,
command, the filter's field names and operators with every value replaced by its type, and the
code location (``module:function`` of the nearest app frame), with the app frames further out.

At the end of the session, a shape on a sharded collection that does not pin the shard key fails
the run (exit status 1, the shapes printed with their code locations and counts) unless an entry
of ``SCATTER_ALLOWED`` names one of its app frames and its collection; so does a query to a
collection that is neither sharded nor declared unsharded. The run judges what it saw, so a subset
of the tests can only find fewer shapes. Every shape is written to a JSON file for inspection:
``HOSO_QUERY_SHAPES_OUT`` if set, else ``.pytest_cache/d/query_shapes/shapes.json`` (without the
cache plugin ``/tmp/hoso-query-shapes-<pid>.json``); the summary's last line names it.

Loaded by ``tests/conftest.py`` (``pytest_plugins``); not a test module.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest
from pymongo import monitoring

from app.infra import shard_keys

ROOT = Path(__file__).resolve().parents[1]
QUERY_COMMANDS = frozenset({"find", "update", "delete", "findAndModify", "count", "distinct", "aggregate"})
SYSTEM_DATABASES = frozenset({"admin", "config", "local"})
CHAIN_DEPTH = 8  # app frames kept per call stack (innermost first)


def filters_of(command_name: str, command: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The filters a query command carries (one per statement of an update or delete)."""
    if command_name == "find":
        return [command.get("filter") or {}]
    if command_name in ("update", "delete"):
        statements = command.get("updates" if command_name == "update" else "deletes") or []
        return [statement.get("q") or {} for statement in statements]
    if command_name in ("findAndModify", "count", "distinct"):
        return [command.get("query") or {}]
    if command_name == "aggregate":
        pipeline = command.get("pipeline") or [{}]
        return [pipeline[0].get("$match") or {}]  # no leading $match: every document, every shard
    return []


def shape_of(value: Any) -> Any:
    """A filter with every value replaced by the name of its type (keys and operators kept)."""
    if isinstance(value, Mapping):
        return {str(key): shape_of(item) for key, item in sorted(value.items(), key=lambda pair: str(pair[0]))}
    if isinstance(value, list | tuple):
        shapes: dict[str, Any] = {}
        for item in value:
            shaped = shape_of(item)
            shapes.setdefault(json.dumps(shaped, sort_keys=True), shaped)
        return list(shapes.values())
    return type(value).__name__


@dataclass
class Shape:
    """One query shape of the application, with the call stacks that sent it."""

    collection: str
    command: str
    filter: Any
    location: str
    pinned: bool
    count: int = 0
    callers: Counter[tuple[str, ...]] = field(default_factory=Counter)

    @property
    def filter_text(self) -> str:
        return json.dumps(self.filter, sort_keys=True, separators=(",", ":"))

    def as_json(self, scattering: bool) -> dict[str, Any]:
        return {
            "collection": self.collection, "command": self.command, "filter": self.filter,
            "location": self.location, "count": self.count,
            "sharded": shard_keys.is_sharded(self.collection), "pins_shard_key": self.pinned,
            "declared": shard_keys.is_declared(self.collection), "offending": scattering,
            "callers": [{"stack": list(chain), "count": count} for chain, count in self.callers.most_common()],
        }


class QueryShapeRecorder(monitoring.CommandListener):
    """Records the shapes of the queries that code under ``root/app`` sends (see the module docstring)."""

    def __init__(self, root: Path = ROOT) -> None:
        self._app = str(root / "app") + os.sep
        self._test_side = (str(root / "tests") + os.sep, str(root / "bench") + os.sep)
        self._kinds: dict[CodeType, str | None] = {}
        self._lock = threading.Lock()
        self.shapes: dict[tuple[str, str, str, str], Shape] = {}
        self.unattributed = 0
        self._ignored_databases: set[str] = set()

    def ignore_database(self, name: str) -> None:
        """Leave out the commands sent to database ``name`` (the recorder's own tests' scratch queries)."""
        self._ignored_databases.add(name)

    def _kind(self, code: CodeType) -> str | None:
        """``app`` (with its location), ``test``, or None (a library, or this recorder)."""
        kind = self._kinds.get(code, "")
        if kind == "":
            filename = code.co_filename
            if filename == __file__:
                kind = None
            elif filename.startswith(self._app):
                module = Path(filename[len(self._app):]).with_suffix("").as_posix().replace("/", ".")
                module = "app." + module.removesuffix(".__init__") if module != "__init__" else "app"
                kind = f"{module}:{code.co_qualname}"
            elif filename.startswith(self._test_side):
                kind = "test"
            else:
                kind = None
            self._kinds[code] = kind
        return kind

    def app_stack(self, frame: FrameType | None) -> tuple[str, ...] | None:
        """The app locations of a call stack, innermost first; None when test code comes first."""
        chain: list[str] = []
        while frame is not None and len(chain) < CHAIN_DEPTH:
            kind = self._kind(frame.f_code)
            if kind == "test":
                break
            if kind is not None and (not chain or chain[-1] != kind):
                chain.append(kind)
            frame = frame.f_back
        return tuple(chain) or None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        if name not in QUERY_COMMANDS or event.database_name in SYSTEM_DATABASES:
            return
        if event.database_name in self._ignored_databases:
            return
        collection = event.command.get(name)
        if not isinstance(collection, str):  # a database-level aggregate
            return
        chain = self.app_stack(sys._getframe(1))
        if chain is None:
            with self._lock:
                self.unattributed += 1
            return
        self.record(collection, name, filters_of(name, event.command), chain)

    def record(self, collection: str, command: str, filters: Iterable[Mapping[str, Any]],
               chain: tuple[str, ...]) -> None:
        """Count one command's filters under their shapes."""
        for query in filters:
            shaped = shape_of(query)
            key = (collection, command, json.dumps(shaped, sort_keys=True), chain[0])
            with self._lock:
                shape = self.shapes.get(key)
                if shape is None:
                    shape = self.shapes[key] = Shape(collection, command, shaped, chain[0],
                                                     shard_keys.pins_shard_key(collection, query))
                shape.count += 1
                shape.callers[chain] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to do: the shape is known when the command starts."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to do: a failed query was sent all the same."""


@dataclass(frozen=True)
class Offence:
    """A shape that fails the run, and why."""

    shape: Shape
    why: str  # "scatters" or "undeclared collection"
    callers: tuple[tuple[tuple[str, ...], int], ...]

    @property
    def count(self) -> int:
        return sum(count for _, count in self.callers)


def offences(shapes: Iterable[Shape],
             allowed: Iterable[shard_keys.ScatterAllowed] = shard_keys.SCATTER_ALLOWED) -> list[Offence]:
    """The shapes that fail the run: an undeclared collection, or a scatter no allowed location covers."""
    allowed_pairs = {(entry.location, entry.collection) for entry in allowed}
    found = []
    for shape in shapes:
        if not shard_keys.is_declared(shape.collection):
            found.append(Offence(shape, "undeclared collection", tuple(shape.callers.most_common())))
        elif not shape.pinned:
            callers = tuple((chain, count) for chain, count in shape.callers.most_common()
                            if not any((location, shape.collection) in allowed_pairs for location in chain))
            if callers:
                found.append(Offence(shape, "scatters", callers))
    return sorted(found, key=lambda offence: (offence.shape.location, offence.shape.collection,
                                              offence.shape.command, offence.shape.filter_text))


def write_shapes(path: Path, recorder: QueryShapeRecorder, found: list[Offence]) -> None:
    """Every recorded shape as JSON (offending ones marked), for inspection."""
    offending = {id(offence.shape) for offence in found}
    shapes = sorted(recorder.shapes.values(), key=lambda shape: (shape.collection, shape.location, shape.command))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "shapes": [shape.as_json(id(shape) in offending) for shape in shapes],
        "commands_not_from_the_app": recorder.unattributed,
    }, indent=1, default=str), encoding="utf-8")


def report_lines(found: list[Offence]) -> list[str]:
    """The offences as the terminal summary prints them, grouped by code location."""
    lines: list[str] = []
    location = None
    for offence in found:
        shape = offence.shape
        if shape.location != location:
            location = shape.location
            lines.append(f"{location}:")
        key = shard_keys.SHARD_KEYS.get(shape.collection)
        lines.append(f"  {shape.collection}.{shape.command} {shape.filter_text}  x{offence.count}  "
                     f"({offence.why}{f'; shard key {list(key)}' if key else ''})")
        for chain, count in offence.callers[:3]:
            if len(chain) > 1:
                lines.append(f"      via {' <- '.join(chain[1:])}  x{count}")
    return lines


RECORDER = pytest.StashKey[QueryShapeRecorder]()
OFFENCES = pytest.StashKey[list[Offence]]()
OUTPUT = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Listen to every MongoDB client the session builds (clients built later pick it up)."""
    recorder = QueryShapeRecorder()
    monitoring.register(recorder)
    config.stash[RECORDER] = recorder


def _output_path(config: pytest.Config) -> Path:
    if os.environ.get("HOSO_QUERY_SHAPES_OUT"):
        return Path(os.environ["HOSO_QUERY_SHAPES_OUT"])
    cache = getattr(config, "cache", None)  # absent under ``-p no:cacheprovider``
    if cache is not None:
        return cache.mkdir("query_shapes") / "shapes.json"
    return Path(f"/tmp/hoso-query-shapes-{os.getpid()}.json")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Judge the shapes seen; an offence fails the run."""
    recorder = session.config.stash.get(RECORDER, None)
    if recorder is None:
        return
    found = offences(recorder.shapes.values())
    path = _output_path(session.config)
    write_shapes(path, recorder, found)
    session.config.stash[OFFENCES] = found
    session.config.stash[OUTPUT] = path
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the offending shapes (after the test summary) and where every shape was written."""
    recorder = config.stash.get(RECORDER, None)
    if recorder is None or OUTPUT not in config.stash:
        return
    found = config.stash[OFFENCES]
    if found:
        terminalreporter.section("query shapes that do not pin the shard key", sep="=", red=True, bold=True)
        for line in report_lines(found):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"{len(found)} query shapes fail (app/infra/shard_keys.py: route them through a registry or name "
            "the shard key; SCATTER_ALLOWED only with a reason, never for a hot path)", red=True)
    terminalreporter.write_line(f"query shapes: {len(recorder.shapes)} recorded, written to {config.stash[OUTPUT]}")
