"""Schemas of the health check."""

import marshmallow as ma


class HealthSchema(ma.Schema):
    """Liveness and database reachability."""

    status = ma.fields.String(required=True, metadata={"description": "`ok` or `unavailable`"})
    database = ma.fields.String(required=True, metadata={"description": "`up` or `down`"})
    version = ma.fields.String(required=True)
