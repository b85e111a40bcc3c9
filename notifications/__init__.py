"""Notifications: message templates, channels and the outbox worker's logic (a library).

No Flask, no database: the application stores messages and calls these functions.
"""

from notifications.templates import (
    SECRET_PLACEHOLDER,
    SECURITY_KINDS,
    RenderedMessage,
    UnknownTemplate,
    render,
)

__all__ = ["SECRET_PLACEHOLDER", "SECURITY_KINDS", "RenderedMessage", "UnknownTemplate", "render"]
