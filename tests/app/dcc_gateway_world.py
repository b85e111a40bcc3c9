"""A stand-in EU DCC Gateway for tests: its trust anchor, countries' upload certificates and CSCAs,
and a loopback HTTP server that implements the gateway's documented upload and download contract."""

from __future__ import annotations

import base64
import ipaddress
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import passport
from passport import gateway

NOW = datetime.now(UTC)


def party(name: str, country: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed certificate (trust anchor, upload or CSCA) of a country."""
    return passport.create_csca(name, NOW - timedelta(days=1), NOW + timedelta(days=365), country)


def write_pem(directory: Path, name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
              ) -> tuple[Path, Path]:
    """Write an unencrypted PEM key and its certificate; return (cert path, key path)."""
    cert_path, key_path = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    cert_path.write_bytes(passport.certificate_pem(certificate))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def detached(message: bytes) -> bytes:
    """What the gateway publishes of an upload: the CMS without its content (the gateway's repack)."""
    info = cms.ContentInfo.load(message)
    info["content"]["encap_content_info"]["content"] = None
    return cms.ContentInfo.load(info.dump(force=True)).dump()


@dataclass
class Gateway:
    """The gateway's state: onboarded parties and uploaded DSCs and batches."""

    anchor_key: ec.EllipticCurvePrivateKey
    anchor: x509.Certificate
    uploads: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    cscas: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    dscs: dict[str, dict[str, Any]] = field(default_factory=dict)  # thumbprint -> entry
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    extra: list[dict[str, str]] = field(default_factory=list)  # entries listed as they are (forgeries)

    def onboard(self, country: str, upload: x509.Certificate, csca: x509.Certificate | None = None) -> None:
        self.uploads.setdefault(country, []).append(upload)
        if csca is not None:
            self.cscas.setdefault(country, []).append(csca)

    def trust_list(self) -> list[dict[str, str]]:
        """``GET /trustList``: every party signed by the trust anchor, then the DSCs."""
        out = []
        for kind, parties in (("UPLOAD", self.uploads), ("CSCA", self.cscas)):
            for country, certificates in parties.items():
                for certificate in certificates:
                    out.append(gateway.trusted_party_entry(certificate, country, kind, NOW,
                                                           (self.anchor, self.anchor_key)).to_json())
        return out + self.extra + list(self.dscs.values())

    def receive(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """Handle one request as the gateway's contract says; the client here is always Viet Nam."""
        country = "VN"
        if method == "GET" and path == "/trustList":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.trust_list()).encode()
        expected = {"/signerCertificate": "application/cms", "/revocation-list": "application/cms-text"}
        if path not in expected:
            return 404, {}, b""
        if headers.get("Content-Type") not in (expected[path], "application/cms"):
            return 415, {}, b""
        try:
            message = base64.b64decode(body, validate=True)
            signer, content = gateway.verify_cms(message)
        except (ValueError, passport.GatewayError) as error:
            return 400, {"Content-Type": "application/json"}, json.dumps(
                {"code": "0x260", "problem": "CMS signature is invalid", "details": str(error)}).encode()
        allowed = {passport.certificate_der(item) for item in self.uploads.get(country, [])}
        if passport.certificate_der(signer) not in allowed:
            return 400 if path == "/signerCertificate" else 403, {"Content-Type": "application/json"}, json.dumps(
                {"code": "0x004", "problem": "Invalid Upload Certificate"}).encode()
        if path == "/signerCertificate":
            dsc = x509.load_der_x509_certificate(content)
            print_ = gateway.thumbprint(content)
            if method == "POST":
                if not any(passport.trust.issued_by(dsc, csca) for csca in self.cscas.get(country, [])):
                    return 400, {}, json.dumps({"code": "0x004", "problem": "not signed by known CA"}).encode()
                if print_ in self.dscs:
                    return 409, {}, json.dumps({"code": "0x002", "problem": "already exists"}).encode()
                self.dscs[print_] = {
                    "kid": base64.b64encode(passport.kid(content)).decode(), "timestamp": NOW.isoformat(),
                    "country": country, "certificateType": "DSC", "thumbprint": print_,
                    "signature": base64.b64encode(detached(message)).decode(),
                    "rawData": base64.b64encode(content).decode()}
                return 201, {}, b""
            if method == "DELETE":
                if self.dscs.pop(print_, None) is None:
                    return 404, {}, b""
                return 204, {}, b""
        if path == "/revocation-list" and method == "POST":
            batch = json.loads(content)
            if batch.get("country") != country or not 1 <= len(batch.get("entries", [])) <= 1000 \
                    or batch.get("hashType") not in ("UCI", "COUNTRYCODEUCI", "SIGNATURE") \
                    or any(len(entry["hash"]) != 24 for entry in batch["entries"]) \
                    or not 11 <= len(batch.get("kid", "")) <= 12:
                return 400, {}, json.dumps({"problem": "Batch has invalid values."}).encode()
            batch_id = str(uuid.uuid4())
            self.batches[batch_id] = batch
            return 201, {"ETag": batch_id}, b""
        return 405, {}, b""


def new_gateway() -> Gateway:
    key, certificate = party("EU DCC Gateway Trust Anchor", "EU")
    return Gateway(key, certificate)


class GatewayServer:
    """The gateway on a loopback port, in a thread, for the length of a test."""

    def __init__(self, state: Gateway, tls: ssl.SSLContext | None = None) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, answer = owner.state.receive(self.command, self.path, self.headers, body)
                owner.state.calls.append((self.command, self.path, status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.state = state
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> GatewayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


VECTORS = Path(__file__).parents[1] / "data" / "dcc" / "vectors"
KNOWN = Path(__file__).parents[1] / "data" / "dcc" / "known-disagreements.json"


def vector_dscs() -> dict[str, list[bytes]]:
    """The DSCs of the official EU test vectors by country (the subject's C; the folder's name when
    the certificate names none, "EU" for the synthetic ``common`` set), each DSC once."""
    from cryptography.x509.oid import NameOID

    seen: set[bytes] = set()
    by_country: dict[str, list[bytes]] = {}
    for path in sorted(VECTORS.rglob("*.json")):
        certificate = json.loads(path.read_text()).get("TESTCTX", {}).get("CERTIFICATE")
        if not certificate:
            continue
        der = base64.b64decode(certificate)
        if der in seen:
            continue
        seen.add(der)
        names = x509.load_der_x509_certificate(der).subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
        folder = path.relative_to(VECTORS).parts[0]
        country = str(names[0].value) if names else (folder if len(folder) == 2 else "EU")
        by_country.setdefault(country, []).append(der)
    return by_country


def verifying_vectors() -> list[str]:
    """Vectors whose signature must verify (``EXPECTEDVERIFY`` true), less the deliberate disagreements."""
    known = {entry["vector"] for entry in json.loads(KNOWN.read_text())["disagreements"]
             if entry["flag"] == "EXPECTEDVERIFY"}
    out = []
    for path in sorted(VECTORS.rglob("*.json")):
        relative = path.relative_to(VECTORS).as_posix()
        vector = json.loads(path.read_text())
        if vector.get("EXPECTEDRESULTS", {}).get("EXPECTEDVERIFY") is True and relative not in known:
            out.append(relative)
    return out


def publish_vector_dscs(state: Gateway) -> dict[str, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]]:
    """Onboard every vector country with an upload certificate and list its DSCs as it uploaded them
    (their CSCAs are not in the test data, so the list carries none for these countries)."""
    uploads = {}
    for country, ders in vector_dscs().items():
        key, upload = party(f"{country} upload", country)
        state.onboard(country, upload)
        uploads[country] = (key, upload)
        for der in ders:
            entry = gateway.dsc_entry(der, country, NOW, (upload, key))
            state.dscs[entry.thumbprint] = entry.to_json()
    return uploads


def tls_material(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (mutual TLS with the gateway)."""
    ca_key, ca = party("Gateway TLS CA", "EU")
    paths = {"ca": write_pem(directory, "tls-ca", ca_key, ca)[0]}
    usages = {"server": x509.ExtendedKeyUsageOID.SERVER_AUTH, "client": x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    for name, usage in usages.items():
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, f"tls {name}"),
                                            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "VN")]))
                   .issuer_name(ca.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=30))
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if name == "server":
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        paths[f"{name}_cert"], paths[f"{name}_key"] = write_pem(directory, f"tls-{name}", key,
                                                                 builder.sign(ca_key, hashes.SHA256()))
    return paths


def server_tls(paths: dict[str, Path]) -> ssl.SSLContext:
    """The gateway's TLS: its server certificate, and a client certificate from the CA required."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["server_cert"], paths["server_key"])
    context.load_verify_locations(paths["ca"])
    context.verify_mode = ssl.CERT_REQUIRED
    return context
