"""HTTP resources: one package per group, each with ``routes.py`` and ``schemas.py``."""

from __future__ import annotations

from flask_smorest import Api


def register_blueprints(api: Api) -> None:
    """Register every blueprint under ``/api/v1``."""
    from app.resources.admin.routes import blp as admin
    from app.resources.auth.routes import blp as auth
    from app.resources.dcc_gateway.routes import blp as dcc_gateway
    from app.resources.facility.routes import blp as facility
    from app.resources.health.routes import blp as health
    from app.resources.me.notification_routes import blp as inbox
    from app.resources.me.routes import blp as me
    from app.resources.oauth.routes import blp as oauth
    from app.resources.passport.routes import blp as passport
    from app.resources.shared.routes import blp as shared
    from app.resources.staff.routes import blp as staff
    from app.resources.support.routes import blp as support

    for blueprint in (health, oauth, auth, me, inbox, passport, dcc_gateway, shared, staff, support, admin,
                      facility):
        api.register_blueprint(blueprint, url_prefix="/api/v1")
