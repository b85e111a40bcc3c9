"""Vaccine passports: the citizen's own, public verification material, and verification."""

from flask import Response
from flask.views import MethodView

import passport as dcc
from app.resources.common import Blueprint
from app.resources.passport.schemas import (
    PassportListSchema,
    PassportSchema,
    RevocationsSchema,
    RulesDocumentSchema,
    TrustListSchema,
    VerificationSchema,
    VerifyRequestSchema,
)
from app.runtime import runtime
from app.services import dcc_gateway, passport_rules, passports
from app.web.api import problem
from app.web.auth import current_principal, request_context

blp = Blueprint("passport", __name__, description="EU DCC vaccine passports")


def _passport(certificate) -> dict:  # type: ignore[no-untyped-def]
    return {"uvci": certificate.uvci, "hc1": certificate.hc1, "issued_at": certificate.issued_at,
            "expires_at": certificate.expires_at, "kid": certificate.kid}


@blp.route("/me/passports")
class MyPassportViews(MethodView):
    @blp.response(201, PassportSchema, description="A new passport")
    @blp.alt_response(200, schema=PassportSchema, description="The current passport (nothing changed)")
    @blp.alt_response(409, **problem("`no-eligible-vaccination`; `vaccination-not-certifiable`: the latest dose "
                                     "cannot make a valid EU DCC (deprecated code, product and maker disagree, ...)"))
    def post(self):
        """Get a vaccine passport for my latest facility-recorded vaccination"""
        rt = runtime()
        certificate, created = passports.issue_for_citizen(
            request_context(), current_principal().subject, quota=rt.passport_quota, signer=rt.signer,
            settings=rt.settings)
        return _passport(certificate), 201 if created else 200

    @blp.response(200, PassportListSchema)
    def get(self):
        """My passports (which one is current, which were superseded or revoked)"""
        return {"items": [{"uvci": c.uvci, "issued_at": c.issued_at, "expires_at": c.expires_at, "kid": c.kid,
                           "status": c.status, "current": c.current, "superseded_by": c.superseded_by}
                          for c in passports.list_for_citizen(current_principal().subject.id)],
                "next_cursor": None}


@blp.route("/me/passports/<path:uvci>/qr.png")
class MyPassportPngViews(MethodView):
    @blp.response(200, description="The QR code (error correction Q), PNG", content_type="image/png")
    def get(self, uvci):
        """The QR code of one of my passports as PNG (send `#` as `%23`)"""
        certificate = passports.get_for_citizen(request_context(), current_principal().subject.id, uvci)
        return Response(dcc.qr_png(certificate.hc1), mimetype="image/png")


@blp.route("/me/passports/<path:uvci>/qr.svg")
class MyPassportSvgViews(MethodView):
    @blp.response(200, description="The QR code (error correction Q), SVG", content_type="image/svg+xml")
    def get(self, uvci):
        """The QR code of one of my passports as SVG (send `#` as `%23`)"""
        certificate = passports.get_for_citizen(request_context(), current_principal().subject.id, uvci)
        return Response(dcc.qr_svg(certificate.hc1), mimetype="image/svg+xml")


@blp.route("/passport/trust-list")
class TrustListViews(MethodView):
    @blp.response(200, TrustListSchema)
    def get(self):
        """Every DSC a verifier should trust: Viet Nam's (with the CSCAs that issued them) and other countries'
        from the EU DCC Gateway"""
        return dcc_gateway.trust_list(request_context().now).to_json()


@blp.route("/passport/revocations")
class RevocationViews(MethodView):
    @blp.response(200, RevocationsSchema)
    def get(self):
        """Revoked passports as base64 16-byte SHA-256 prefixes, by hash type"""
        return passports.revocation_list(request_context().now).to_json()


@blp.route("/passport/verify")
class VerifyViews(MethodView):
    @blp.arguments(VerifyRequestSchema)
    @blp.response(200, VerificationSchema)
    @blp.alt_response(422, **problem("Invalid input, or `no-rules-for-country`"))
    @blp.alt_response(429, **problem("Too many verifications from this address"))
    def post(self, body):
        """Verify a passport: authentic, the rules of the country of arrival, the holder to compare with an ID"""
        ctx = request_context()
        runtime().verify_attempts.hit(ctx.ip or "unknown")
        clock = body.get("at") or ctx.now
        result = passports.verify_text(body["hc1"], ctx.now, clock, verify_cache=runtime().verify_cache)
        return passport_rules.verify_with_rules(ctx, result, body["country"], clock,
                                                verify_cache=runtime().verify_cache)


@blp.route("/passport/rules")
class RulesViews(MethodView):
    @blp.response(200, RulesDocumentSchema)
    def get(self):
        """Business rules of every country of arrival (EU gateway format, CertLogic) and their value sets"""
        return passport_rules.public_document(request_context(), verify_cache=runtime().verify_cache)


@blp.route("/passport/rules/<country>")
class CountryRulesViews(MethodView):
    @blp.response(200, RulesDocumentSchema)
    @blp.alt_response(404, **problem("No rules for this country"))
    def get(self, country):
        """Business rules of one country of arrival (the file `python -m passport verify --rules` takes)"""
        return passport_rules.public_document(request_context(), country, verify_cache=runtime().verify_cache)
