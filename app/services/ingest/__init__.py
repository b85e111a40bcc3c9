"""Ingestion: how facility records get in, by every channel, for every kind.

- ``kinds``: the table of record kinds (model, push schema, content fields, hooks) that every
  channel, route, export and index creation reads.
- ``items``: what the channels share (``PushItem``, ``PushResult``, ``parse_item``, the source
  id rule, the per-item answer).
- ``records``: the batch path of all three channels (PUT, NDJSON, XML 130): citizens found or
  created, idempotency keys, creates and replacements, audit events, notifications.
- ``writes``: ``RecordWrites``, the one way to write a health collection (it keeps the
  citizens' list indexes, whose ``version`` keys the timeline cache).
- ``bulk``: the NDJSON stream (read, batch, answer line by line); ``xml130`` (the parser) and
  ``xml130_import`` (envelope -> visits).

Importing this package imports nothing else (its modules are imported by name).
"""
