"""Signing keys: a development CSCA and DSCs under ``var/keys``, or a separate signing service.

With ``HOSO_SIGNER_URL`` the API talks to ``python -m passport.service`` and never holds a DSC private
key; it learns the service's DSC (public) and publishes it in the trust list. Without it, the API
signs in-process with a DSC whose private key sits encrypted (passphrase from settings) in the key
directory. Private keys never enter the database.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

import passport
from app.infra.signer import dsc_paths, kid_bytes, kid_text, passphrase
from app.models.passports import SigningKey
from app.services import audit
from app.services.audit import RequestContext
from app.services.errors import Conflict
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


def _csca(settings: Settings, now: datetime) -> tuple[object, x509.Certificate]:
    """The development CSCA, created once."""
    key_dir = settings.signing_key_dir
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (key_dir / CSCA_CERT).exists():
        certificate = passport.load_certificate((key_dir / CSCA_CERT).read_bytes())
        key = passport.load_private_key((key_dir / CSCA_KEY).read_bytes(), passphrase(settings))
        return key, certificate
    key, certificate = passport.create_csca("HoSo", now - timedelta(minutes=5), now + timedelta(days=365 * CSCA_YEARS))
    passport.save_private_key(key_dir / CSCA_KEY, key, passphrase(settings))
    (key_dir / CSCA_CERT).write_bytes(passport.certificate_pem(certificate))
    return key, certificate


def _new_dsc(ctx: RequestContext, settings: Settings) -> SigningKey:
    csca_key, csca = _csca(settings, ctx.now)
    not_after = min(ctx.now + timedelta(days=DSC_DAYS), csca.not_valid_after_utc)
    key, dsc = passport.create_dsc(csca_key, csca, f"HoSo DSC {ctx.now:%Y-%m-%d %H%M%S}",  # type: ignore[arg-type]
                                   ctx.now - timedelta(minutes=5), not_after)
    kid = passport.kid(dsc)
    cert_path, key_path = dsc_paths(settings.signing_key_dir, kid)
    passport.save_private_key(key_path, key, passphrase(settings))
    cert_path.write_bytes(passport.certificate_pem(dsc))
    record = SigningKey(kid=kid_text(kid), dsc_der=passport.certificate_der(dsc),
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
    if active is None or not dsc_paths(settings.signing_key_dir, kid_bytes(active.kid))[1].exists():
        active = _new_dsc(ctx, settings)
    return KeyInfo(active.kid, active.not_before, active.not_after, active.state)


def rotate_keys(ctx: RequestContext, settings: Settings, *, verify_cache: MutableMapping[str, Any]) -> KeyInfo:
    """A new DSC; the previous one stays in the trust list until its last passport expires.

    ``verify_cache`` (the app's cached trust list) is emptied, so this process verifies with the new key at once.
    """
    if settings.signer_url:
        raise RemoteSigningOnly("Keys live in the signing service (HOSO_SIGNER_URL): rotate them there.")
    record = _new_dsc(ctx, settings)
    audit.record(ctx, "signing_key.rotate", target_type="signing_key", target_id=record.kid)
    verify_cache.clear()
    return KeyInfo(record.kid, record.not_before, record.not_after, record.state)


def trust_list(now: datetime) -> passport.TrustList:
    """Every DSC a verifier should trust: the active one, and retired ones while a passport they
    signed is still unexpired; plus the CSCAs that issued them."""
    keys = [key for key in SigningKey.objects(not_after__gt=now)
            if key.state == "active" or (key.passports_expire_by is not None and key.passports_expire_by > now)]
    cscas = {bytes(key.csca_der) for key in keys if key.csca_der}
    return passport.TrustList.of([bytes(key.dsc_der) for key in keys],
                                 [passport.load_certificate(der) for der in cscas], country="VN")
