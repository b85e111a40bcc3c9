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
    from app.services import timeline
    from app.services.audit import AuditTrail
    from app.web import auth, docs, http, logs, problems, ratelimiting
    from app.web.api import build_api, refine_spec

    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=settings.max_body_bytes,
        PROPAGATE_EXCEPTIONS=False,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Vietnamese names stay readable
    logs.configure(settings.log_level)
    uri, write_watch = db.init_app(app, settings)
    limiter = ratelimiting.build_limiter(settings, uri)

    # Every request hook of the app, here and nowhere else, each list in the order its hooks run.
    before_request = [
        http.assign_request_id,  # first: every answer, log line and audit event of the request has its id
        http.check_request_size,  # 414/431 before any other work
        db.SchemaGuard().ensure,  # collections and indexes, once, before the first request that needs them
        auth.authenticate_request,  # before the rate limits, which are keyed on the caller
        http.check_body_type,
    ]
    after_request = [
        http.log_request,
        http.secure_headers,  # last: its headers are on every answer
    ]
    for before in before_request:
        app.before_request(before)
    for after in reversed(after_request):  # Flask runs after-request hooks last registered first
        app.after_request(after)
    # Then flask-limiter's own three: its limit check runs after ours, before the view; its header
    # hook runs first after the view (so before log_request); and a teardown.
    limiter.init_app(app)
    storage = limiter.storage
    problems.init_app(app)  # error handlers, not request hooks

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
        write_watch=write_watch,
        audit_trail=AuditTrail(),
        citizen_reads=auth.citizen_reads(write_watch),
        index_versions=timeline.index_versions(write_watch.on_write),
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
