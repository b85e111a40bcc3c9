"""Settings: every ``HOSO_*`` environment variable, read once, typed and checked at start-up."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import secrets
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEVELOPMENT = "development"
PRODUCTION = "production"
MAX_ACCESS_TOKEN_SECONDS = 15 * 60
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


class SettingsError(ValueError):
    """A setting is missing, malformed or too weak; the message names the variable."""


# How ``from_env`` reads a variable (see ``_EnvReader.read``).
TEXT, OPTIONAL, UPPER, INTEGER, FLAG, PATH, FILE, SECRET, SECRET_BYTES = (
    "text", "optional", "upper", "integer", "flag", "path", "file", "secret", "secret bytes")
_SECRETS = (SECRET, SECRET_BYTES)  # given inline (NAME) or as a file (NAME_FILE)


def setting(env: str, default: Any = MISSING, *, read: str = TEXT, shown: str | None = None) -> Any:
    """Declare one setting: its field default, the ``HOSO_*`` variable, how it is read.

    ``shown`` is the default as the README's settings table gives it when it is not the field's own
    (a development secret taken from ``var/secrets``); tests/app/test_settings.py holds the table to it.
    """
    metadata = {"env": env, "read": read, "shown": shown}
    return field(metadata=metadata) if default is MISSING else field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Typed configuration of one HoSo process: each field declares its variable and default once.

    Tests build it directly; processes call :meth:`from_env`.
    """

    jwt_private_key_pem: str = setting("HOSO_JWT_PRIVATE_KEY", read=SECRET,
                                       shown="dev: var/secrets/jwt-private-key.pem")
    data_key: bytes = setting("HOSO_DATA_KEY", read=SECRET, shown="dev: var/secrets/data-key")
    env: str = setting("HOSO_ENV", DEVELOPMENT)
    mongodb_uri: str | None = setting("HOSO_MONGODB_URI", None, read=OPTIONAL)
    var_dir: Path = setting("HOSO_VAR_DIR", Path("var"), read=PATH)
    jwt_issuer: str = setting("HOSO_JWT_ISSUER", "hoso")
    jwt_audience: str = setting("HOSO_JWT_AUDIENCE", "hoso-api")
    access_token_seconds: int = setting("HOSO_ACCESS_TOKEN_SECONDS", MAX_ACCESS_TOKEN_SECONDS, read=INTEGER)
    max_body_bytes: int = setting("HOSO_MAX_BODY_BYTES", 256 * 1024, read=INTEGER)
    argon2_time_cost: int = setting("HOSO_ARGON2_TIME_COST", 3, read=INTEGER)
    argon2_memory_kib: int = setting("HOSO_ARGON2_MEMORY_KIB", 64 * 1024, read=INTEGER)
    argon2_parallelism: int = setting("HOSO_ARGON2_PARALLELISM", 1, read=INTEGER)
    login_max_failures: int = setting("HOSO_LOGIN_MAX_FAILURES", 5, read=INTEGER)
    login_lockout_seconds: int = setting("HOSO_LOGIN_LOCKOUT_SECONDS", 15 * 60, read=INTEGER)
    login_known_address_days: int = setting("HOSO_LOGIN_KNOWN_ADDRESS_DAYS", 90, read=INTEGER)
    login_known_addresses: int = setting("HOSO_LOGIN_KNOWN_ADDRESSES", 10, read=INTEGER)
    rate_limit_default: str = setting("HOSO_RATE_LIMIT_DEFAULT", "600 per minute")
    rate_limit_auth_per_ip: str = setting("HOSO_RATE_LIMIT_AUTH_PER_IP", "60 per minute")
    rate_limit_share_per_ip: str = setting("HOSO_RATE_LIMIT_SHARE_PER_IP", "30 per minute")
    trusted_proxy_count: int = setting("HOSO_TRUSTED_PROXY_COUNT", 0, read=INTEGER)
    log_level: str = setting("HOSO_LOG_LEVEL", "INFO", read=UPPER)
    activation_code_ttl_hours: int = setting("HOSO_ACTIVATION_CODE_TTL", 72, read=INTEGER)
    enrollment_seconds: int = setting("HOSO_ENROLLMENT_SECONDS", 600, read=INTEGER)
    session_absolute_days: int = setting("HOSO_SESSION_ABSOLUTE_DAYS", 30, read=INTEGER)
    session_idle_days: int = setting("HOSO_SESSION_IDLE_DAYS", 7, read=INTEGER)
    bulk_max_bytes: int = setting("HOSO_BULK_MAX_BYTES", 1024 * 1024 * 1024, read=INTEGER)
    xml130_max_bytes: int = setting("HOSO_XML130_MAX_BYTES", 64 * 1024 * 1024, read=INTEGER)
    signing_key_passphrase: bytes | None = setting(
        "HOSO_SIGNING_KEY_PASSPHRASE", None, read=SECRET_BYTES, shown="dev: var/secrets/signing-key-passphrase")
    signer_url: str | None = setting("HOSO_SIGNER_URL", None, read=OPTIONAL)
    signer_secret: bytes | None = setting("HOSO_SIGNER_SECRET", None, read=SECRET_BYTES)
    passport_issuer: str = setting("HOSO_PASSPORT_ISSUER", "Ministry of Health of Viet Nam")
    passport_valid_days: int = setting("HOSO_PASSPORT_VALID_DAYS", 365, read=INTEGER)
    rate_limit_verify_per_ip: str = setting("HOSO_RATE_LIMIT_VERIFY_PER_IP", "120 per minute")
    smtp_host: str | None = setting("HOSO_SMTP_HOST", None, read=OPTIONAL)
    smtp_port: int = setting("HOSO_SMTP_PORT", 587, read=INTEGER)
    smtp_sender: str = setting("HOSO_SMTP_SENDER", "HoSo <no-reply@hoso.invalid>")
    smtp_username: str | None = setting("HOSO_SMTP_USERNAME", None, read=OPTIONAL)
    smtp_password: str | None = setting("HOSO_SMTP_PASSWORD", None, read=SECRET)
    smtp_starttls: bool = setting("HOSO_SMTP_STARTTLS", True, read=FLAG)
    sms_url: str | None = setting("HOSO_SMS_URL", None, read=OPTIONAL)
    sms_token: str | None = setting("HOSO_SMS_TOKEN", None, read=SECRET)
    push_url: str | None = setting("HOSO_PUSH_URL", None, read=OPTIONAL)
    push_token: str | None = setting("HOSO_PUSH_TOKEN", None, read=SECRET)
    reminder_interval_days: int = setting("HOSO_REMINDER_INTERVAL_DAYS", 28, read=INTEGER)
    dcc_gateway_url: str | None = setting("HOSO_DCC_GATEWAY_URL", None, read=OPTIONAL)
    dcc_gateway_upload_cert_file: Path | None = setting("HOSO_DCC_GATEWAY_UPLOAD_CERT_FILE", None, read=FILE)
    dcc_gateway_upload_key_file: Path | None = setting("HOSO_DCC_GATEWAY_UPLOAD_KEY_FILE", None, read=FILE)
    dcc_gateway_upload_key_passphrase: bytes | None = setting(
        "HOSO_DCC_GATEWAY_UPLOAD_KEY_PASSPHRASE", None, read=SECRET_BYTES)
    dcc_gateway_tls_cert_file: Path | None = setting("HOSO_DCC_GATEWAY_TLS_CERT_FILE", None, read=FILE)
    dcc_gateway_tls_key_file: Path | None = setting("HOSO_DCC_GATEWAY_TLS_KEY_FILE", None, read=FILE)
    dcc_gateway_ca_file: Path | None = setting("HOSO_DCC_GATEWAY_CA_FILE", None, read=FILE)
    dcc_gateway_trust_anchor_file: Path | None = setting("HOSO_DCC_GATEWAY_TRUST_ANCHOR_FILE", None, read=FILE)

    def __post_init__(self) -> None:
        if self.env not in (DEVELOPMENT, PRODUCTION):
            raise SettingsError(f"HOSO_ENV must be '{DEVELOPMENT}' or '{PRODUCTION}'")
        check_data_key(self.data_key, "HOSO_DATA_KEY")
        check_jwt_key(self.jwt_private_key_pem, "HOSO_JWT_PRIVATE_KEY")
        if not 60 <= self.access_token_seconds <= MAX_ACCESS_TOKEN_SECONDS:
            raise SettingsError("HOSO_ACCESS_TOKEN_SECONDS must be between 60 and 900")
        if self.max_body_bytes < 1024:
            raise SettingsError("HOSO_MAX_BODY_BYTES must be at least 1024")
        if self.login_max_failures < 1 or self.login_lockout_seconds < 1:
            raise SettingsError("HOSO_LOGIN_MAX_FAILURES and HOSO_LOGIN_LOCKOUT_SECONDS must be >= 1")
        if not 1 <= self.login_known_address_days <= 365 or not 1 <= self.login_known_addresses <= 100:
            raise SettingsError(
                "HOSO_LOGIN_KNOWN_ADDRESS_DAYS must be 1 to 365 and HOSO_LOGIN_KNOWN_ADDRESSES 1 to 100"
            )
        if not 1 <= self.activation_code_ttl_hours <= 24 * 14:
            raise SettingsError("HOSO_ACTIVATION_CODE_TTL must be between 1 and 336 hours")
        if not 60 <= self.enrollment_seconds <= MAX_ACCESS_TOKEN_SECONDS:
            raise SettingsError("HOSO_ENROLLMENT_SECONDS must be between 60 and 900")
        if not 1 <= self.session_idle_days <= self.session_absolute_days <= 365:
            raise SettingsError(
                "HOSO_SESSION_IDLE_DAYS must be at least 1 and at most HOSO_SESSION_ABSOLUTE_DAYS (<= 365)"
            )
        if self.signer_url and (not self.signer_secret or len(self.signer_secret) < 32):
            raise SettingsError("HOSO_SIGNER_SECRET (at least 32 bytes) is required with HOSO_SIGNER_URL")
        if self.signing_key_passphrase is not None and len(self.signing_key_passphrase) < 16:
            raise SettingsError("HOSO_SIGNING_KEY_PASSPHRASE must have at least 16 characters")
        if not 1 <= self.passport_valid_days <= 365:
            raise SettingsError("HOSO_PASSPORT_VALID_DAYS must be between 1 and 365")
        if (self.dcc_gateway_upload_cert_file is None) != (self.dcc_gateway_upload_key_file is None):
            raise SettingsError("HOSO_DCC_GATEWAY_UPLOAD_CERT_FILE and HOSO_DCC_GATEWAY_UPLOAD_KEY_FILE go together")
        if (self.dcc_gateway_tls_cert_file is None) != (self.dcc_gateway_tls_key_file is None):
            raise SettingsError("HOSO_DCC_GATEWAY_TLS_CERT_FILE and HOSO_DCC_GATEWAY_TLS_KEY_FILE go together")
        if self.dcc_gateway_url and urlsplit(self.dcc_gateway_url).scheme not in ("https", "http"):
            raise SettingsError("HOSO_DCC_GATEWAY_URL must be an http(s) URL")
        if self.env == PRODUCTION and self.dcc_gateway_url and urlsplit(self.dcc_gateway_url).scheme != "https":
            raise SettingsError("HOSO_DCC_GATEWAY_URL must use https when HOSO_ENV=production")
        if self.env == PRODUCTION and not self.mongodb_uri:
            raise SettingsError("HOSO_MONGODB_URI is required when HOSO_ENV=production")
        if self.env == DEVELOPMENT and self.mongodb_uri and not is_loopback_uri(self.mongodb_uri):
            # Development secrets live in var/ on one machine: refuse to write real data with them.
            raise SettingsError(
                "HOSO_MONGODB_URI points beyond this machine while HOSO_ENV=development; "
                "set HOSO_ENV=production (with real secrets) for a shared database"
            )

    @property
    def signing_key_dir(self) -> Path:
        """Where the in-process signer keeps the CSCA and DSCs (``var/keys`` in development)."""
        return self.var_dir / "keys"

    @property
    def is_production(self) -> bool:
        """True when running with production secrets and database."""
        return self.env == PRODUCTION

    def replace(self, **changes: object) -> Settings:
        """Return a copy with some fields changed (used by tests and the CLI)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``HOSO_*`` variable once, as the fields declare them.

        In development, missing secrets are taken from (or created once in) ``var/secrets``;
        in production they must be given and strong, or start-up stops naming the variable.
        """
        reader = _EnvReader(os.environ if environ is None else environ)
        declared = {item.name: item for item in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for name in ("env", "var_dir", "jwt_private_key_pem", "data_key", "signing_key_passphrase"):
            values[name] = reader.read(declared[name])
        if values["env"] == DEVELOPMENT:
            dev = ensure_dev_secrets(values["var_dir"])
            values["jwt_private_key_pem"] = values["jwt_private_key_pem"] or dev.jwt_private_key_pem
            values["data_key"] = values["data_key"] or dev.data_key_b64
            values["signing_key_passphrase"] = values["signing_key_passphrase"] or dev.signing_key_passphrase.encode()
        if not values["jwt_private_key_pem"]:
            raise SettingsError("HOSO_JWT_PRIVATE_KEY (or HOSO_JWT_PRIVATE_KEY_FILE) is required")
        if not values["data_key"]:
            raise SettingsError("HOSO_DATA_KEY (or HOSO_DATA_KEY_FILE) is required")
        values["data_key"] = decode_data_key(values["data_key"], "HOSO_DATA_KEY")
        for name, declaration in declared.items():
            if name not in values:
                values[name] = reader.read(declaration)
        return cls(**values)


class _EnvReader:
    """Small typed accessors over an environment mapping."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def read(self, declaration: dataclasses.Field[Any]) -> Any:
        """The value of a field declared with :func:`setting` (its default when the variable is unset)."""
        name, how, default = declaration.metadata["env"], declaration.metadata["read"], declaration.default
        if how == TEXT:
            return self.text(name, default)
        if how == UPPER:
            return self.text(name, default).upper()
        if how == OPTIONAL:
            return self.text(name, "") or None
        if how == PATH:
            return Path(self.text(name, str(default)))
        if how == INTEGER:
            return self.integer(name, default)
        if how == FLAG:
            return self.text(name, "true" if default else "false").lower() in ("1", "true", "yes")
        if how == FILE:
            return self.file(name)
        secret = self.secret_text(name)
        if how == SECRET_BYTES:
            return secret.encode() if secret else None
        return secret

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, default).strip()

    def integer(self, name: str, default: int) -> int:
        raw = self._environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None

    def file(self, name: str) -> Path | None:
        """A path to a readable file, or ``None`` when unset."""
        raw = self._environ.get(name, "").strip()
        if not raw:
            return None
        path = Path(raw)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise SettingsError(f"{name} is not a readable file: {raw}")
        return path

    def secret_text(self, name: str) -> str | None:
        """A secret given inline (``NAME``) or as a file path (``NAME_FILE``)."""
        inline = self._environ.get(name, "").strip()
        path = self._environ.get(f"{name}_FILE", "").strip()
        if inline and path:
            raise SettingsError(f"set {name} or {name}_FILE, not both")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as error:
                raise SettingsError(f"{name}_FILE cannot be read: {error.strerror}") from None
        return inline or None


def decode_data_key(text: str, name: str) -> bytes:
    """Decode a base64 data key and check it is 32 strong bytes."""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError(f"{name} must be base64 (32 random bytes)") from None
    check_data_key(key, name)
    return key


def check_data_key(key: bytes, name: str) -> None:
    """Refuse keys of the wrong size or visibly non-random content."""
    if len(key) != 32:
        raise SettingsError(f"{name} must be exactly 32 bytes (base64 of 32 random bytes)")
    if len(set(key)) < 16:
        raise SettingsError(f"{name} is too weak: it does not look random")


def check_jwt_key(pem: str, name: str) -> None:
    """The token key must be a P-256 private key (ES256 is the one pinned algorithm)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SettingsError(f"{name} must be an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SettingsError(f"{name} must be an EC P-256 key (tokens are signed with ES256)")


def is_loopback_uri(uri: str) -> bool:
    """True when every host of a MongoDB URI is on this machine."""
    netloc = urlsplit(uri).netloc.rsplit("@", 1)[-1]
    hosts = [part.rsplit(":", 1)[0] if not part.startswith("[") else part.split("]")[0] + "]"
             for part in netloc.split(",") if part]
    return bool(hosts) and all(host in LOOPBACK_HOSTS for host in hosts)


@dataclass(frozen=True)
class DevSecrets:
    """Development secrets kept under ``var/secrets``."""

    jwt_private_key_pem: str
    data_key_b64: str
    signing_key_passphrase: str


def ensure_dev_secrets(var_dir: Path) -> DevSecrets:
    """Create the development JWT key and data key once, then reuse them."""
    secrets_dir = var_dir / "secrets"
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    jwt_path = secrets_dir / "jwt-private-key.pem"
    data_path = secrets_dir / "data-key"
    if not jwt_path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(jwt_path, pem.decode())
    if not data_path.exists():
        _write_private(data_path, base64.b64encode(secrets.token_bytes(32)).decode())
    passphrase_path = secrets_dir / "signing-key-passphrase"
    if not passphrase_path.exists():
        _write_private(passphrase_path, secrets.token_urlsafe(32))
    return DevSecrets(jwt_path.read_text().strip(), data_path.read_text().strip(),
                      passphrase_path.read_text().strip())


def _write_private(path: Path, text: str) -> None:
    """Write a secret readable only by its owner, without clobbering a concurrent writer."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
