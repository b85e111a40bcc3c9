"""POST /oauth/token: the OAuth2 client credentials grant for facility systems."""

from urllib.parse import unquote_plus

from flask import request
from flask.views import MethodView

from app.resources.common import Blueprint
from app.resources.oauth.schemas import OAuthErrorSchema, TokenRequestSchema, TokenResponseSchema
from app.runtime import runtime
from app.services import facilities
from app.web.api import problem
from app.web.auth import request_context
from app.web.http import accepts
from app.web.problems import OAuthError, oauth_error_response

blp = Blueprint("oauth", __name__, description="OAuth2 for facility systems")
blp.register_error_handler(OAuthError, oauth_error_response)
FORM = "application/x-www-form-urlencoded"


def _client_credentials(form: dict[str, str]) -> tuple[str, str]:
    """Client id and secret from HTTP Basic or the form body, never both (RFC 6749 2.3.1)."""
    basic = request.authorization if request.headers.get("Authorization") else None
    in_form = bool(form.get("client_id") or form.get("client_secret"))
    if basic is not None and basic.type == "basic":
        if in_form:
            raise OAuthError("invalid_request", "Use one client authentication method.")
        return unquote_plus(basic.username or ""), unquote_plus(basic.password or "")
    if request.headers.get("Authorization"):
        raise OAuthError("invalid_client", "Unsupported client authentication.", 401)
    if not (form.get("client_id") and form.get("client_secret")):
        raise OAuthError("invalid_client", "Client authentication is required.", 401)
    return form["client_id"], form["client_secret"]


@blp.route("/oauth/token")
class TokenViews(MethodView):
    @accepts(FORM)
    @blp.arguments(TokenRequestSchema, location="form", content_type=FORM)
    @blp.response(200, TokenResponseSchema)
    @blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error")
    @blp.alt_response(401, schema=OAuthErrorSchema, description="invalid_client")
    @blp.alt_response(429, **problem("Too many failed attempts for this client"))
    def post(self, form):
        """Exchange facility client credentials for an access token

        Client authentication by HTTP Basic (preferred) or `client_id` + `client_secret` form
        fields. Errors follow RFC 6749 section 5.2.
        """
        if form.get("grant_type") != "client_credentials":
            raise OAuthError("unsupported_grant_type", "Only client_credentials is supported.")
        if form.get("scope"):
            raise OAuthError("invalid_scope", "No scopes are defined; omit scope.")
        client_id, client_secret = _client_credentials(form)
        rt = runtime()
        try:
            issued = facilities.client_credentials_grant(
                request_context(), client_id, client_secret, passwords=rt.passwords,
                tokens=rt.tokens, failures=rt.client_auth_failures, ip_attempts=rt.auth_ip_attempts,
            )
        except facilities.InvalidClient:
            raise OAuthError("invalid_client", "Client authentication failed.", 401) from None
        return issued, 200, {"Pragma": "no-cache"}
