"""Citizen activation, sign-in, token refresh and sign-out."""

from flask import request
from flask.views import MethodView

from app.resources.auth.schemas import (
    ActivatedSchema,
    ActivateSchema,
    ConfirmSchema,
    EnrollmentSchema,
    LoginSchema,
    ReauthenticatedSchema,
    ReauthenticateSchema,
    RefreshSchema,
    TokensSchema,
)
from app.resources.common import Blueprint
from app.runtime import runtime
from app.services import citizens, reauth, sessions
from app.web.api import problem
from app.web.auth import current_principal, request_context

blp = Blueprint("auth", __name__, description="Citizen accounts: activation and sign-in")


@blp.route("/auth/activate")
class ActivateViews(MethodView):
    @blp.arguments(ActivateSchema)
    @blp.response(200, EnrollmentSchema)
    @blp.alt_response(401, **problem("National id, code or password not accepted"))
    @blp.alt_response(429, **problem("Too many attempts for this national id"))
    def post(self, body):
        """Redeem an activation code, set a password and start TOTP enrolment"""
        return citizens.activate(request_context(), runtime().accounts, body["national_id"],
                                 body["activation_code"], body["password"])


@blp.route("/auth/activate/confirm")
class ActivateConfirmViews(MethodView):
    @blp.arguments(ConfirmSchema)
    @blp.response(200, ActivatedSchema)
    @blp.alt_response(401, **problem("Enrolment token or code not accepted"))
    @blp.alt_response(429, **problem("Too many attempts"))
    def post(self, body):
        """Confirm TOTP enrolment with a first code: the account becomes active"""
        return citizens.confirm_enrollment(
            request_context(), runtime().accounts, body["enrollment_token"], body["totp_code"],
            body.get("device_label"), request.user_agent.string,
        )


@blp.route("/auth/login")
class LoginViews(MethodView):
    @blp.arguments(LoginSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, **problem("National id, password or code not accepted"))
    @blp.alt_response(429, **problem("Too many attempts: locked for a while"))
    def post(self, body):
        """Sign in with password and a TOTP code (or one recovery code)"""
        return sessions.login(
            request_context(), runtime().accounts, body["national_id"], body["password"],
            body.get("totp_code"), body.get("recovery_code"), body.get("device_label"),
            request.user_agent.string, device_proof=body.get("device_proof"),
        )


@blp.route("/auth/refresh")
class RefreshViews(MethodView):
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokensSchema)
    @blp.alt_response(401, **problem("Refresh token not valid (reuse ends the whole session)"))
    def post(self, body):
        """Exchange a refresh token for new tokens (the old one stops working)"""
        return sessions.refresh(request_context(), runtime().accounts, body["refresh_token"])


@blp.route("/auth/reauthenticate")
class ReauthenticateViews(MethodView):
    @blp.arguments(ReauthenticateSchema)
    @blp.response(200, ReauthenticatedSchema)
    @blp.alt_response(401, **problem("Password or code not accepted"))
    @blp.alt_response(429, **problem("Too many attempts: locked for a while"))
    def post(self, body):
        """Confirm password and code again before changing the phone or e-mail (step-up)"""
        principal = current_principal()
        at = reauth.reauthenticate(request_context(), runtime().accounts, principal.subject, principal.claims["sid"],
                                   body["password"], body.get("totp_code"), body.get("recovery_code"))
        return {"authenticated_at": at,
                "valid_for_seconds": int(reauth.RECENT_AUTHENTICATION.total_seconds())}


@blp.route("/auth/logout")
class LogoutViews(MethodView):
    @blp.response(204)
    def post(self):
        """Sign out: end this session and its tokens"""
        principal = current_principal()
        sessions.end_session(request_context(), principal.subject.id, principal.claims["sid"],
                             "logout")
