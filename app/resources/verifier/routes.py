"""GET ``/verify``: the verifier web page for border and venue staff, and its files under ``/verify/``.

The page is built from ``web/verifier`` into ``web/verifier/dist`` by ``make`` (``npm ci && npm run
build``); it verifies passports in the browser against the published trust list and revocation list and
keeps working offline through its service worker. These are plain Flask routes, outside the OpenAPI
document: they serve a page, not the API. When the page has not been built, they answer a 503 problem.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, current_app, send_from_directory
from werkzeug.exceptions import NotFound

from app.web.problems import problem_response

blp = Blueprint("verifier", __name__)

# The page runs only its own bundled scripts and talks only to this origin (the trust list and
# revocation list); the camera stream and photos are read through blob:/mediastream: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
MIMETYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain",
    ".webmanifest": "application/manifest+json",
}
NOT_BUILT = "The verifier page has not been built: run make to build the verifier page (web/verifier)."


def dist_dir() -> Path:
    """Where ``npm run build`` puts the page: ``web/verifier/dist`` in the checkout."""
    return Path(current_app.root_path).parent / "web" / "verifier" / "dist"


def _headers(response: Response, *, page: bool = False) -> Response:
    # File names carry no content hash, so every file is revalidated (ETag): a new build shows at once,
    # and the service worker keeps the copies the page needs offline.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if page:
        response.headers["Permissions-Policy"] = PERMISSIONS_POLICY
    return response


def _send(filename: str, *, page: bool = False) -> Response:
    directory = dist_dir()
    if not (directory / "index.html").is_file():
        return problem_response(503, detail=NOT_BUILT)
    suffix = Path(filename).suffix
    if suffix not in MIMETYPES:
        raise NotFound()
    response = send_from_directory(directory, filename, mimetype=MIMETYPES[suffix], max_age=0, conditional=True)
    if filename == "sw.js":
        # Registered from /verify/sw.js with scope /verify, so that it also controls the page itself.
        response.headers["Service-Worker-Allowed"] = "/verify"
    return _headers(response, page=page)


def page() -> Response:
    """The verifier page."""
    return _send("index.html", page=True)


def asset(filename: str) -> Response:
    """A file of the page (``app.js``, ``sw.js``, ``style.css``, ``manifest.webmanifest``, ``icon.svg``)."""
    if filename in ("", "index.html"):
        return page()
    return _send(filename)


blp.add_url_rule("/verify", "page", page, methods=["GET"])
blp.add_url_rule("/verify/<path:filename>", "asset", asset, methods=["GET"])
