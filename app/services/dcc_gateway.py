"""The EU DCC Gateway: publish Viet Nam's DSCs in the gateway's formats, upload them, import other
countries' DSCs, and the national-backend API the EU's DGCA verifier apps download keys from.

Decisions worth knowing:

- What HoSo publishes (``/passport/trust-list``, ``/passport/dcc/trustList``, the national-backend
  API) is the same set: Viet Nam's DSCs as ``signing_keys.trust_list`` chooses them (the active one,
  and retired ones while a passport they signed is unexpired), plus every foreign DSC the last checked
  gateway list carried. Verification (``POST /passport/verify``) trusts the same set.
- ``upload`` sends each published Vietnamese DSC the gateway does not hold yet; ``revoke`` deletes from
  the gateway those HoSo no longer publishes (and any kid named). A DSC whose passports are all
  expired is of no use to a verifier, and one that is still needed must not vanish from the gateway.
- A download replaces the foreign keys: accepted entries are stored or refreshed; foreign keys the list
  no longer carries are removed; an entry that fails a check is refused and leaves the key it names as
  it was (a forged entry can neither add nor replace nor remove a key).
- The resume token of ``/signercertificateUpdate`` is a number given to each DSC when it is first
  published, never reused, so an app that resumes later gets exactly the DSCs that joined since.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mongoengine import NotUniqueError

import passport
from app.models.dcc_gateway import Counter, DscSequence, ForeignSigningKey, GatewayRevocationBatch, GatewayUpload
from app.models.passports import SigningKey
from app.models.registries import CertificateRevocation
from app.services import audit, signing_keys
from app.services.audit import RequestContext
from app.services.errors import Conflict, Unavailable
from app.settings import Settings
from passport import gateway

COUNTRY = "VN"
TIMEOUT_SECONDS = 30
MAX_TRUST_LIST_BYTES = 64 * 1024 * 1024


class GatewayNotConfigured(Conflict):
    """A gateway setting this command needs is not set."""

    slug = "dcc-gateway-not-configured"


@dataclass(frozen=True)
class Published:
    """A DSC HoSo publishes: its certificate and where it came from."""

    certificate: passport.TrustedCertificate
    country: str
    timestamp: datetime
    signature: str | None  # a foreign entry's gateway CMS; ``None``: sign with HoSo's upload key


@dataclass(frozen=True)
class Outcome:
    """What one gateway call did, for the operator's report."""

    action: str
    target: str
    ok: bool
    status: int | None
    detail: str

    def line(self) -> str:
        mark = "ok" if self.ok else "FAILED"
        code = f" HTTP {self.status}" if self.status is not None else ""
        return f"{mark}: {self.action} {self.target}{code}: {self.detail}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- what HoSo publishes ---------------------------------------------------------------------------


def published(now: datetime) -> list[Published]:
    """Viet Nam's published DSCs, then the foreign DSCs of the last checked gateway list."""
    own = signing_keys.trust_list(now)
    created = {key.kid: key.created_at for key in SigningKey.objects(kid__in=[entry.kid_text for entry in own])}
    items = [Published(entry, COUNTRY, created.get(entry.kid_text) or entry.not_before, None) for entry in own]
    for key in ForeignSigningKey.objects(state="active").order_by("imported_at"):
        items.append(Published(passport.TrustedCertificate.from_certificate(bytes(key.dsc_der), key.country),
                               key.country, key.imported_at, key.signature))
    return items


def trust_list(now: datetime) -> passport.TrustList:
    """The trust list verification uses and ``/passport/trust-list`` publishes: Viet Nam's DSCs with
    its CSCAs, and the foreign DSCs (which the gateway's CSCAs vouched for at import)."""
    own = signing_keys.trust_list(now)
    foreign = [passport.TrustedCertificate.from_certificate(bytes(key.dsc_der), key.country)
               for key in ForeignSigningKey.objects(state="active")]
    return passport.TrustList([*own, *foreign], own.cscas)


