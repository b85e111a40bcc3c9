"""Schemas of vaccine passports and their verification."""

import marshmallow as ma

from app.models.audit import REASON_MAX_LENGTH
from app.resources.common import StrictSchema
from app.resources.text import Text


class PassportSchema(ma.Schema):
    """An issued passport with its QR text."""

    uvci = ma.fields.String(required=True, metadata={"example": "URN:UVCI:01:VN:ABCDEFGHJKMNPQRSTUVWXYZ2#K"})
    hc1 = ma.fields.String(required=True, metadata={"description": "The QR text (HC1:...)"})
    issued_at = ma.fields.DateTime(required=True)
    expires_at = ma.fields.DateTime(required=True)
    kid = ma.fields.String(required=True, metadata={"description": "base64 of the signing DSC's kid"})


class PassportListItemSchema(ma.Schema):
    uvci = ma.fields.String(required=True)
    issued_at = ma.fields.DateTime(required=True)
    expires_at = ma.fields.DateTime(required=True)
    kid = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "valid or revoked"})
    current = ma.fields.Boolean(required=True, metadata={"description": "for the latest eligible dose"})
    superseded_by = ma.fields.String(allow_none=True)


class PassportListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PassportListItemSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class TrustedDscSchema(ma.Schema):
    kid = ma.fields.String(required=True)
    country = ma.fields.String(allow_none=True)
    certificate = ma.fields.String(required=True, metadata={"description": "base64 DER"})
    not_before = ma.fields.String(required=True)
    not_after = ma.fields.String(required=True)


class CscaSchema(ma.Schema):
    certificate = ma.fields.String(required=True, metadata={"description": "base64 DER"})


class TrustListSchema(ma.Schema):
    """Every DSC a verifier should trust, and the CSCAs that issued them."""

    dsc = ma.fields.List(ma.fields.Nested(TrustedDscSchema), required=True)
    csca = ma.fields.List(ma.fields.Nested(CscaSchema), required=True)


class HashListSchema(ma.Schema):
    UCI = ma.fields.List(ma.fields.String())
    COUNTRYCODEUCI = ma.fields.List(ma.fields.String())
    SIGNATURE = ma.fields.List(ma.fields.String())


class RevocationsSchema(HashListSchema):
    """Revoked passports: base64 16-byte SHA-256 prefixes by hash type (and by kid when split)."""

    kids = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(HashListSchema))


class VerifyRequestSchema(StrictSchema):
    hc1 = Text(8192, min_length=1, required=True,
               metadata={"description": "The QR text, starting with HC1:"})


class CheckSchema(ma.Schema):
    name = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "ok, failed or skipped"})
    reason = ma.fields.String(required=True)


class VerificationSchema(ma.Schema):
    """Each check, and what staff compare with an ID document."""

    valid = ma.fields.Boolean(required=True)
    reasons = ma.fields.List(ma.fields.String(), required=True)
    checks = ma.fields.List(ma.fields.Nested(CheckSchema), required=True)
    holder = ma.fields.Dict(allow_none=True)
    certificate = ma.fields.Dict(allow_none=True)


class RevokeSchema(StrictSchema):
    reason = Text(REASON_MAX_LENGTH, min_length=3, required=True, multiline=True)


class RevokedSchema(ma.Schema):
    uvci = ma.fields.String(required=True)
    status = ma.fields.String(required=True)
    revoked_at = ma.fields.DateTime(required=True)
    revocation_reason = ma.fields.String(required=True)


class SigningKeySchema(ma.Schema):
    kid = ma.fields.String(required=True)
    not_before = ma.fields.DateTime(required=True)
    not_after = ma.fields.DateTime(required=True)
    state = ma.fields.String(required=True)
