"""HoSo: the backend of a national patient-facing health record app.

``create_app(settings=None)`` builds the WSGI application; ``gunicorn 'app:create_app()'`` serves it.
Importing this package has no side effects.
"""

from __future__ import annotations

from flask import Flask

from app.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application from ``settings`` (default: ``Settings.from_env()``)."""
    from app import cli
    from app.infra import db
    from app.infra.signer import SignerHolder
    from app.resources import register_blueprints
    from app.resources.verifier.routes import blp as verifier_page
    from app.runtime import Runtime
    from app.security.crypto import SecretBox
    from app.security.passwords import PasswordHasher
    from app.security.tokens import TokenService
    from app.web import auth, docs, errors, http, logs, ratelimiting
    from app.web.api import build_api, refine_spec

    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Vietnamese names stay readable
    logs.configure(settings.log_level)
    uri = db.init_app(app, settings)

    http.init_app(app)
    auth.init_app(app)
    app.before_request(http.check_body_type)
    limiter, storage = ratelimiting.init_app(app, settings, uri)
    errors.init_app(app)

    box = SecretBox(settings.data_key)
    app.extensions["hoso"] = Runtime(
        settings=settings,
        box=box,
        passwords=PasswordHasher(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        ),
        tokens=TokenService(
            settings.jwt_private_key_pem,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.access_token_seconds,
        ),
        limiter=limiter,
        staff_login_failures=ratelimiting.account_failures(storage, "staff-login", settings, box),
        client_auth_failures=ratelimiting.account_failures(storage, "client-auth", settings, box),
        auth_ip_attempts=ratelimiting.ip_attempts(storage, settings),
        citizen_login_failures=ratelimiting.account_failures(storage, "citizen-login", settings, box),
        activation_failures=ratelimiting.account_failures(
            storage, "citizen-activate", settings, box, origins_of="citizen-login"),
        share_attempts=ratelimiting.AttemptLimiter.from_string(
            storage, "share-open", settings.rate_limit_share_per_ip),
        passport_quota=ratelimiting.AttemptLimiter.from_string(storage, "passport-issue", "20 per hour"),
        verify_attempts=ratelimiting.AttemptLimiter.from_string(
            storage, "passport-verify", settings.rate_limit_verify_per_ip),
        signer=SignerHolder(settings),
    )

    if settings.trusted_proxy_count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Client addresses (rate limits, audit) come from X-Forwarded-For set by our own proxies.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_count, x_proto=settings.trusted_proxy_count
        )

    api = build_api(app)
    register_blueprints(api)
    refine_spec(api)
    docs.init_app(app)
    app.register_blueprint(verifier_page)
    cli.init_app(app)
    return app
