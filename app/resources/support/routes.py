"""Support staff: account state, access resets, locks (bearer: support staff token)."""

from flask.views import MethodView

from app.resources.common import Blueprint
from app.resources.support.schemas import (
    AccessResetSchema,
    AccountStateSchema,
    ActionResultSchema,
    ReasonSchema,
)
from app.runtime import runtime
from app.services import support
from app.web.api import problem
from app.web.auth import request_context

blp = Blueprint("support", __name__, description="Support staff (account state only, no health data)")


@blp.route("/support/citizens/<national_id>")
class SupportCitizenViews(MethodView):
    @blp.response(200, AccountStateSchema)
    def get(self, national_id):
        """Look up an account's state (the look-up shows in the citizen's access log)"""
        return support.look_up(request_context(), runtime().accounts, national_id)


@blp.route("/support/citizens/<national_id>/access-reset")
class AccessResetViews(MethodView):
    @blp.arguments(AccessResetSchema)
    @blp.response(200, ActionResultSchema)
    @blp.alt_response(409, **problem("`no-contact-channel` or `identity-check-failed`"))
    def post(self, body, national_id):
        """Reset access after an identity check: sessions end, a new code goes to the citizen"""
        return support.reset_access(request_context(), runtime().accounts, national_id, body["reason"],
                                    body["identity_check"])


@blp.route("/support/citizens/<national_id>/lock")
class LockViews(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(200, ActionResultSchema)
    @blp.alt_response(409, **problem("Already locked"))
    def post(self, body, national_id):
        """Lock an account: sign-in and refresh refused, access tokens stop at once"""
        return support.lock(request_context(), national_id, body["reason"])


@blp.route("/support/citizens/<national_id>/unlock")
class UnlockViews(MethodView):
    @blp.arguments(ReasonSchema)
    @blp.response(200, ActionResultSchema)
    @blp.alt_response(409, **problem("Not locked"))
    def post(self, body, national_id):
        """Unlock an account"""
        return support.unlock(request_context(), national_id, body["reason"])
