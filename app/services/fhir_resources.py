"""FHIR R4 resources of one record, per kind (the kind table in ``app.services.ingest.kinds``
names each kind's builder), and the shared pieces of a Bundle entry.

Records a facility withdrew are exported as ``entered-in-error`` without their content, so a
system that imported an earlier export (or uses ``since``) learns to drop them.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from app.models.citizen import Citizen
from app.models.records import VOIDED, Immunization, Visit
from app.services import valuesets

CCCD_SYSTEM = "urn:vn:cccd"
FACILITY_SYSTEM = "urn:vn:ma-cskcb"
PRESCRIPTION_SYSTEM = "urn:vn:don-thuoc-quoc-gia"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_NAMESPACE = uuid.UUID("7d1e4b1e-5a0c-4c1d-9a57-0b5e8f3a2c61")  # HoSo's namespace for stable ids
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def urn(*parts: object) -> str:
    """A stable ``urn:uuid`` for a resource, so repeated exports keep the same ids."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, ':'.join(str(p) for p in parts))}"


def when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def clean(value: Any) -> Any:
    """Drop empty members: FHIR forbids empty strings, lists and objects."""
    if isinstance(value, dict):
        cleaned = {k: clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [item for item in (clean(v) for v in value) if item not in (None, "", [], {})]
    return value


def patient(citizen: Citizen) -> dict[str, Any]:
    given = (citizen.given_name or "").split()
    return {
        "resourceType": "Patient",
        "identifier": [{"system": CCCD_SYSTEM, "value": citizen.national_id}],
        "name": [{"text": citizen.full_name, "family": citizen.family_name, "given": given}],
        "gender": citizen.sex,
        "birthDate": citizen.date_of_birth,
        "telecom": [{"system": "phone", "value": citizen.phone},
                    {"system": "email", "value": citizen.email}],
    }


def organization_ref(code: str, names: dict[str, str]) -> dict[str, Any]:
    return {"identifier": {"system": FACILITY_SYSTEM, "value": code}, "display": names.get(code, code)}


def visit_resources(visit: Visit, patient: str, names: dict[str, str]) -> list[tuple[str, dict]]:
    encounter_id = urn("visit", visit.id)
    subject = {"reference": patient}
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "entered-in-error" if visit.status == VOIDED else "finished",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "identifier": [{"system": f"{FACILITY_SYSTEM}:{visit.facility_code}", "value": visit.source_id}],
        "subject": subject,
        "period": {"start": when(visit.started_at), "end": when(visit.ended_at)},
        "serviceProvider": organization_ref(visit.facility_code, names),
    }
    resources: list[tuple[str, dict]] = [(encounter_id, encounter)]
    if visit.status == VOIDED:
        return resources
    encounter["reasonCode"] = [{"text": visit.reason}] if visit.reason else []
    if visit.practitioner:
        encounter["participant"] = [{"individual": {
            "display": visit.practitioner.name or visit.practitioner.code,
            "identifier": {"value": visit.practitioner.code} if visit.practitioner.code else None}}]
    encounter["diagnosis"] = []
    for number, diagnosis in enumerate(visit.diagnoses):
        condition_id = urn("visit", visit.id, "diagnosis", number)
        resources.append((condition_id, {
            "resourceType": "Condition",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                      "code": "encounter-diagnosis"}]}],
            "code": {"coding": [{"system": ICD10, "code": diagnosis.code, "display": diagnosis.display}],
                     "text": diagnosis.text or diagnosis.display},
            "subject": subject,
            "encounter": {"reference": encounter_id},
            "recordedDate": when(visit.started_at),
        }))
        encounter["diagnosis"].append({"condition": {"reference": condition_id},
                                       "rank": 1 if diagnosis.principal else 2})
    for number, result in enumerate(visit.lab_results):
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": f"urn:vn:ma-chi-so:{visit.facility_code}", "code": result.code}]
                     if result.code else [], "text": result.name},
            "subject": subject,
            "encounter": {"reference": encounter_id},
            "effectiveDateTime": when(result.at or visit.started_at),
            "note": [{"text": result.conclusion}] if result.conclusion else [],
        }
        if result.value is not None and result.unit and _NUMBER.match(result.value):
            observation["valueQuantity"] = {"value": float(result.value), "unit": result.unit}
        elif result.value:
            observation["valueString"] = result.value + (f" {result.unit}" if result.unit else "")
        resources.append((urn("visit", visit.id, "result", number), observation))
    for p_number, prescription in enumerate(visit.prescriptions):
        for i_number, item in enumerate(prescription.items):
            resources.append((urn("visit", visit.id, "rx", p_number, i_number), {
                "resourceType": "MedicationRequest",
                "status": "completed",
                "intent": "order",
                "groupIdentifier": {"system": PRESCRIPTION_SYSTEM, "value": prescription.code}
                if prescription.code else None,
                "medicationCodeableConcept": {
                    "coding": [{"system": "urn:vn:ma-thuoc", "code": item.drug_code}] if item.drug_code else [],
                    "text": " ".join(part for part in (item.name, item.strength) if part)},
                "subject": subject,
                "encounter": {"reference": encounter_id},
                "authoredOn": when(visit.started_at),
                "dosageInstruction": [{"text": item.dose_text,
                                       "route": {"text": item.route} if item.route else None}],
                "dispenseRequest": {"quantity": {"value": item.quantity}} if item.quantity is not None else None,
            }))
    return resources


