"""What encoding a document for MongoDB raises when a value cannot be stored.

A module of its own (no Flask, no connection), so services can catch it without importing the
web-facing half of ``app.infra.db``.
"""

from __future__ import annotations

import bson

# A lone surrogate in a string, an integer over 64 bits, a type BSON does not know.
UNSTORABLE = (UnicodeEncodeError, OverflowError, bson.errors.InvalidDocument)
