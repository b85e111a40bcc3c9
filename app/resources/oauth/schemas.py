"""Schemas of the OAuth2 token endpoint (RFC 6749)."""

import marshmallow as ma

from app.resources.common import Always
from app.schemas.text import Text
from app.web.problems import OAuthError

MAX_PARAMETER_LENGTH = 512


class TokenRequestSchema(ma.Schema):
    """Client credentials grant, form encoded. Unknown parameters are ignored (RFC 6749 3.2)."""

    class Meta:
        unknown = ma.EXCLUDE

    grant_type = Text(MAX_PARAMETER_LENGTH, metadata={"description": "`client_credentials`"})
    client_id = Text(MAX_PARAMETER_LENGTH)
    client_secret = Text(MAX_PARAMETER_LENGTH)
    scope = Text(MAX_PARAMETER_LENGTH)

    def handle_error(self, error, data, *, many, **kwargs):  # type: ignore[no-untyped-def]
        """A malformed parameter is an RFC 6749 ``invalid_request``, not a problem document."""
        raise OAuthError("invalid_request", "A parameter is malformed or too long.")


class TokenResponseSchema(ma.Schema):
    """RFC 6749 5.1 successful response (dumps an ``IssuedToken``)."""

    access_token = ma.fields.String(required=True, attribute="token")
    token_type = Always("Bearer", required=True)
    expires_in = ma.fields.Integer(required=True)


class OAuthErrorSchema(ma.Schema):
    """RFC 6749 5.2 error response."""

    error = ma.fields.String(required=True)
    error_description = ma.fields.String()
