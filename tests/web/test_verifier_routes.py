"""GET /verify and its files, through the test client: headers, caching, refusals, and the unbuilt case."""

from __future__ import annotations

import pytest

from app.resources.verifier import routes
from tests.helpers import assert_problem
from tests.web.conftest import DIST

FILES = ("app.js", "sw.js", "style.css", "manifest.webmanifest", "icon.svg")


@pytest.fixture
def built() -> None:
    if not (DIST / "app.js").is_file():
        pytest.fail("the verifier page is not built: run `make` (cd web/verifier && npm ci && npm run build)")


def test_the_page_is_served_with_its_own_policy(client, built):
    page = client.get("/verify")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script type="module" src="/verify/app.js">' in html and "<script>" not in html
    policy = page.headers["Content-Security-Policy"]
    assert policy == routes.CONTENT_SECURITY_POLICY
    for directive in ("script-src 'self'", "connect-src 'self'", "worker-src 'self'", "frame-ancestors 'none'"):
        assert directive in policy
    assert "unsafe" not in policy  # no inline script or style, no eval
    assert page.headers["Permissions-Policy"].startswith("camera=(self)")
    assert page.headers["Cache-Control"] == "no-cache"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", FILES)
def test_every_file_of_the_page_is_served_and_revalidated(client, built, name):
    response = client.get(f"/verify/{name}")
    assert response.status_code == 200 and response.data
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["Content-Security-Policy"] == routes.CONTENT_SECURITY_POLICY
    again = client.get(f"/verify/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_service_worker_may_control_the_page(client, built):
    worker = client.get("/verify/sw.js")
    assert worker.mimetype == "text/javascript"
    assert worker.headers["Service-Worker-Allowed"] == "/verify"
    assert client.get("/verify/manifest.webmanifest").mimetype == "application/manifest+json"


@pytest.mark.parametrize("path", ["/verify/nothing.js", "/verify/../../pyproject.toml",
                                  "/verify/%2e%2e/%2e%2e/Makefile", "/verify/build.json.bak", "/verify/package.json"])
def test_nothing_else_is_served(client, built, path):
    assert_problem(client.get(path), 404)


def test_the_page_is_public_and_not_part_of_the_api_document(client, built):
    assert client.get("/verify", headers={"Authorization": "Bearer not-a-token"}).status_code == 200
    assert client.head("/verify").status_code == 200
    assert not any(path.startswith("/verify") for path in client.get("/api/openapi.json").json["paths"])


def test_an_unbuilt_page_is_a_clear_503(client, monkeypatch, tmp_path):
    monkeypatch.setattr(routes, "dist_dir", lambda: tmp_path / "dist")
    for path in ("/verify", "/verify/app.js"):
        problem = assert_problem(client.get(path), 503)
        assert "run make" in problem["detail"]
