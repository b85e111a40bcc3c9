"""mongoengine documents. Importing this package defines them; it connects to nothing."""

from app.models.audit import AuditEvent
from app.models.citizen import Citizen
from app.models.device import Device
from app.models.facility import Facility, FacilityClient
from app.models.identity_check import IdentityCheck
from app.models.list_index import ListIndex, RecentBuild
from app.models.login_origin import LoginOrigin
from app.models.notification import Notification
from app.models.passports import Certificate, SigningKey
from app.models.records import Immunization, RecordKey, Share, Visit
from app.models.registries import CertificateKey, CertificateRevocation, CitizenKey, ShareKey
from app.models.rules import PassportRuleSet
from app.models.session import Session
from app.models.staff import StaffUser

__all__ = [
    "AuditEvent", "Certificate", "CertificateKey", "CertificateRevocation", "Citizen", "CitizenKey", "Device",
    "Facility", "FacilityClient", "Immunization", "Notification", "IdentityCheck", "ListIndex", "LoginOrigin",
    "PassportRuleSet", "RecentBuild", "RecordKey", "Session", "Share", "ShareKey", "SigningKey", "StaffUser", "Visit",
]
