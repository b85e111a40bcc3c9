"""Business rules for vaccine passports: each country of arrival's rule set, in the EU gateway's format."""

from __future__ import annotations

import mongoengine as me


class PassportRuleSet(me.Document):
    """One country's business rules (every version of every rule), replaced whole by one update.

    Each rule is kept as its JSON text: CertLogic operators (``===``, ``!``, ``var``) are not field
    names a document should carry, and verifiers get the rule back byte for byte as it was imported.
    """

    country = me.StringField(primary_key=True, regex=r"^[A-Z]{2}$")
    rules = me.ListField(me.StringField(), default=list)
    revision = me.IntField(default=0)
    updated_at = me.DateTimeField()
    updated_by = me.StringField(max_length=200)
    source = me.StringField(max_length=40)  # shipped, cli, admin

    meta = {"collection": "passport_rule_sets"}
