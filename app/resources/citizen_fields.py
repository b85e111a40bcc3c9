"""Moved to ``app.schemas.citizen_fields`` (below the services: the push schemas use them)."""

from app.schemas.citizen_fields import (  # noqa: F401
    date_of_birth_field,
    email_field,
    full_name_field,
    national_id_field,
    phone_field,
    sex_field,
)
