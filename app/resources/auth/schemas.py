"""Schemas of citizen activation, sign-in and sessions."""

import marshmallow as ma

from app.resources.common import Always
from app.schemas.base import StrictSchema
from app.schemas.citizen_fields import national_id_field
from app.schemas.text import Text

_totp_code = ma.validate.Regexp(r"^[0-9]{6}$", error="Six digits.")
_device_label = Text(
    100, min_length=1,
    metadata={"description": "A name for this device, shown in the session list",
              "example": "Pixel 8"},
)


class ActivateSchema(StrictSchema):
    """Redeem the activation code and choose a password."""

    national_id = national_id_field()
    activation_code = Text(32, min_length=1, required=True,
                                       metadata={"example": "K7MPQ-3XRT9"})
    password = Text(
        128, min_length=12, required=True,
        metadata={"description": "12-128 characters, not a common password, not the CCCD"},
    )


class EnrollmentSchema(ma.Schema):
    """Add the TOTP secret to an authenticator app, then confirm with a code."""

    enrollment_token = ma.fields.String(required=True)
    totp_secret = ma.fields.String(required=True, metadata={"description": "Base32, 160 bits"})
    totp_uri = ma.fields.String(required=True, metadata={"description": "otpauth:// URI"})


class ConfirmSchema(StrictSchema):
    """Prove the authenticator app works."""

    enrollment_token = Text(4096, min_length=1, required=True)
    totp_code = Text(6, required=True, validate=_totp_code)
    device_label = _device_label


class TokensSchema(ma.Schema):
    """An access token (15 minutes) and a refresh token (rotated on every use): dumps an ``IssuedSession``."""

    access_token = ma.fields.String(required=True)
    refresh_token = ma.fields.String(required=True)
    token_type = Always("Bearer", required=True)
    expires_in = ma.fields.Integer(required=True)


class ActivatedSchema(TokensSchema):
    """Tokens plus ten single-use recovery codes (shown once): dumps an ``Activated``."""

    access_token = ma.fields.String(required=True, attribute="session.access_token")
    refresh_token = ma.fields.String(required=True, attribute="session.refresh_token")
    expires_in = ma.fields.Integer(required=True, attribute="session.expires_in")
    recovery_codes = ma.fields.List(ma.fields.String(), required=True)


class CredentialsSchema(StrictSchema):
    """Password plus a TOTP code, or password plus one recovery code (exactly one of the two)."""

    # Documented as a JSON Schema `oneOf` by app.web.api.refine_spec.
    ONE_OF_REQUIRED = (("totp_code",), ("recovery_code",))

    password = Text(1024, min_length=1, required=True)
    totp_code = Text(6, validate=_totp_code)
    recovery_code = Text(32, min_length=1)

    @ma.validates_schema
    def one_second_factor(self, data, **kwargs):  # type: ignore[no-untyped-def]
        if ("totp_code" in data) == ("recovery_code" in data):
            raise ma.ValidationError("Give either totp_code or recovery_code.", "totp_code")


class LoginSchema(CredentialsSchema):
    """Sign in: the national id, password plus a TOTP code or one recovery code."""

    national_id = national_id_field()
    device_label = _device_label
    device_proof = Text(
        4096, min_length=1,
        metadata={"description": "The last refresh token this device held for this account, even of an "
                                 "ended session: the device then counts as known (see the README)."},
    )


class ReauthenticateSchema(CredentialsSchema):
    """The signed-in citizen's password plus a TOTP code or one recovery code."""


class ReauthenticatedSchema(ma.Schema):
    """When this session proved password and code; sensitive changes are allowed until then + 5 minutes."""

    authenticated_at = ma.fields.AwareDateTime(required=True)
    valid_for_seconds = ma.fields.Integer(required=True)


class RefreshSchema(StrictSchema):
    """The current refresh token."""

    refresh_token = Text(4096, min_length=1, required=True)


class SessionSchema(ma.Schema):
    """A signed-in device."""

    id = ma.fields.String(required=True, attribute="family_id")
    device_label = ma.fields.String(allow_none=True)
    user_agent = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime(required=True)
    last_used_at = ma.fields.DateTime(required=True)
    current = ma.fields.Boolean(required=True)
