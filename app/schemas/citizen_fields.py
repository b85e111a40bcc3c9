"""Field definitions shared by every schema that carries a citizen's identity."""

from __future__ import annotations

from datetime import date

import marshmallow as ma

from app.clock import VIETNAM
from app.models.citizen import FULL_NAME_MAX_LENGTH, SEXES
from app.schemas.base import schema_now
from app.schemas.text import EmailText, Text

NATIONAL_ID = r"^[0-9]{12}$"
VN_PHONE = r"^(\+84|0)[0-9]{9,10}$"


def _not_future_birth(value: date) -> None:
    if value > schema_now().astimezone(VIETNAM).date():  # born today in Viet Nam, whatever UTC says
        raise ma.ValidationError("A date of birth cannot be in the future.")
    if value.year < 1900:
        raise ma.ValidationError("A date of birth before 1900 is not plausible.")


def national_id_field() -> Text:
    """A 12-digit CCCD."""
    return Text(
        12, required=True,
        validate=ma.validate.Regexp(NATIONAL_ID, error="A CCCD is exactly 12 digits."),
        metadata={"description": "CCCD, 12 digits", "example": "001085123456"},
    )


def full_name_field() -> Text:
    """A person's full name, family name first (decomposed letters are composed first: NFC)."""
    return Text(
        FULL_NAME_MAX_LENGTH, min_length=1, required=True,
        validate=[ma.validate.Regexp(r"^[^\W\d_]+([ '\-.][^\W\d_]+)*$",
                                     error="Letters, spaces, hyphens and apostrophes only.")],
        metadata={"example": "Nguyễn Văn Nam"},
    )


def date_of_birth_field() -> ma.fields.Date:
    """A full date of birth, not in the future."""
    return ma.fields.Date(required=True, validate=_not_future_birth)


def sex_field() -> Text:
    """male, female, other or unknown."""
    return Text(16, required=True, validate=ma.validate.OneOf(SEXES))


def phone_field(required: bool = False) -> Text:
    """A Vietnamese phone number (0 or +84 followed by 9-10 digits)."""
    return Text(
        16, required=required, validate=ma.validate.Regexp(VN_PHONE, error="A Vietnamese phone number."),
        metadata={"example": "0912345678"},
    )


def email_field() -> EmailText:
    """An e-mail address."""
    return EmailText()
