"""GET /health: liveness and database reachability."""

from flask.views import MethodView

from app.infra import db
from app.resources.common import Blueprint
from app.resources.health.schemas import HealthSchema
from app.web.api import API_VERSION

blp = Blueprint("health", __name__, description="Service health")


@blp.route("/health")
class HealthViews(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="The database is unreachable")
    def get(self):
        """Report liveness and whether the database answers"""
        up = db.ping()
        body = {"status": "ok" if up else "unavailable", "database": "up" if up else "down",
                "version": API_VERSION}
        return body, 200 if up else 503
