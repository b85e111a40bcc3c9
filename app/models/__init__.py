"""mongoengine documents. Importing this package defines them; it connects to nothing."""

from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.device import Device
from app.models.facility import Facility, FacilityClient
from app.models.notification import Notification
from app.models.session import Session
from app.models.staff import StaffUser

__all__ = ["AuditEvent", "Citizen", "Device", "Facility", "FacilityClient", "Notification", "Session", "StaffUser"]
