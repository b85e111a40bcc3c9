"""The signed-in citizen's own account (bearer: citizen token)."""

from flask.views import MethodView
from flask_smorest import Blueprint

from app.auth import current_principal, request_context
from app.resources.me.schemas import SessionListSchema
from app.runtime import runtime
from app.services import sessions

blp = Blueprint("me", __name__, description="The citizen's own account")


@blp.route("/me/sessions")
class SessionViews(MethodView):
    @blp.response(200, SessionListSchema)
    def get(self):
        """List my signed-in devices"""
        principal = current_principal()
        ctx = request_context()
        items = sessions.active_sessions(runtime(), principal.subject.id, ctx.now)
        current = principal.claims.get("sid")
        return {"items": [{"family_id": item.family_id, "device_label": item.device_label,
                           "user_agent": item.user_agent, "created_at": item.created_at,
                           "last_used_at": item.last_used_at,
                           "current": item.family_id == current} for item in items],
                "next_cursor": None}


@blp.route("/me/sessions/<session_id>")
class SessionByIdViews(MethodView):
    @blp.response(204)
    def delete(self, session_id):
        """End one of my sessions (another device, or this one)"""
        sessions.end_session(request_context(), current_principal().subject.id, session_id,
                             "ended by the citizen")
