"""The citizen's profile: identity (read-only), contact data and preferences (editable)."""

from __future__ import annotations

from typing import Any

from app.models.citizen import Address, Citizen
from app.services import audit, outbox
from app.services.audit import RequestContext
from app.services.errors import InvalidInput
from app.services.reauth import require_recent_authentication
from notifications import SECURITY_KINDS

EDITABLE = ("phone", "email", "address", "language", "notification_preferences")
CONTACT_FIELDS = ("phone", "email")
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


def update_profile(ctx: RequestContext, citizen: Citizen, changes: dict[str, Any], session_id: str) -> Citizen:
    """Change contact data and preferences; a contact change is announced on the old channels.

    Changing the phone or e-mail needs a recent password and code check on this session
    (``app.services.reauth``), and marks the channel as changed in the app, so that a support
    reset sends no code to it for a while.
    """
    if "notification_preferences" in changes:
        check_preferences(changes["notification_preferences"])
    changed_contacts = [name for name in CONTACT_FIELDS
                        if name in changes and changes[name] != getattr(citizen, name)]
    if changed_contacts:
        require_recent_authentication(ctx, citizen, session_id)
    updates: dict[str, Any] = {f"set__{name}_changed_at": ctx.now for name in changed_contacts}
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
    if updates:
        with audit.recording(ctx, "citizen.profile_update", citizen_id=citizen.id, target_type="citizen",
                             target_id=str(citizen.id), details={"fields": sorted(changes)}):
            Citizen.objects(id=citizen.id).update_one(**updates)
    if changed_contacts:  # to the addresses as they were (``citizen`` is not reloaded yet)
        outbox.notify(ctx, citizen, "contact_changed", f"{citizen.id}:{ctx.now.isoformat()}")
    citizen.reload()
    return citizen
