"""Signing keys: a development CSCA and DSCs under ``var/keys``, or a separate signing service.

With ``HOSO_SIGNER_URL`` the API talks to ``python -m passport.service`` and never holds a DSC private
key; it learns the service's DSC (public) and publishes it in the trust list. Without it, the API
signs in-process with a DSC whose private key sits encrypted (passphrase from settings) in the key
directory. Private keys never enter the database.
"""

from __future__ import annotations

import base64
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

import passport
from app.models.passports import Certificate, SigningKey
from app.services import audit
from app.services.audit import RequestContext
from app.services.errors import Conflict, Unavailable
from app.settings import Settings

CSCA_YEARS = 10
DSC_DAYS = 2 * 365
CSCA_CERT, CSCA_KEY = "csca-cert.pem", "csca-key.pem"


class RemoteSigningOnly(Conflict):
    """Keys live in the signing service: rotate them there."""

    slug = "remote-signing"


@dataclass(frozen=True)
class KeyInfo:
    """A DSC as the admin API shows it."""

    kid: str
    not_before: datetime
    not_after: datetime
    state: str


def _b64(kid: bytes) -> str:
    return base64.b64encode(kid).decode()


def _passphrase(settings: Settings) -> bytes:
    if not settings.signing_key_passphrase:
        raise Unavailable("HOSO_SIGNING_KEY_PASSPHRASE is not set: in-process signing is unavailable")
    return settings.signing_key_passphrase


def _dsc_paths(key_dir: Path, kid: bytes) -> tuple[Path, Path]:
    name = kid.hex()
    return key_dir / f"dsc-{name}-cert.pem", key_dir / f"dsc-{name}-key.pem"


def _csca(settings: Settings, now: datetime) -> tuple[object, x509.Certificate]:
    """The development CSCA, created once."""
    key_dir = settings.signing_key_dir
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (key_dir / CSCA_CERT).exists():
        certificate = passport.load_certificate((key_dir / CSCA_CERT).read_bytes())
        key = passport.load_private_key((key_dir / CSCA_KEY).read_bytes(), _passphrase(settings))
        return key, certificate
    key, certificate = passport.create_csca("HoSo", now - timedelta(minutes=5), now + timedelta(days=365 * CSCA_YEARS))
    passport.save_private_key(key_dir / CSCA_KEY, key, _passphrase(settings))
    (key_dir / CSCA_CERT).write_bytes(passport.certificate_pem(certificate))
    return key, certificate


def _new_dsc(ctx: RequestContext, settings: Settings) -> SigningKey:
    csca_key, csca = _csca(settings, ctx.now)
    not_after = min(ctx.now + timedelta(days=DSC_DAYS), csca.not_valid_after_utc)
    key, dsc = passport.create_dsc(csca_key, csca, f"HoSo DSC {ctx.now:%Y-%m-%d %H%M%S}",  # type: ignore[arg-type]
                                   ctx.now - timedelta(minutes=5), not_after)
    kid = passport.kid(dsc)
    cert_path, key_path = _dsc_paths(settings.signing_key_dir, kid)
    passport.save_private_key(key_path, key, _passphrase(settings))
    cert_path.write_bytes(passport.certificate_pem(dsc))
    record = SigningKey(kid=_b64(kid), dsc_der=passport.certificate_der(dsc),
                        csca_der=passport.certificate_der(csca), not_before=dsc.not_valid_before_utc,
                        not_after=dsc.not_valid_after_utc, state="active", created_at=ctx.now)
    SigningKey.objects(state="active").update(set__state="retired", set__retired_at=ctx.now)
    record.save(force_insert=True)
    audit.record(ctx, "signing_key.create", target_type="signing_key", target_id=record.kid)
    return record


def init_keys(ctx: RequestContext, settings: Settings) -> KeyInfo:
    """Make sure an active DSC exists (creating the CSCA and a DSC the first time)."""
    if settings.signer_url:
        raise RemoteSigningOnly("Keys live in the signing service (HOSO_SIGNER_URL).")
    active = SigningKey.objects(state="active").first()
    if active is None or not _dsc_paths(settings.signing_key_dir, _raw(active.kid))[1].exists():
        active = _new_dsc(ctx, settings)
    return KeyInfo(active.kid, active.not_before, active.not_after, active.state)


def rotate_keys(ctx: RequestContext, settings: Settings) -> KeyInfo:
    """A new DSC; the previous one stays in the trust list until its last passport expires."""
    if settings.signer_url:
        raise RemoteSigningOnly("Keys live in the signing service (HOSO_SIGNER_URL): rotate them there.")
    record = _new_dsc(ctx, settings)
    audit.record(ctx, "signing_key.rotate", target_type="signing_key", target_id=record.kid)
    from app.runtime import runtime

    runtime().verify_cache.clear()
    return KeyInfo(record.kid, record.not_before, record.not_after, record.state)


def _raw(kid_b64: str) -> bytes:
    return base64.b64decode(kid_b64)


class SignerHolder:
    """The signer of this process, built on first use and rebuilt when the active DSC changes."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._signer: passport.Signer | None = None
        self._remote: passport.RemoteSigner | None = None

    def get(self, now: datetime) -> passport.Signer:
        with self._lock:
            if self._settings.signer_url:
                return self._remote_signer(now)
            active = SigningKey.objects(state="active").first()
            if active is None:
                raise Unavailable("No signing key: run `flask --app app keys init`.")
            if self._signer is None or _b64(self._signer.kid) != active.kid:
                cert_path, key_path = _dsc_paths(self._settings.signing_key_dir, _raw(active.kid))
                if not key_path.exists():
                    raise Unavailable("The active DSC's private key is not on this host.")
                key = passport.load_private_key(key_path.read_bytes(), _passphrase(self._settings))
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
        kid = _b64(self._remote.kid)
        if not SigningKey.objects(kid=kid).count():  # the service's DSC joins the trust list
            SigningKey.objects(state="active").update(set__state="retired", set__retired_at=now)
            SigningKey(kid=kid, dsc_der=passport.certificate_der(certificate),
                       not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
                       state="active", created_at=now).save(force_insert=True)
        return self._remote


def trust_list(now: datetime) -> passport.TrustList:
    """Every DSC a verifier should trust: the active one, and retired ones while a passport they
    signed is still unexpired; plus the CSCAs that issued them."""
    keys = [key for key in SigningKey.objects(not_after__gt=now)
            if key.state == "active" or Certificate.objects(kid=key.kid, expires_at__gt=now).count()]
    cscas = {bytes(key.csca_der) for key in keys if key.csca_der}
    return passport.TrustList.of([bytes(key.dsc_der) for key in keys],
                                 [passport.load_certificate(der) for der in cscas], country="VN")
