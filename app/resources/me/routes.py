"""The signed-in citizen's own account and record (bearer: citizen token)."""

import json

from flask import Response
from flask.views import MethodView

from app.resources.common import Blueprint, PageArgsSchema
from app.resources.me import present
from app.resources.me.schemas import (
    AccessLogPageSchema,
    ExportArgsSchema,
    ImmunizationPageSchema,
    ImmunizationSchema,
    NewShareSchema,
    PrescriptionPageSchema,
    ProfilePatchSchema,
    ProfileSchema,
    ReactionReportSchema,
    SessionListSchema,
    ShareCreateSchema,
    ShareListSchema,
    VisitPageSchema,
    VisitQueryArgsSchema,
    VisitSchema,
)
from app.runtime import runtime
from app.services import access_log, fhir_export, profile, sessions, shares, timeline
from app.services.paging import decode_cursor, encode_cursor
from app.web.api import problem
from app.web.auth import current_principal, request_context

blp = Blueprint("me", __name__, description="The citizen's own account and record")
CURSOR_KEYS = ("t", "id")


def _citizen():  # type: ignore[no-untyped-def]
    return current_principal().subject


def _cursor(args: dict):  # type: ignore[no-untyped-def]
    return decode_cursor(args["cursor"], CURSOR_KEYS) if args.get("cursor") else None


def _next(page) -> str | None:  # type: ignore[no-untyped-def]
    return encode_cursor(page.next_cursor) if page.next_cursor else None


@blp.route("/me")
class MeViews(MethodView):
    @blp.response(200, ProfileSchema)
    def get(self):
        """My profile"""
        return _citizen()

    @blp.arguments(ProfilePatchSchema)
    @blp.response(200, ProfileSchema)
    @blp.alt_response(401, **problem(
        "`reauthentication-required`: a phone or e-mail change needs POST /auth/reauthenticate "
        "within the last 5 minutes (RFC 9470 challenge in WWW-Authenticate)"))
    def patch(self, body):
        """Change my contact data and notification preferences"""
        return profile.update_profile(request_context(), _citizen(), body, current_principal().claims["sid"])


@blp.route("/me/sessions")
class SessionViews(MethodView):
    @blp.response(200, SessionListSchema)
    def get(self):
        """List my signed-in devices"""
        principal = current_principal()
        items = sessions.active_sessions(runtime().accounts, principal.subject.id, request_context().now)
        current = principal.claims.get("sid")
        return {"items": [{"family_id": item.family_id, "device_label": item.device_label,
                           "user_agent": item.user_agent, "created_at": item.created_at,
                           "last_used_at": item.last_used_at,
                           "current": item.family_id == current} for item in items],
                "next_cursor": None}


@blp.route("/me/sessions/<session_id>")
class SessionByIdViews(MethodView):
    @blp.response(204)
    def delete(self, session_id):
        """End one of my sessions (another device, or this one)"""
        sessions.end_session(request_context(), _citizen().id, session_id, "ended by the citizen")


@blp.route("/me/visits")
class VisitViews(MethodView):
    @blp.arguments(VisitQueryArgsSchema, location="query")
    @blp.response(200, VisitPageSchema)
    def get(self, args):
        """My visits across all facilities, newest first"""
        stored, rt = current_principal().stored, runtime()  # the citizen's fields, not a document
        assert stored is not None  # a citizen route: authentication kept the stored fields
        body = timeline.visits_page(
            request_context(), stored["_id"], args["limit"], _cursor(args),
            args.get("from_"), args.get("to"), args.get("facility"),
            pages=rt.pages, facility_names=rt.facility_names, render=present.visit_page,
            versions=rt.index_versions, lists=rt.list_reads)
        return Response(body, mimetype="application/json")


def _names(codes: set[str]) -> dict[str, str]:
    return runtime().facility_names.names(codes)


@blp.route("/me/visits/<visit_id>")
class VisitByIdViews(MethodView):
    @blp.response(200, VisitSchema)
    def get(self, visit_id):
        """One visit with diagnoses, results and prescriptions"""
        visit = timeline.get_visit(request_context(), _citizen().id, visit_id)
        return present.visit_detail(visit, _names({visit.facility_code}))