def _upload_credentials(settings: Settings) -> tuple[x509.Certificate, Any]:
    """The upload certificate and key (only the gateway commands need them, never the API)."""
    if settings.dcc_gateway_upload_cert_file is None or settings.dcc_gateway_upload_key_file is None:
        raise GatewayNotConfigured("Set HOSO_DCC_GATEWAY_UPLOAD_CERT_FILE and HOSO_DCC_GATEWAY_UPLOAD_KEY_FILE.")
    try:
        certificate = passport.load_certificate(settings.dcc_gateway_upload_cert_file.read_bytes())
        key = serialization.load_pem_private_key(settings.dcc_gateway_upload_key_file.read_bytes(),
                                                 password=settings.dcc_gateway_upload_key_passphrase)
    except (OSError, ValueError, TypeError, passport.PassportError) as error:
        raise Unavailable(f"The gateway upload certificate or key cannot be read: {error}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) \
            or key.public_key() != certificate.public_key():
        raise Unavailable("The gateway upload key is not the upload certificate's key.")
    return certificate, key


def gateway_entries(now: datetime) -> list[dict[str, str]]:
    """``GET /passport/dcc/trustList``: the DSC entries of the gateway's trust list.

    Viet Nam's carry the detached CMS the upload command made with the upload certificate (empty
    for a DSC not uploaded yet), foreign ones the gateway's: answering this public route signs
    nothing, and the API needs no upload key.
    """
    uploaded = {record.kid: record.signature for record in GatewayUpload.objects(state="uploaded").only(
        "kid", "signature")}
    entries = []
    for item in published(now):
        signature = item.signature if item.signature is not None else uploaded.get(item.certificate.kid_text) or ""
        entry = gateway.dsc_entry(item.certificate.der, item.country, item.timestamp, None)
        entries.append(gateway.TrustListEntry(**{**entry.to_json(), "signature": signature}).to_json())
    return entries


def status_kids(now: datetime) -> list[str]:
    """``GET /passport/dcc/signercertificateStatus``: the kids of every published DSC."""
    return sorted({item.certificate.kid_text for item in published(now)})


def _sequence(thumbprint: str) -> int:
    """The DSC's publication number, given on first sight and never changed."""
    existing = DscSequence.objects(thumbprint=thumbprint).first()
    if existing is not None:
        return int(existing.seq)
    counter = Counter._get_collection().find_one_and_update(
        {"_id": "dsc_sequence"}, {"$inc": {"value": 1}}, upsert=True, return_document=True)
    try:
        DscSequence(thumbprint=thumbprint, seq=int(counter["value"])).save(force_insert=True)
    except NotUniqueError:  # another request numbered it first: keep theirs
        return int(DscSequence.objects(thumbprint=thumbprint).first().seq)
    return int(counter["value"])


def next_certificate(now: datetime, resume_token: int | None) -> tuple[str, str, int] | None:
    """``GET /passport/dcc/signercertificateUpdate``: the published DSC that follows the resume token.

    :returns: (kid, base64 DER, its resume token), or ``None`` when there is none after it
    """
    items = {gateway.thumbprint(item.certificate.der): item for item in published(now)}
    numbers = {known.thumbprint: int(known.seq) for known in DscSequence.objects(thumbprint__in=list(items))}
    for thumbprint in items.keys() - numbers.keys():
        numbers[thumbprint] = _sequence(thumbprint)
    following = [(seq, thumbprint) for thumbprint, seq in numbers.items()
                 if resume_token is None or seq > resume_token]
    if not following:
        return None
    seq, thumbprint = min(following)
    certificate = items[thumbprint].certificate
    return certificate.kid_text, _b64(certificate.der), seq


# --- talking to the gateway ------------------------------------------------------------------------


def _base_url(settings: Settings) -> str:
    if not settings.dcc_gateway_url:
        raise GatewayNotConfigured("Set HOSO_DCC_GATEWAY_URL.")
    return settings.dcc_gateway_url.rstrip("/")


def _tls(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(settings.dcc_gateway_ca_file) if settings.dcc_gateway_ca_file
                                         else None)
    if settings.dcc_gateway_tls_cert_file and settings.dcc_gateway_tls_key_file:
        context.load_cert_chain(str(settings.dcc_gateway_tls_cert_file), str(settings.dcc_gateway_tls_key_file))
    return context


def _call(settings: Settings, method: str, path: str, body: bytes | None = None,
          content_type: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange with the gateway (mutual TLS with the client certificate when set)."""
    url = _base_url(settings) + path
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
        headers["Content-Encoding"] = "base64"  # the gateway's CMS endpoints take base64 DER
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    context = _tls(settings) if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=context) as response:  # noqa: S310
            return response.status, {k.lower(): v for k, v in response.headers.items()}, \
                response.read(MAX_TRUST_LIST_BYTES + 1)
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read(64 * 1024)
    except (urllib.error.URLError, OSError) as error:
        raise Unavailable(f"The DCC gateway cannot be reached: {error}") from None


def _problem(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(document, dict):
        return str(document.get("problem") or document.get("details") or document.get("message") or document)[:300]
    return str(document)[:300]


def _record(ctx: RequestContext, outcome: Outcome, target_type: str, **details: Any) -> Outcome:
    audit.record(ctx, f"dcc_gateway.{outcome.action}", "success" if outcome.ok else "failure",
                 target_type=target_type, target_id=outcome.target, details={"status": outcome.status, **details})
    return outcome


def upload(ctx: RequestContext, settings: Settings) -> list[Outcome]:
    """Upload every published Vietnamese DSC the gateway does not hold yet (``POST /signerCertificate``,
    a CMS over the DSC signed with the upload certificate)."""
    certificate, key = _upload_credentials(settings)
    outcomes = []
    for entry in signing_keys.trust_list(ctx.now):
        # The trust-list entry's signature, served by GET /passport/dcc/trustList (see gateway_entries).
        detached = base64.b64encode(gateway.sign_cms(entry.der, certificate, key, detached=True)).decode()
        if GatewayUpload.objects(kid=entry.kid_text, state="uploaded").count():
            GatewayUpload.objects(kid=entry.kid_text, signature=None).update_one(set__signature=detached)
            outcomes.append(Outcome("upload", entry.kid_text, True, None, "already on the gateway"))
            continue
        message = base64.b64encode(gateway.sign_cms(entry.der, certificate, key))
        status, _, body = _call(settings, "POST", "/signerCertificate", message, "application/cms")
        ok = status in (201, 409)  # 409: the gateway holds it already
        if ok:
            GatewayUpload.objects(kid=entry.kid_text).update_one(
                set__state="uploaded", set__uploaded_at=ctx.now, unset__deleted_at=True,
                set__signature=detached, upsert=True)
        detail = "uploaded" if status == 201 else "already on the gateway" if status == 409 else _problem(body)
        outcomes.append(_record(ctx, Outcome("upload", entry.kid_text, ok, status, detail), "signing_key"))
    return outcomes


def revoke(ctx: RequestContext, settings: Settings, kids: tuple[str, ...] = ()) -> list[Outcome]:
    """Delete from the gateway the Vietnamese DSCs HoSo no longer publishes, and any kid named
    (``DELETE /signerCertificate`` with a CMS over the DSC)."""
    certificate, key = _upload_credentials(settings)
    still = {entry.kid_text for entry in signing_keys.trust_list(ctx.now)}
    targets = [upload.kid for upload in GatewayUpload.objects(state="uploaded") if upload.kid not in still]
    targets += [kid for kid in kids if kid not in targets]
    outcomes = []
    for kid in targets:
        record = SigningKey.objects(kid=kid).first()
        if record is None:
            outcomes.append(Outcome("revoke", kid, False, None, "no such Vietnamese DSC"))
            continue
        message = base64.b64encode(gateway.sign_cms(bytes(record.dsc_der), certificate, key))
        status, _, body = _call(settings, "DELETE", "/signerCertificate", message, "application/cms")
        ok = status in (204, 404)  # 404: the gateway does not hold it
        if ok:
            GatewayUpload.objects(kid=kid).update_one(set__state="deleted", set__deleted_at=ctx.now,
                                                      set__uploaded_at=ctx.now, upsert=True)
        detail = "deleted" if status == 204 else "not on the gateway" if status == 404 else _problem(body)
        outcomes.append(_record(ctx, Outcome("revoke", kid, ok, status, detail), "signing_key"))
    return outcomes


def upload_revocations(ctx: RequestContext, settings: Settings) -> list[Outcome]:
    """Upload revoked, unexpired passports not yet sent, as batches per kid and hash type
    (``POST /revocation-list``, a CMS over the batch JSON)."""
    certificate, key = _upload_credentials(settings)
    revoked = list(CertificateRevocation.objects(expires_at__gt=ctx.now).only(
        "id", "kid", "expires_at", "hash_uci", "hash_countrycode_uci", "hash_signature"))
    fields = {"UCI": "hash_uci", "COUNTRYCODEUCI": "hash_countrycode_uci", "SIGNATURE": "hash_signature"}
    outcomes = []
    for hash_type, field_name in fields.items():
        sent = set(GatewayRevocationBatch.objects(hash_type=hash_type).distinct("uvcis"))
        by_kid: dict[str, list[CertificateRevocation]] = {}
        for item in revoked:
            if item.id not in sent:
                by_kid.setdefault(item.kid, []).append(item)
        for kid_text, items in sorted(by_kid.items()):
            for start in range(0, len(items), gateway.MAX_BATCH_ENTRIES):
                chunk = items[start:start + gateway.MAX_BATCH_ENTRIES]
                expires = max(item.expires_at for item in chunk)
                text = gateway.revocation_batch(COUNTRY, base64.b64decode(kid_text), hash_type,
                                                [base64.b64decode(getattr(item, field_name)) for item in chunk],
                                                expires)
                message = base64.b64encode(gateway.sign_cms(text.encode("utf-8"), certificate, key))
                status, headers, body = _call(settings, "POST", "/revocation-list", message, "application/cms-text")
                batch_id = headers.get("etag", "").strip('"')
                ok = status == 201 and bool(batch_id)
                target = f"{kid_text}/{hash_type}"
                if ok:
                    GatewayRevocationBatch(batch_id=batch_id[:64], kid=kid_text, hash_type=hash_type,
                                           uvcis=[item.id for item in chunk], expires=expires,
                                           uploaded_at=ctx.now).save(force_insert=True)
                detail = f"batch {batch_id} of {len(chunk)}" if ok else _problem(body)
                outcomes.append(_record(ctx, Outcome("revocations", target, ok, status, detail), "revocation_batch",
                                        entries=len(chunk)))
    return outcomes


# --- importing other countries' DSCs ---------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What a download changed."""

    source: str
    added: list[str]
    refreshed: list[str]
    removed: list[str]
    refused: list[gateway.Refusal]

    def lines(self) -> list[str]:
        out = [f"{self.source}: {len(self.added)} added, {len(self.refreshed)} kept, {len(self.removed)} removed, "
               f"{len(self.refused)} refused"]
        out += [f"refused [{item.index}] {item.certificate_type} {item.country} {item.kid}: {item.reason}"
                for item in self.refused]
        return out


def _trust_anchors(settings: Settings) -> list[x509.Certificate]:
    path = settings.dcc_gateway_trust_anchor_file
    if path is None:
        raise GatewayNotConfigured("Set HOSO_DCC_GATEWAY_TRUST_ANCHOR_FILE (the gateway's trust anchor, PEM).")
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as error:
        raise Unavailable(f"The gateway trust anchor cannot be read: {error}") from None


def fetch_trust_list(settings: Settings) -> object:
    """``GET /trustList`` from the gateway, parsed."""
    status, _, body = _call(settings, "GET", "/trustList")
    if status != 200 or len(body) > MAX_TRUST_LIST_BYTES:
        raise Unavailable(f"The gateway answered {status} to GET /trustList: {_problem(body)}")
    try:
        return json.loads(body)
    except ValueError:
        raise Unavailable("The gateway's trust list is not JSON.") from None


def read_file(path: Path) -> object:
    """A gateway trust list saved to a file, parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Unavailable(f"{path} is not a readable JSON trust list: {error}") from None


def import_trust_list(ctx: RequestContext, settings: Settings, document: object, source: str, *,
                      verify_cache: MutableMapping[str, Any]) -> ImportReport:
    """Check a gateway trust list against the configured trust anchor and store the foreign DSCs it
    vouches for (see the module's decisions). Nothing changes when the document is not a list.

    ``verify_cache`` (the app's cached trust list) is emptied once the new keys are stored.
    """
    try:
        checked = gateway.read_trust_list(document, _trust_anchors(settings))
    except passport.GatewayError as error:
        audit.record(ctx, "dcc_gateway.download", "failure", target_type="trust_list", target_id=source[:200],
                     reason=str(error)[:500])
        raise Unavailable(f"The trust list was refused: {error}") from None
    listed = set()
    for item in document if isinstance(document, list) else []:
        if isinstance(item, dict) and isinstance(item.get("thumbprint"), str):
            listed.add(item["thumbprint"].lower())
    added, refreshed = [], []
    with audit.recording(ctx, "dcc_gateway.download", target_type="trust_list", target_id=source[:200]) as details:
        for accepted in checked.dscs:
            entry = accepted.entry
            if entry.country == COUNTRY:
                continue  # Viet Nam's own DSCs come from its signing keys, never from a download
            trusted = accepted.certificate
            result = ForeignSigningKey.objects(thumbprint=entry.thumbprint.lower()).update_one(
                set__kid=trusted.kid_text, set__country=entry.country, set__dsc_der=trusted.der,
                set__not_before=trusted.not_before, set__not_after=trusted.not_after, set__source=source[:300],
                set__signature=entry.signature, set__gateway_timestamp=entry.timestamp[:64],
                set__csca_checked=accepted.csca_checked, set__state="active", unset__removed_at=True,
                set_on_insert__imported_at=ctx.now, upsert=True, full_result=True)
            (added if result.raw_result.get("upserted") is not None else refreshed).append(trusted.kid_text)
            _sequence(entry.thumbprint.lower())
        removed = []
        for key in ForeignSigningKey.objects(state="active"):
            if key.thumbprint not in listed:
                key.update(set__state="removed", set__removed_at=ctx.now)
                removed.append(key.kid)
        details.update(added=added, refreshed=len(refreshed), removed=removed, refused=[
            {"index": item.index, "kid": _shown(item.kid, 64), "country": _shown(item.country, 8),
             "reason": _shown(item.reason, 200)}
            for item in checked.refused[:100]])
    verify_cache.clear()  # this app only: API workers see the new keys within 10 s
    return ImportReport(source, added, refreshed, removed, checked.refused)


def _shown(value: object, limit: int) -> str:
    """A value from a foreign list as audit text: bounded, and escaped where it is not plain text."""
    text = str(value)[:limit]
    return text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode("ascii")
