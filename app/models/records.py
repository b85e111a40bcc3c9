"""Health records pushed by facilities: visits (outpatient encounters) and immunizations.

Every query on these collections names the citizen (the shard key of a national deployment),
except the look-up of a facility's idempotency key in ``record_keys``.
"""

from __future__ import annotations

import mongoengine as me

from app.clock import utcnow

RECORD_STATUSES_VISIT = ("final", "entered-in-error")
RECORD_STATUSES_IMMUNIZATION = ("completed", "entered-in-error")
SEVERITIES = ("mild", "moderate", "severe", "life-threatening")
VOIDED = "entered-in-error"


class RecordKey(me.Document):
    """A facility's idempotency key ``<kind>:<facility>:<source id>`` -> the record it made.

    Its own small collection (sharded by this ``_id``), written before the record, so that the
    key stays unique even when the record collections are sharded by citizen.
    """

    id = me.StringField(primary_key=True)
    record_id = me.ObjectIdField(required=True)
    citizen_id = me.ObjectIdField(required=True)
    # Other citizens the record may be under: each citizen a correction moves it to is added here
    # before the record moves, so a push always finds it by id and a citizen (its shard key).
    held_by = me.ListField(me.ObjectIdField())
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "record_keys"}


class Provenance(me.EmbeddedDocument):
    """Where the current version came from."""

    client_id = me.StringField()
    facility_code = me.StringField(required=True)
    received_at = me.DateTimeField(required=True)
    payload_hash = me.StringField(required=True)
    channel = me.StringField(choices=("api", "bulk", "xml130"))


class Practitioner(me.EmbeddedDocument):
    code = me.StringField()
    name = me.StringField()


class Diagnosis(me.EmbeddedDocument):
    code = me.StringField(required=True)
    display = me.StringField()
    text = me.StringField()
    principal = me.BooleanField(default=False)


class LabResult(me.EmbeddedDocument):
    code = me.StringField()
    name = me.StringField(required=True)
    value = me.StringField()  # kept exactly as sent: results are not always numbers
    unit = me.StringField()
    conclusion = me.StringField()
    at = me.DateTimeField()


class PrescriptionItem(me.EmbeddedDocument):
    drug_code = me.StringField()
    name = me.StringField(required=True)
    strength = me.StringField()
    dose_text = me.StringField()
    quantity = me.FloatField()
    route = me.StringField()


class Prescription(me.EmbeddedDocument):
    code = me.StringField()  # national e-prescription code, lower case; absent for XML 130 drugs
    items = me.EmbeddedDocumentListField(PrescriptionItem)


class Visit(me.Document):
    """One outpatient encounter at one facility."""

    citizen_id = me.ObjectIdField(required=True)
    facility_code = me.StringField(required=True)
    source_id = me.StringField(required=True)
    visit_type = me.StringField()
    started_at = me.DateTimeField(required=True)
    ended_at = me.DateTimeField()
    department = me.StringField()
    practitioner = me.EmbeddedDocumentField(Practitioner)
    reason = me.StringField()
    diagnoses = me.EmbeddedDocumentListField(Diagnosis)
    lab_results = me.EmbeddedDocumentListField(LabResult)
    prescriptions = me.EmbeddedDocumentListField(Prescription)
    # ``started_at`` while the visit carries prescriptions and is not voided, absent otherwise (set
    # by the visit's stored fields, ``app.services.ingest.kinds``): the prescription list's own
    # index range, which holds no visit without prescriptions (see ``app.services.list_index``).
    prescribed_at = me.DateTimeField()
    follow_up_date = me.StringField()
    notes = me.StringField()
    status = me.StringField(default="final", choices=RECORD_STATUSES_VISIT)
    version = me.IntField(default=1)
    payload_hash = me.StringField(required=True)
    provenance = me.EmbeddedDocumentField(Provenance, required=True)
    created_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "visits",
        "indexes": [
            {"fields": ["citizen_id", "-started_at", "-_id"], "name": "timeline"},
            # ends with the id, like every list's index: a page's end times are asked for by time
            # and id (``list_index.range_filters``); replaces ``timeline_by_facility`` (without it)
            {"fields": ["citizen_id", "facility_code", "-started_at", "-_id"], "name": "facility_timeline"},
            {"fields": ["citizen_id", "-prescribed_at", "-_id"], "name": "prescriptions"},
        ],
    }


class Reaction(me.EmbeddedDocument):
    """A reaction after a vaccination, observed at the facility or reported by the citizen."""

    onset_at = me.DateTimeField(required=True)
    description = me.StringField(required=True)
    severity = me.StringField(required=True, choices=SEVERITIES)
    reported_by = me.StringField(required=True, choices=("facility", "citizen"))
    recorded_at = me.DateTimeField(required=True)


class Vaccine(me.EmbeddedDocument):
    tg = me.StringField(required=True)
    vp = me.StringField(required=True)
    mp = me.StringField(required=True)
    ma = me.StringField(required=True)
    name = me.StringField()


class Immunization(me.Document):
    """One vaccination. Citizens' own reaction reports live beside the facility's data."""

    citizen_id = me.ObjectIdField(required=True)
    facility_code = me.StringField(required=True)
    source_id = me.StringField(required=True)
    vaccine = me.EmbeddedDocumentField(Vaccine, required=True)
    dose_number = me.IntField(required=True)
    series_doses = me.IntField(required=True)
    administered_at = me.DateTimeField(required=True)
    lot = me.StringField()
    site = me.StringField()
    route = me.StringField()
    country = me.StringField(default="VN")
    status = me.StringField(default="completed", choices=RECORD_STATUSES_IMMUNIZATION)
    primary_source = me.BooleanField(default=True)
    reactions = me.EmbeddedDocumentListField(Reaction)  # the facility's, replaced by each push
    citizen_reactions = me.EmbeddedDocumentListField(Reaction)  # never touched by a push
    version = me.IntField(default=1)
    payload_hash = me.StringField(required=True)
    provenance = me.EmbeddedDocumentField(Provenance, required=True)
    created_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "immunizations",
        "indexes": [
            {"fields": ["citizen_id", "-administered_at", "-_id"], "name": "timeline"},
        ],
    }


class Share(me.Document):
    """A time-limited, revocable share of part of a record with a doctor.

    Sharded by citizen: the code's hash is unique through the ``share_keys`` registry
    (``app.models.registries.ShareKey``), which redemption reads first.
    """

    citizen_id = me.ObjectIdField(required=True)
    code_hash = me.StringField(required=True)
    scope = me.ListField(me.StringField(choices=("visits", "immunizations", "prescriptions")))
    created_at = me.DateTimeField(default=utcnow)
    expires_at = me.DateTimeField(required=True)
    revoked_at = me.DateTimeField()
    times_opened = me.IntField(default=0)
    last_opened_at = me.DateTimeField()

    meta = {"collection": "shares", "indexes": [("citizen_id", "-created_at")],
            "shard_key": ("citizen_id",)}  # mongoengine's own reload/save/delete name the citizen too
