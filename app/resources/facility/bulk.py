"""NDJSON bulk upload: read lines as they arrive, push them in batches, answer line by line.

Memory stays flat whatever the upload size: at most one batch of lines is held at a time, and
each batch's results are written out before the next batch is read.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any

import marshmallow as ma
from flask import current_app
from pymongo.errors import PyMongoError

from app.resources.facility.records_schemas import ImmunizationPushSchema, VisitPushSchema
from app.services import records
from app.services.audit import RequestContext
from app.services.records import SOURCE_ID, Prepared, PushItem, PushResult
from app.web import json_body

log = logging.getLogger("hoso.bulk")
MAX_LINE_BYTES = 64 * 1024
BATCH_SIZE = 200
SCHEMAS = {"visit": VisitPushSchema(), "immunization": ImmunizationPushSchema()}


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


def parse_line(raw: bytes) -> PushItem | dict[str, Any]:
    """A validated push item, or the error result of this line."""
    try:
        document = json_body.loads(raw)
    except json_body.JsonBodyError as error:
        return {"status": 400, "errors": {"_line": [str(error)]}}
    if not isinstance(document, dict):
        return {"status": 422, "errors": {"_line": ["Each line is one JSON object."]}}
    kind = document.pop("type", None)
    source_id = document.pop("source_id", None)
    errors: dict[str, Any] = {}
    if not isinstance(kind, str) or kind not in SCHEMAS:
        errors["type"] = ["`visit` or `immunization`."]
    if not isinstance(source_id, str) or not SOURCE_ID.match(source_id):
        errors["source_id"] = ["1-64 letters, digits, '.', '_', ':', '/' or '-'."]
    if errors:
        return {"status": 422, "errors": errors}
    try:
        data = SCHEMAS[kind].load(document)
    except ma.ValidationError as error:
        return {"status": 422, "errors": error.normalized_messages()}
    return PushItem(kind, source_id, data, channel="bulk")


def run(ctx: RequestContext, stream: IO[bytes]) -> Iterator[bytes]:
    """Answer one NDJSON line per input line, in order.

    Two stages overlap: while one batch is written to the database (a writer thread, mostly
    waiting on the database), the next is read, validated and prepared (its citizens found or
    created, its payloads hashed) in this thread.
    Batches are written one after another, in order, so a source id repeated in the upload is
    applied in order; at most two batches are held at a time.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def write(prepared: Prepared) -> list[PushResult]:
        with app.app_context():
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
        for batch in _batches(stream):
            submitted = (batch, submit(batch))
            if in_flight is not None and not (yield from _answers(*in_flight)):
                yield from _answers(*submitted)  # written or not, it was sent to the database
                return  # stop reading: the lines not answered were not read
            in_flight = submitted
            if submitted[1].done() and submitted[1].exception() is not None:
                break  # preparing failed: nothing of this batch was written; stop reading
        if in_flight is not None:
            yield from _answers(*in_flight)


_Entry = tuple[int, PushItem | dict[str, Any]]


def _batches(stream: IO[bytes]) -> Iterator[list[_Entry]]:
    """Numbered, parsed lines in batches of ``BATCH_SIZE`` (blank lines are not records)."""
    pending: list[_Entry] = []
    line_number = 0
    for raw in read_lines(stream):
        line_number += 1
        if isinstance(raw, _LineTooLong):
            pending.append((line_number, {"status": 413, "errors": {
                "_line": [f"A line may hold at most {MAX_LINE_BYTES} bytes."]}}))
        elif raw.strip():
            pending.append((line_number, parse_line(raw)))
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
        failed = {"status": 503 if unavailable else 500,
                  "problem": "service-unavailable" if unavailable else "internal-error",
                  "errors": {"_line": ["Not confirmed: the upload stopped here. Send this line and the "
                                       "ones after it again (pushes are idempotent)."]}}
        for line_number, entry in batch:
            yield _line({"line": line_number, **(failed if isinstance(entry, PushItem) else entry)})
        return False
    for line_number, entry in batch:
        if isinstance(entry, PushItem):
            result = next(results)
            answer: dict[str, Any] = {"line": line_number, "status": result.status}
            if result.id:
                answer.update(id=result.id, version=result.version, outcome=result.outcome)
            if result.problem:
                answer["problem"] = result.problem
            if result.errors:
                answer["errors"] = result.errors
        else:
            answer = {"line": line_number, **entry}
        yield _line(answer)
    return True


def _line(answer: dict[str, Any]) -> bytes:
    return (json.dumps(answer, ensure_ascii=False) + "\n").encode()
