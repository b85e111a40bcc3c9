"""NDJSON bulk upload: read lines as they arrive, push them in batches, answer line by line.

The web layer hands over the request stream and streams back what :func:`run` yields.

Memory stays flat whatever the upload size: at most one batch of lines is held at a time, and
each batch's results are written out before the next batch is read.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from datetime import datetime
from typing import IO, Any

from pymongo.errors import PyMongoError

from app.services.audit import RequestContext
from app.services.ingest import records
from app.services.ingest.items import PushItem, PushResult, answer, parse_item, refused
from app.services.ingest.records import Prepared

log = logging.getLogger("hoso.bulk")
MAX_LINE_BYTES = 64 * 1024
BATCH_SIZE = 200


class _LineTooLong:
    """Marks a line over the limit (its bytes were skipped, not kept)."""


def read_lines(raw: IO[bytes]) -> Iterator[bytes | _LineTooLong]:
    """Lines of at most ``MAX_LINE_BYTES``; a longer line is skipped in chunks and reported."""
    # The WSGI stream is unbuffered: readline() on it would read one byte at a time.
    stream = io.BufferedReader(raw, buffer_size=MAX_LINE_BYTES) if isinstance(raw, io.RawIOBase) else raw
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:  # discard the rest of the over-long line without holding it
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield _LineTooLong()
            continue
        yield line


Loads = Callable[[bytes], Any]


def parse_line(raw: bytes, now: datetime, loads: Loads) -> PushItem | PushResult:
    """A validated push item, or the refusal of this line (checked against the app's clock ``now``).

    ``loads`` parses one line and raises ``ValueError`` for what it refuses (the web layer passes
    its hardened parser, ``app.web.json_body.loads``).
    """
    try:
        document = loads(raw)
    except ValueError as error:
        return refused(400, {"_line": [str(error)]})
    if not isinstance(document, dict):
        return refused(422, {"_line": ["Each line is one JSON object."]})
    kind = document.pop("type", None)
    source_id = document.pop("source_id", None)
    return parse_item(document, kind, source_id, now=now, channel="bulk")


def run(ctx: RequestContext, stream: IO[bytes], *, loads: Loads,
        writer_context: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
        clock: Callable[[], datetime] | None = None) -> Iterator[bytes]:
    """Answer one NDJSON line per input line, in order.

    Two stages overlap: while one batch is written to the database (a writer thread, mostly
    waiting on the database), the next is read, validated and prepared (its citizens found or
    created, its payloads hashed) in this thread.
    Batches are written one after another, in order, so a source id repeated in the upload is
    applied in order; at most two batches are held at a time. ``writer_context`` is entered
    around each write in the writer thread (the web layer passes its app context). Each line's
    clinical times are checked against ``clock()`` when the line is read (an upload can stream for
    minutes; default: the request's time).
    """

    def write(prepared: Prepared) -> list[PushResult]:
        with writer_context():
            return records.write(ctx, prepared)

    def submit(batch: list[_Entry]) -> Future[list[PushResult]]:
        items = [entry for _, entry in batch if isinstance(entry, PushItem)]
        try:
            prepared = records.prepare(ctx, items, known)
        except Exception as error:  # answered line by line, see _answers
            failed: Future[list[PushResult]] = Future()
            failed.set_exception(error)
            return failed
        return writer.submit(write, prepared)

    known = records.KnownCitizens()  # a patient's later lines reuse the citizen found for the first
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-writer") as writer:
        in_flight: tuple[list[_Entry], Future[list[PushResult]]] | None = None
        for batch in _batches(stream, clock or (lambda: ctx.now), loads):
            submitted = (batch, submit(batch))
            if in_flight is not None and not (yield from _answers(*in_flight)):
                yield from _answers(*submitted)  # written or not, it was sent to the database
                return  # stop reading: the lines not answered were not read
            in_flight = submitted
            if submitted[1].done() and submitted[1].exception() is not None:
                break  # preparing failed: nothing of this batch was written; stop reading
        if in_flight is not None:
            yield from _answers(*in_flight)


_Entry = tuple[int, PushItem | PushResult]


def _batches(stream: IO[bytes], clock: Callable[[], datetime], loads: Loads) -> Iterator[list[_Entry]]:
    """Numbered, parsed lines in batches of ``BATCH_SIZE`` (blank lines are not records)."""
    pending: list[_Entry] = []
    line_number = 0
    for raw in read_lines(stream):
        line_number += 1
        if isinstance(raw, _LineTooLong):
            pending.append((line_number, refused(413, {
                "_line": [f"A line may hold at most {MAX_LINE_BYTES} bytes."]})))
        elif raw.strip():
            pending.append((line_number, parse_line(raw, clock(), loads)))
        else:
            continue
        if len(pending) >= BATCH_SIZE:
            yield pending
            pending = []
    if pending:
        yield pending


def _answers(batch: list[_Entry], written: Future[list[PushResult]]) -> Generator[bytes, None, bool]:
    """The answer lines of one batch; returns False when its write failed.

    A batch whose write failed (the database went away) answers each of its records 503: it may
    or may not be stored, and pushes are idempotent, so the client sends those lines again. Lines
    refused by validation keep their own answers. Nothing is acknowledged that was not stored.
    """
    try:
        results = iter(written.result())
    except Exception as error:  # one batch's failure is answered, not raised
        log.error("bulk batch failed", exc_info=error)
        unavailable = isinstance(error, PyMongoError)
        failed = PushResult(503 if unavailable else 500,
                            problem="service-unavailable" if unavailable else "internal-error",
                            errors={"_line": ["Not confirmed: the upload stopped here. Send this line and the "
                                              "ones after it again (pushes are idempotent)."]})
        for line_number, entry in batch:
            yield _line({"line": line_number, **answer(failed if isinstance(entry, PushItem) else entry)})
        return False
    for line_number, entry in batch:
        yield _line({"line": line_number, **answer(next(results) if isinstance(entry, PushItem) else entry)})
    return True


def _line(answer: dict[str, Any]) -> bytes:
    return (json.dumps(answer, ensure_ascii=False) + "\n").encode()
