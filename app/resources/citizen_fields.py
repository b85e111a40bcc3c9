"""Field definitions shared by every schema that carries a citizen's identity."""

from __future__ import annotations

from datetime import date

import marshmallow as ma

from app.models.citizen import SEXES

NATIONAL_ID = r"^[0-9]{12}$"
VN_PHONE = r"^(\+84|0)[0-9]{9,10}$"


def _not_future_birth(value: date) -> None:
    if value > date.today():
        raise ma.ValidationError("A date of birth cannot be in the future.")
    if value.year < 1900:
        raise ma.ValidationError("A date of birth before 1900 is not plausible.")


def national_id_field() -> ma.fields.String:
    """A 12-digit CCCD."""
    return ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(NATIONAL_ID, error="A CCCD is exactly 12 digits."),
        metadata={"description": "CCCD, 12 digits", "example": "001085123456"},
    )


def full_name_field() -> ma.fields.String:
    """A person's full name, family name first."""
    return ma.fields.String(
        required=True,
        validate=[ma.validate.Length(1, 200),
                  ma.validate.Regexp(r"^[^\W\d_]+([ '\-.][^\W\d_]+)*$",
                                     error="Letters, spaces, hyphens and apostrophes only.")],
        metadata={"example": "Nguyễn Văn Nam"},
    )


def date_of_birth_field() -> ma.fields.Date:
    """A full date of birth, not in the future."""
    return ma.fields.Date(required=True, validate=_not_future_birth)


def sex_field() -> ma.fields.String:
    """male, female, other or unknown."""
    return ma.fields.String(required=True, validate=ma.validate.OneOf(SEXES))


def phone_field(required: bool = False) -> ma.fields.String:
    """A Vietnamese phone number (0 or +84 followed by 9-10 digits)."""
    return ma.fields.String(
        required=required, validate=ma.validate.Regexp(VN_PHONE, error="A Vietnamese phone number."),
        metadata={"example": "0912345678"},
    )


def email_field() -> ma.fields.Email:
    """An e-mail address."""
    return ma.fields.Email(validate=ma.validate.Length(max=254))
