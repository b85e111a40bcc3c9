"""Schemas of the citizen's own account."""

from app.resources.auth.schemas import SessionSchema
from app.resources.common import page_schema

SessionListSchema = page_schema(SessionSchema, "SessionList")
