"""Interactive API documentation served from local files (no CDN: hospital networks are closed)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Flask, Response, redirect, send_from_directory

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"


def swagger_ui_asset(filename: str):  # type: ignore[no-untyped-def]
    """A Swagger UI asset (swagger-ui-bundle.js, swagger-ui.css, ...)."""
    return send_from_directory(SWAGGER_UI_DIST, filename, max_age=3600)


def to_docs() -> Response:
    """``/`` leads a person who opens the server's address to the documentation."""
    return redirect("/api/docs", code=302)  # type: ignore[return-value]


def init_app(app: Flask) -> None:
    """Serve Swagger UI's files under ``/api/docs/static/``, and ``/`` as a redirect to the docs."""
    app.add_url_rule("/api/docs/static/<path:filename>", "swagger_ui_asset", swagger_ui_asset)
    app.add_url_rule("/", "root", to_docs)