def immunization_resources(record: Immunization, patient: str, names: dict[str, str]) -> list[tuple[str, dict]]:
    immunization_id = urn("immunization", record.id)
    vaccine = record.vaccine
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "status": "entered-in-error" if record.status == VOIDED else "completed",
        "vaccineCode": {"coding": [{"system": "https://ec.europa.eu/health/documents/community-register/html/",
                                    "code": vaccine.mp, "display": valuesets.display("mp", vaccine.mp)},
                                   {"system": SNOMED, "code": vaccine.vp,
                                    "display": valuesets.display("vp", vaccine.vp)}],
                        "text": vaccine.name or valuesets.display("mp", vaccine.mp)},
        "patient": {"reference": patient},
        "occurrenceDateTime": when(record.administered_at),
        "primarySource": record.primary_source,
    }
    resources: list[tuple[str, dict]] = [(immunization_id, resource)]
    if record.status == VOIDED:
        return resources
    resource.update({
        "lotNumber": record.lot,
        "manufacturer": {"identifier": {"value": vaccine.ma}, "display": valuesets.display("ma", vaccine.ma)},
        "site": {"text": record.site} if record.site else None,
        "route": {"text": record.route} if record.route else None,
        "protocolApplied": [{
            "doseNumberPositiveInt": record.dose_number,
            "seriesDosesPositiveInt": record.series_doses,
            "targetDisease": [{"coding": [{"system": SNOMED, "code": vaccine.tg,
                                           "display": valuesets.display("tg", vaccine.tg)}]}],
        }],
        "reaction": [],
    })
    reactions = [*record.reactions, *record.citizen_reactions]
    for number, reaction in enumerate(reactions):
        observation_id = urn("immunization", record.id, "reaction", number)
        resources.append((observation_id, {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "Reaction after vaccination"},
            "subject": {"reference": patient},
            "effectiveDateTime": when(reaction.onset_at),
            "valueString": reaction.description,
            "interpretation": [{"text": reaction.severity}],
        }))
        resource["reaction"].append({"date": when(reaction.onset_at),
                                     "detail": {"reference": observation_id},
                                     "reported": reaction.reported_by == "citizen"})
    return resources


def provenance(target: str, record: Any, names: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": when(record.provenance.received_at if record.provenance else record.updated_at),
        "agent": [{"who": organization_ref(record.facility_code, names)}],
        "policy": [f"urn:hoso:channel:{record.provenance.channel or 'api'}"] if record.provenance else [],
    }
