"""The per-citizen list index: the sorted keys of every paged list of one citizen.

A read model kept by ``app.services.list_index`` (the only code that writes it): it is what makes a
page of a citizen's list cost the page, not the citizen's record or the database (see there).
"""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow


class ListIndex(me.Document):
    """One citizen's lists: per list name, the keys of its items (``list_index.key``), packed in
    one binary value, sorted (``list_index.PackedKeys``; older documents hold an array of keys).

    ``_id`` is the citizen id (so the document shards with the citizen). ``version`` grows with
    every change and keys the app's page cache.
    """

    id = me.ObjectIdField(primary_key=True)
    version = me.IntField(default=0)
    built_at = me.DateTimeField(default=utcnow)
    # list name -> packed keys (a plain DictField would load bytes as a list of ints)
    lists = me.DictField(field=me.BinaryField())
    # list name -> each item's row, in the order of its keys (lists that keep rows: the timeline;
    # ``list_index.PackedRows``)
    rows = me.DictField(field=me.BinaryField())
    # list name -> items lately removed, with the record version that removed them (lists that keep
    # rows; ``list_index.GONE_ENTRY``)
    gone = me.DictField(field=me.BinaryField())
    counters = me.DictField()  # e.g. the inbox's unread count, kept beside its list

    meta = {"collection": "list_index"}


class RecentBuild(me.Document):
    """A citizen whose list index was built lately (see ``list_index.build``): read by a batch
    write that began before the build, so it can add what the build could not yet see."""

    id = me.ObjectIdField(primary_key=True)  # the citizen id
    at = me.DateTimeField(required=True)

    meta = {"collection": "list_index_builds",
            "indexes": [{"fields": ["at"], "expireAfterSeconds": 86400}]}
