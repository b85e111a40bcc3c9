"""Schemas of staff login and identity."""

import marshmallow as ma

from app.models.staff import STAFF_ROLES
from app.schemas.base import StrictSchema
from app.schemas.text import Text


class StaffLoginSchema(StrictSchema):
    """Username, password and the current TOTP code."""

    username = Text(64, min_length=1, required=True)
    password = Text(256, min_length=1, required=True)
    totp_code = Text(
        6, required=True, validate=ma.validate.Regexp(r"^[0-9]{6}$", error="Six digits.")
    )


class StaffSchema(ma.Schema):
    """A staff member as shown to staff."""

    username = ma.fields.String(required=True)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(STAFF_ROLES))
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.DateTime(required=True)
    last_login_at = ma.fields.DateTime(allow_none=True)
