"""Administration: facilities and their API clients, staff accounts, the audit log."""

from flask.views import MethodView

from app.resources.admin.schemas import (
    AuditPageSchema,
    AuditQueryArgsSchema,
    ClientCreateSchema,
    ClientPageSchema,
    FacilityCreateSchema,
    FacilityPageSchema,
    FacilitySchema,
    NewClientSchema,
    NewStaffSchema,
    NotificationQueryArgsSchema,
    OutboxPageSchema,
    StaffCreateSchema,
)
from app.resources.common import Blueprint, PageArgsSchema
from app.resources.passport.schemas import (
    RevokedSchema,
    RevokeSchema,
    RuleSetReplaceSchema,
    RuleSetSchema,
    SigningKeySchema,
)
from app.runtime import runtime
from app.services import audit_log, facilities, outbox_admin, passport_rules, passports, signing_keys, staff
from app.services.paging import decode_cursor, encode_cursor
from app.web.api import problem
from app.web.auth import request_context

blp = Blueprint("admin", __name__, description="Administration (admin staff only)")


@blp.route("/admin/facilities")
class FacilityViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, FacilityPageSchema)
    def get(self, args):
        """List registered facilities by code"""
        after = decode_cursor(args["cursor"], ("code",))["code"] if args["cursor"] else None
        items, next_cursor = facilities.list_facilities(after, args["limit"])
        return {"items": items, "next_cursor": encode_cursor(next_cursor) if next_cursor else None}

    @blp.arguments(FacilityCreateSchema)
    @blp.response(201, FacilitySchema)
    @blp.alt_response(409, **problem("A facility with this code exists"))
    def post(self, body):
        """Register a facility"""
        return facilities.register_facility(
            request_context(), body["code"], body["name"], body["province"], body.get("level")
        )


@blp.route("/admin/facilities/<code>/clients")
class FacilityClientViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ClientPageSchema)
    def get(self, args, code):
        """List a facility's API clients (never their secrets)"""
        after = decode_cursor(args["cursor"], ("client_id",))["client_id"] if args["cursor"] else None
        items, next_cursor = facilities.list_clients(code, after, args["limit"])
        return {"items": items, "next_cursor": encode_cursor(next_cursor) if next_cursor else None}

    @blp.arguments(ClientCreateSchema)
    @blp.response(201, NewClientSchema)
    def post(self, body, code):
        """Issue API client credentials for a facility (the secret is shown once)"""
        return facilities.issue_client(
            request_context(), code, runtime().passwords, body.get("label")
        )


@blp.route("/admin/facilities/<code>/clients/<client_id>")
class FacilityClientByIdViews(MethodView):
    @blp.response(204)
    def delete(self, code, client_id):
        """Revoke an API client; its tokens stop working at once"""
        facilities.revoke_client(request_context(), code, client_id)


@blp.route("/admin/staff")
class StaffViews(MethodView):
    @blp.arguments(StaffCreateSchema)
    @blp.response(201, NewStaffSchema)
    @blp.alt_response(409, **problem("The username is taken"))
    def post(self, body):
        """Create a staff account (one-time password and TOTP URI shown once)"""
        rt = runtime()
        return staff.create_staff(
            request_context(), body["username"], body["role"], passwords=rt.passwords, box=rt.box
        )


@blp.route("/admin/passports/<path:uvci>/revoke")
class PassportRevokeViews(MethodView):
    @blp.arguments(RevokeSchema)
    @blp.response(200, RevokedSchema)
    @blp.alt_response(409, **problem("Already revoked"))
    def post(self, body, uvci):
        """Revoke a passport: its hashes join the revocation list at once"""
        return passports.revoke(request_context(), uvci, body["reason"], verify_cache=runtime().verify_cache)


@blp.route("/admin/signing-keys/rotate")
class SigningKeyRotateViews(MethodView):
    @blp.response(201, SigningKeySchema)
    @blp.alt_response(409, **problem("`remote-signing`: keys live in the signing service"))
    def post(self):
        """Start signing with a new DSC (the old one stays trusted until its last passport expires)"""
        return signing_keys.rotate_keys(request_context(), runtime().settings, verify_cache=runtime().verify_cache)


@blp.route("/admin/notifications")
class OutboxViews(MethodView):
    @blp.arguments(NotificationQueryArgsSchema, location="query")
    @blp.response(200, OutboxPageSchema)
    def get(self, args):
        """Messages by delivery status (default: dead letters), newest first"""
        after = decode_cursor(args["cursor"], ("id",))["id"] if args["cursor"] else None
        items, next_cursor = outbox_admin.list_by_status(args["status"], after, args["limit"])
        return {"items": items, "next_cursor": encode_cursor(next_cursor) if next_cursor else None}


@blp.route("/admin/audit")
class AuditViews(MethodView):
    @blp.arguments(AuditQueryArgsSchema, location="query")
    @blp.response(200, AuditPageSchema)
    def get(self, args):
        """Read the audit log, newest first, with filters

        Events are listed in the order they were stored, newest first. Without filters a page holds
        `limit` events. With filters, a page looks at a bounded stretch of the stored events (2,000;
        200,000 when `citizen_id` or `actor_id` is given) and holds those that match: it may hold
        fewer than `limit` items, even none, with a `next_cursor` to go on; `next_cursor` is null
        only when no older event remains.
        """
        raw_cursor, limit = args.pop("cursor"), args.pop("limit")
        events, next_cursor = audit_log.search(args, raw_cursor, limit)
        return {"items": events, "next_cursor": next_cursor}


@blp.route("/admin/passport-rules/<country>")
class PassportRuleSetViews(MethodView):
    @blp.response(200, RuleSetSchema)
    @blp.alt_response(404, **problem("No rules stored for this country"))
    def get(self, country):
        """A country's business rules for passports (every version of every rule, gateway format)"""
        return passport_rules.rule_set_json(passport_rules.get_rule_set(request_context(), country))

    @blp.arguments(RuleSetReplaceSchema)
    @blp.response(200, RuleSetSchema)
    def put(self, body, country):
        """Replace a country's whole rule set (audited); verifiers see it within ten seconds"""
        stored = passport_rules.replace_rule_set(request_context(), country, body["rules"], "admin",
                                                  verify_cache=runtime().verify_cache)
        return passport_rules.rule_set_json(stored)
