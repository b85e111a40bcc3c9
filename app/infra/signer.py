"""The signer holder: the DSC signer of one app, and where the development keys sit on disk.

With ``HOSO_SIGNER_URL`` the signer is the signing service (``python -m passport.service``);
without it, the active DSC's private key is read (passphrase from settings) from the key directory,
where ``app.services.signing_keys`` writes it. ``create_app`` builds one holder per app
(``Runtime.signer``); services that sign are handed it.
"""

from __future__ import annotations

import base64
import threading
from datetime import datetime
from pathlib import Path

import passport
from app.models.passports import SigningKey
from app.services.errors import Unavailable
from app.settings import Settings


def kid_text(kid: bytes) -> str:
    """A key id as stored (base64)."""
    return base64.b64encode(kid).decode()


def kid_bytes(kid_b64: str) -> bytes:
    """A stored key id as bytes."""
    return base64.b64decode(kid_b64)


def passphrase(settings: Settings) -> bytes:
    """The passphrase of the private keys on disk (``HOSO_SIGNING_KEY_PASSPHRASE``)."""
    if not settings.signing_key_passphrase:
        raise Unavailable("HOSO_SIGNING_KEY_PASSPHRASE is not set: in-process signing is unavailable")
    return settings.signing_key_passphrase


def dsc_paths(key_dir: Path, kid: bytes) -> tuple[Path, Path]:
    """Where a DSC's certificate and encrypted private key are kept."""
    name = kid.hex()
    return key_dir / f"dsc-{name}-cert.pem", key_dir / f"dsc-{name}-key.pem"


class SignerHolder:
    """The signer of one app, built on first use and rebuilt when the active DSC changes."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._signer: passport.Signer | None = None
        self._remote: passport.RemoteSigner | None = None

    def get(self, now: datetime) -> passport.Signer:
        """The signer to use ``now`` (the signing service's, or the active DSC's)."""
        with self._lock:
            if self._settings.signer_url:
                return self._remote_signer(now)
            active = SigningKey.objects(state="active").first()
            if active is None:
                raise Unavailable("No signing key: run `flask --app app keys init`.")
            if self._signer is None or kid_text(self._signer.kid) != active.kid:
                cert_path, key_path = dsc_paths(self._settings.signing_key_dir, kid_bytes(active.kid))
                if not key_path.exists():
                    raise Unavailable("The active DSC's private key is not on this host.")
                key = passport.load_private_key(key_path.read_bytes(), passphrase(self._settings))
                self._signer = passport.LocalSigner(key, passport.load_certificate(active.dsc_der))
            return self._signer

    def _remote_signer(self, now: datetime) -> passport.Signer:
        if self._remote is None:
            assert self._settings.signer_url and self._settings.signer_secret
            self._remote = passport.RemoteSigner(self._settings.signer_url, self._settings.signer_secret)
        try:
            certificate = self._remote.certificate
        except passport.PassportError as error:
            raise Unavailable(f"The signing service is unavailable: {error}") from None
        kid = kid_text(self._remote.kid)
        if not SigningKey.objects(kid=kid).count():  # the service's DSC joins the trust list
            SigningKey.objects(state="active").update(set__state="retired", set__retired_at=now)
            SigningKey(kid=kid, dsc_der=passport.certificate_der(certificate),
                       not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
                       state="active", created_at=now).save(force_insert=True)
        return self._remote
