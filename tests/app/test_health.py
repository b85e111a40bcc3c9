"""GET /health: 200 with the database up, 503 when it is down."""

from __future__ import annotations

from pathlib import Path

from app import create_app
from tests.conftest import make_settings


def test_health_reports_database_up(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "up", "version": "1.0.0"}
    assert response.headers["X-Request-ID"]


def test_health_is_503_when_database_is_down(tmp_path: Path):
    settings = make_settings("mongodb://127.0.0.1:9", tmp_path)  # nothing listens on port 9
    app = create_app(settings)
    response = app.test_client().get("/api/v1/health")
    assert response.status_code == 503
    assert response.json["database"] == "down"
