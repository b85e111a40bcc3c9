"""The citizen's profile: identity (read-only), contact data and preferences (editable)."""

from __future__ import annotations

from typing import Any

from app.models.citizen import Address, Citizen
from app.services import audit, outbox
from app.services.audit import RequestContext
from app.services.errors import InvalidInput
from notifications import SECURITY_KINDS

EDITABLE = ("phone", "email", "address", "language", "notification_preferences")
PREFERENCE_KINDS = ("record_added", "next_dose_reminder", "follow_up_reminder", "passport_issued",
                    "passport_revoked", "passport_expiring", "share_opened")
PREFERENCE_CHANNELS = ("sms", "email", "push")


def check_preferences(preferences: dict[str, Any]) -> None:
    """Kinds and channels must be known; security messages cannot be turned off."""
    errors = []
    for kind, channels in preferences.items():
        if kind in SECURITY_KINDS:
            errors.append(f"`{kind}` is a security message and cannot be turned off.")
        elif kind not in PREFERENCE_KINDS:
            errors.append(f"Unknown kind `{kind}`; use one of {', '.join(PREFERENCE_KINDS)}.")
        elif not isinstance(channels, dict) or not all(
            channel in PREFERENCE_CHANNELS and isinstance(on, bool) for channel, on in channels.items()
        ):
            errors.append(f"`{kind}` maps channels ({', '.join(PREFERENCE_CHANNELS)}) to true/false.")
    if errors:
        raise InvalidInput({"notification_preferences": errors})


def update_profile(ctx: RequestContext, citizen: Citizen, changes: dict[str, Any]) -> Citizen:
    """Change contact data and preferences; a contact change is announced on the old channels."""
    if "notification_preferences" in changes:
        check_preferences(changes["notification_preferences"])
    updates: dict[str, Any] = {}
    for name in EDITABLE:
        if name not in changes:
            continue
        value = changes[name]
        if value is None:
            updates[f"unset__{name}"] = True
        elif name == "address":
            updates["set__address"] = Address(**value)
        else:
            updates[f"set__{name}"] = value
    contact_changed = any(changes.get(name, getattr(citizen, name)) != getattr(citizen, name)
                          for name in ("phone", "email") if name in changes)
    if updates:
        Citizen.objects(id=citizen.id).update_one(**updates)
        audit.record(ctx, "citizen.profile_update", citizen_id=citizen.id, target_type="citizen",
                     target_id=str(citizen.id), details={"fields": sorted(changes)})
    if contact_changed:  # to the channels as they were: a hijacker cannot silence the warning
        outbox.notify(ctx, citizen, "contact_changed", f"{citizen.id}:{ctx.now.isoformat()}")
    citizen.reload()
    return citizen
