"""The exceptions of the passport library: one base class, one subclass per cause."""

from __future__ import annotations


class PassportError(Exception):
    """Base class of every error this library raises on purpose."""


class KeyMaterialError(PassportError):
    """A key or certificate could not be created, read or used (wrong passphrase, wrong type)."""


class PayloadError(PassportError):
    """A vaccination record or DCC payload is not acceptable (bad field, schema violation)."""


class ValidityError(PassportError):
    """A validity period is not acceptable (too long, outside the signing certificate, naive time)."""


class SigningError(PassportError):
    """A signer could not produce a signature (for a remote signer: refused or unreachable)."""


class TransportError(PassportError):
    """HC1 text, Base45, zlib or a QR image could not be encoded or decoded."""


class TrustListError(PassportError):
    """A trust list document is malformed or lists a certificate that cannot be trusted."""


class RevocationListError(PassportError):
    """A revocation list document is malformed."""


class GatewayError(PassportError):
    """An EU DCC Gateway message or trust list entry is malformed, unsigned or wrongly signed."""


class RulesError(PassportError):
    """A business rule or rule set is not in the EU DCC gateway's format, or is not valid CertLogic."""
