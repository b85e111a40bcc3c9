"""The delivery channels this process is configured with (``HOSO_SMTP_*``, ``HOSO_SMS_*``, ``HOSO_PUSH_*``)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from app.settings import Settings
from notifications import Channel, HttpProviderChannel, OutgoingMessage, SmtpChannel


class DevelopmentFileChannel:
    """Development only: writes each message as a JSON line to ``var/outbox/<channel>.jsonl``.

    With no provider configured, ``make run`` still shows what would have been sent (including an
    activation code after a support reset); in production an unconfigured channel is an error.
    """

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self._path = directory / f"{name}.jsonl"
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"id": message.message_id, "to": message.to, "subject": message.subject,
                           "body": message.body}, ensure_ascii=False)
        with self._lock, self._path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Channel name -> channel; unconfigured ones are absent (their messages fail permanently)."""
    channels: dict[str, Channel] = {}
    if settings.smtp_host:
        channels["email"] = SmtpChannel(settings.smtp_host, settings.smtp_port, settings.smtp_sender,
                                        settings.smtp_username, settings.smtp_password, settings.smtp_starttls)
    if settings.sms_url and settings.sms_token:
        channels["sms"] = HttpProviderChannel("sms", settings.sms_url, settings.sms_token)
    if settings.push_url and settings.push_token:
        channels["push"] = HttpProviderChannel("push", settings.push_url, settings.push_token)
    if not settings.is_production:
        for name in ("email", "sms", "push"):
            channels.setdefault(name, DevelopmentFileChannel(name, settings.var_dir / "outbox"))
    return channels
