"""mongoengine documents. Importing this package defines them; it connects to nothing."""

from app.models.audit import AuditEvent
from app.models.facility import Facility, FacilityClient
from app.models.staff import StaffUser

__all__ = ["AuditEvent", "Facility", "FacilityClient", "StaffUser"]
