"""Schemas of vaccine passports, their verification, and the business rules verifiers apply."""

from datetime import UTC, datetime

import marshmallow as ma

from app.models.audit import REASON_MAX_LENGTH
from app.schemas.base import StrictSchema
from app.schemas.text import Text, TextError, clean_text

COUNTRY_CODE = ma.validate.Regexp(r"^[A-Z]{2}$", error="Two capital letters (ISO 3166-1 alpha-2), e.g. VN.")


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
    country = Text(2, validate=COUNTRY_CODE, load_default="VN",
                   metadata={"description": "Country of arrival whose business rules apply (default VN)"})
    at = ma.fields.AwareDateTime(
        validate=ma.validate.Range(datetime(2020, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)),
        metadata={"description": "Verification time (ISO 8601 with a time zone; default now): expiry and "
                                 "the rules' validation clock, e.g. the day of arrival"})


class CheckSchema(ma.Schema):
    name = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "ok, failed or skipped"})
    reason = ma.fields.String(required=True)


class RuleDescriptionSchema(ma.Schema):
    vi = ma.fields.String(required=True)
    en = ma.fields.String(required=True)


class RuleVerdictSchema(ma.Schema):
    """One business rule's verdict on the certificate."""

    id = ma.fields.String(required=True, metadata={"example": "VR-VN-0005"})
    version = ma.fields.String(required=True)
    country = ma.fields.String(required=True)
    type = ma.fields.String(required=True, metadata={"description": "Acceptance or Invalidation"})
    certificate_type = ma.fields.String(required=True)
    result = ma.fields.String(required=True, metadata={"description": "passed, failed or open (undecided)"})
    description = ma.fields.Nested(RuleDescriptionSchema, required=True)
    affected_fields = ma.fields.List(ma.fields.String(), required=True)
    reason = ma.fields.String(allow_none=True, metadata={"description": "why the rule is open"})


class VerificationSchema(ma.Schema):
    """Authenticity (each check), the rules of the country of arrival, and what staff compare with an ID."""

    valid = ma.fields.Boolean(required=True, metadata={"description": "authentic and every rule passed"})
    authentic = ma.fields.Boolean(required=True, metadata={
        "description": "signature, trust, expiry, key usage, schema and revocation checks all passed"})
    country = ma.fields.String(required=True, metadata={"description": "the country whose rules were applied"})
    validation_clock = ma.fields.AwareDateTime(required=True, metadata={
        "description": "the moment expiry and rules were judged at (`at` when given, else now)"})
    rules = ma.fields.List(ma.fields.Nested(RuleVerdictSchema), required=True)
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


class CertLogic(ma.fields.Field):
    """A CertLogic expression: JSON of strings (under the text rule), integers, booleans, arrays and
    one-key objects. Its operations are checked by ``passport.Rule`` (422 naming the rule)."""

    MAX_DEPTH = 28  # within the JSON body's bound of 32, with the rule and its list around it

    def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "CertLogic expression (https://github.com/ehn-dcc-development/eu-dcc-business-rules)")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):  # type: ignore[no-untyped-def]
        return self._clean(value, 0)

    def _clean(self, value, depth):  # type: ignore[no-untyped-def]
        if depth > self.MAX_DEPTH:
            raise ma.ValidationError("Nested too deep.")
        if isinstance(value, str):
            try:
                return clean_text(value)
            except TextError as error:
                raise ma.ValidationError(str(error)) from None
        if value is None or isinstance(value, (bool, int)) and not isinstance(value, float):
            return value
        if isinstance(value, list):
            return [self._clean(item, depth + 1) for item in value]
        if isinstance(value, dict) and len(value) == 1:
            (key, operands), = value.items()
            return {self._clean(key, depth + 1): self._clean(operands, depth + 1)}
        raise ma.ValidationError("Not a CertLogic expression (strings, integers, booleans, arrays, "
                                 "objects of one operation).")


class RuleDescriptionInputSchema(StrictSchema):
    lang = Text(8, min_length=2, required=True)
    desc = Text(2000, min_length=1, required=True)


class BusinessRuleSchema(StrictSchema):
    """A business rule in the EU DCC gateway's validation-rule format."""

    Identifier = Text(12, required=True, metadata={"example": "VR-VN-0001"})
    Type = Text(20, required=True, validate=ma.validate.OneOf(["Acceptance", "Invalidation"]))
    Country = Text(2, required=True, validate=COUNTRY_CODE)
    Version = Text(20, required=True, metadata={"example": "1.0.0"})
    SchemaVersion = Text(20, required=True, metadata={"example": "1.0.0"})
    Engine = Text(20, required=True, metadata={"example": "CERTLOGIC"})
    EngineVersion = Text(20, required=True, metadata={"example": "1.0.0"})
    CertificateType = Text(20, required=True,
                           validate=ma.validate.OneOf(["General", "Test", "Vaccination", "Recovery"]))
    Description = ma.fields.List(ma.fields.Nested(RuleDescriptionInputSchema), required=True,
                                 validate=ma.validate.Length(1, 30))
    ValidFrom = Text(40, required=True, metadata={"example": "2021-07-01T00:00:00+07:00"})
    ValidTo = Text(40, required=True, metadata={"example": "2031-01-01T00:00:00+07:00"})
    AffectedFields = ma.fields.List(Text(100, min_length=1), required=True, validate=ma.validate.Length(0, 50))
    Logic = CertLogic(required=True)


class RuleSetReplaceSchema(StrictSchema):
    rules = ma.fields.List(ma.fields.Nested(BusinessRuleSchema), required=True,
                           validate=ma.validate.Length(0, 500),
                           metadata={"description": "The country's whole rule set (every version of every rule)"})


class RuleSetSchema(ma.Schema):
    """A country's rule set as stored."""

    country = ma.fields.String(required=True)
    rules = ma.fields.List(ma.fields.Dict(), required=True, metadata={"description": "gateway-format rules"})
    revision = ma.fields.Integer(required=True)
    updated_at = ma.fields.DateTime(allow_none=True)
    source = ma.fields.String(allow_none=True, metadata={"description": "shipped, cli or admin"})


class CountryRulesSchema(ma.Schema):
    rules = ma.fields.List(ma.fields.Dict(), required=True)
    revision = ma.fields.Integer(required=True)
    updated_at = ma.fields.DateTime(allow_none=True)


class RulesDocumentSchema(ma.Schema):
    """Business rules by country of arrival, and the value sets they name (id -> codes)."""

    countries = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(CountryRulesSchema), required=True)
    valueSets = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()), required=True)
