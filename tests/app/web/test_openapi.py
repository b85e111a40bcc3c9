"""The committed OpenAPI document is what the code generates, and it is OpenAPI 3.1."""

from __future__ import annotations

from app.dev.openapi_spec import render
from tests.helpers import COMMITTED


def test_committed_openapi_is_up_to_date(app):
    generated = render(app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict())
    assert COMMITTED.read_text() == generated, "openapi/openapi.json is stale: run `make openapi`"


def test_openapi_is_served_and_is_3_1(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.1")
    assert "/api/v1/health" in response.json["paths"]


def test_interactive_docs_load_local_assets(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/static/swagger-ui-bundle.js" in html
    asset = client.get("/api/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.data) > 100_000
    assert client.get("/api/docs/static/../../etc/passwd").status_code == 404