@blp.route("/me/immunizations")
class ImmunizationViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ImmunizationPageSchema)
    def get(self, args):
        """My vaccinations, newest first, with injection times and reactions"""
        page = timeline.list_immunizations(request_context(), _citizen().id, args["limit"], _cursor(args))
        names = _names({record.facility_code for record in page.items})
        return {"items": [present.immunization(r, names) for r in page.items], "next_cursor": _next(page)}


@blp.route("/me/immunizations/<immunization_id>")
class ImmunizationByIdViews(MethodView):
    @blp.response(200, ImmunizationSchema)
    def get(self, immunization_id):
        """One vaccination"""
        record = timeline.get_immunization(request_context(), _citizen().id, immunization_id)
        return present.immunization(record, _names({record.facility_code}))


@blp.route("/me/immunizations/<immunization_id>/reactions")
class ReactionViews(MethodView):
    @blp.arguments(ReactionReportSchema)
    @blp.response(201, ImmunizationSchema)
    @blp.alt_response(409, **problem("`record-withdrawn`: the facility withdrew this vaccination"))
    def post(self, body, immunization_id):
        """Report a reaction I noticed after this vaccination (never changes the facility's data)"""
        record = timeline.report_reaction(request_context(), _citizen(), immunization_id,
                                          body["onset_at"], body["description"], body["severity"])
        return present.immunization(record, _names({record.facility_code}))


@blp.route("/me/prescriptions")
class PrescriptionViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, PrescriptionPageSchema)
    def get(self, args):
        """My prescriptions with their national codes, ready to show at a pharmacy"""
        page = timeline.list_prescriptions(request_context(), _citizen().id, args["limit"], _cursor(args))
        names = _names({visit.facility_code for visit in page.items})
        return {"items": [entry for visit in page.items for entry in present.prescription_entries(visit, names)],
                "next_cursor": _next(page)}


@blp.route("/me/access-log")
class AccessLogViews(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, AccessLogPageSchema)
    def get(self, args):
        """Who read or changed my record, when, on what basis"""
        events, next_cursor = access_log.access_log(_citizen().id, args["limit"], _cursor(args),
                                                    request_context().now)
        names = _names({e.facility_code for e in events if e.facility_code})
        return {"items": [{"id": str(e.event_id), "at": e.at, "access": e.access, "action": e.action,
                           "actor_type": e.actor_type, "actor_label": e.actor_label,
                           "facility_code": e.facility_code,
                           "facility_name": names.get(e.facility_code or ""), "outcome": e.outcome}
                          for e in events],
                "next_cursor": encode_cursor(next_cursor) if next_cursor else None}


@blp.route("/me/export")
class ExportViews(MethodView):
    @blp.arguments(ExportArgsSchema, location="query")
    @blp.response(200, description="A FHIR R4 Bundle (type collection)", content_type="application/fhir+json")
    def get(self, args):
        """My whole record as a FHIR R4 Bundle (`since`: only what changed since then)"""
        bundle = fhir_export.export_bundle(request_context(), _citizen(), args.get("since"),
                                           facility_names=runtime().facility_names)
        return Response(json.dumps(bundle, ensure_ascii=False), mimetype="application/fhir+json")


@blp.route("/me/shares")
class ShareViews(MethodView):
    @blp.arguments(ShareCreateSchema)
    @blp.response(201, NewShareSchema)
    def post(self, body):
        """Share part of my record with a doctor for 1 to 72 hours (the code is shown once)"""
        return shares.create_share(request_context(), _citizen().id, body["scope"],
                                   body["expires_in_hours"], box=runtime().box)

    @blp.response(200, ShareListSchema)
    def get(self):
        """My shares, with how often each was opened"""
        now = request_context().now
        return {"items": [{"id": str(s.id), "scope": s.scope, "created_at": s.created_at,
                           "expires_at": s.expires_at, "revoked_at": s.revoked_at,
                           "active": s.revoked_at is None and s.expires_at > now,
                           "times_opened": s.times_opened, "last_opened_at": s.last_opened_at}
                          for s in shares.list_shares(_citizen().id)],
                "next_cursor": None}


@blp.route("/me/shares/<share_id>")
class ShareByIdViews(MethodView):
    @blp.response(204)
    def delete(self, share_id):
        """Revoke a share at once"""
        shares.revoke_share(request_context(), _citizen().id, share_id)
