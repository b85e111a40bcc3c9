"""Staff login (password + TOTP) and the staff member's own identity."""

from flask.views import MethodView

from app.resources.common import AccessTokenSchema, Blueprint
from app.resources.staff.schemas import StaffLoginSchema, StaffSchema
from app.runtime import runtime
from app.services import staff
from app.web.api import problem
from app.web.auth import current_principal, request_context

blp = Blueprint("staff", __name__, description="Staff sign-in")


@blp.route("/staff/login")
class StaffLoginViews(MethodView):
    @blp.arguments(StaffLoginSchema)
    @blp.response(200, AccessTokenSchema)
    @blp.alt_response(401, **problem("Username, password or code not accepted"))
    @blp.alt_response(429, **problem("Too many failed attempts: locked for a while"))
    def post(self, body):
        """Sign in with username, password and TOTP code"""
        rt = runtime()
        return staff.login_staff(
            request_context(), body["username"], body["password"], body["totp_code"],
            passwords=rt.passwords, box=rt.box, tokens=rt.tokens,
            failures=rt.staff_login_failures, ip_attempts=rt.auth_ip_attempts,
        )


@blp.route("/staff/me")
class StaffMeViews(MethodView):
    @blp.response(200, StaffSchema)
    def get(self):
        """The signed-in staff member"""
        return current_principal().subject
