"""Notifications: message templates, channels and the outbox worker's logic (a library).

No Flask, no database: the application stores messages and calls these functions.
"""

from notifications.channels import (
    CHANNEL_NAMES,
    Channel,
    DeliveryError,
    HttpProviderChannel,
    InMemoryChannel,
    OutgoingMessage,
    PermanentFailure,
    SmtpChannel,
    TemporaryFailure,
)
from notifications.reminders import (
    MAX_LATENESS,
    NEXT_DOSE_INTERVAL,
    VIETNAM,
    DoseRecord,
    FollowUp,
    due_today,
    follow_up_due,
    local_date,
    next_dose_due,
)
from notifications.retry import (
    MAX_ATTEMPTS,
    backoff_ceiling,
    is_exhausted,
    next_attempt,
    retry_delay,
)
from notifications.templates import (
    SECRET_PLACEHOLDER,
    SECURITY_KINDS,
    RenderedMessage,
    UnknownTemplate,
    render,
)

__all__ = [
    "CHANNEL_NAMES",
    "MAX_ATTEMPTS",
    "MAX_LATENESS",
    "NEXT_DOSE_INTERVAL",
    "SECRET_PLACEHOLDER",
    "SECURITY_KINDS",
    "VIETNAM",
    "Channel",
    "DeliveryError",
    "DoseRecord",
    "FollowUp",
    "HttpProviderChannel",
    "InMemoryChannel",
    "OutgoingMessage",
    "PermanentFailure",
    "RenderedMessage",
    "SmtpChannel",
    "TemporaryFailure",
    "UnknownTemplate",
    "backoff_ceiling",
    "due_today",
    "follow_up_due",
    "is_exhausted",
    "local_date",
    "next_attempt",
    "next_dose_due",
    "render",
    "retry_delay",
]
