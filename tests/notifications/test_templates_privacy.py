"""No template says anything about health: every kind, both languages, realistic (and nosy) parameters."""

from __future__ import annotations

import string

import pytest

from notifications import SECRET_PLACEHOLDER, SECURITY_KINDS, render
from notifications.templates import _TEMPLATES

LANGUAGES = ["vi", "en"]
# What a caller might pass, on purpose or by mistake. A template that used any of the health-laden
# ones would print it; one that needed a parameter not listed here would fail to render.
PARAMETERS = {
    "facility": "Bệnh viện Tâm thần Trung ương 1",
    "hours": "72",
    "diagnosis": "Viêm phế quản cấp (J20.9)",
    "icd": "F20.0",
    "drug": "Amoxicillin 500mg",
    "vaccine": "Comirnaty (COVID-19)",
    "disease": "COVID-19",
    "tg": "840539006",
    "name": "Nguyễn Văn Nam",
}
HEALTH_TERMS = [
    "Tâm thần", "Bệnh viện", "Viêm phế quản", "J20.9", "F20.0", "Amoxicillin", "Comirnaty", "COVID",
    "840539006", "Nguyễn Văn Nam", "tâm thần", "psychiatr", "mental", "HIV", "lao ", "tuberculosis",
]
KINDS = sorted(_TEMPLATES)


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_rendered_text_has_no_health_data(kind, language):
    rendered = render(kind, language, **PARAMETERS)
    text = f"{rendered.subject}\n{rendered.body}"
    assert rendered.language == language
    assert [term for term in HEALTH_TERMS if term.lower() in text.lower()] == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_exists_in_both_languages(kind):
    assert set(_TEMPLATES[kind]) == set(LANGUAGES)
    assert placeholders("".join(_TEMPLATES[kind]["vi"])) == placeholders("".join(_TEMPLATES[kind]["en"]))


def test_only_the_code_delivery_carries_the_secret():
    carrying = set()
    for kind in KINDS:
        for language in LANGUAGES:
            rendered = render(kind, language, **PARAMETERS)
            if SECRET_PLACEHOLDER in rendered.subject + rendered.body:
                carrying.add(kind)
    assert carrying == {"activation_code_delivery"}
    for language in LANGUAGES:
        rendered = render("activation_code_delivery", language, hours="72")
        assert SECRET_PLACEHOLDER not in rendered.subject and rendered.body.count(SECRET_PLACEHOLDER) == 1
        assert "72" in rendered.body


def test_activation_code_issued_accepts_but_does_not_print_the_facility():
    for language in LANGUAGES:
        assert "Tâm thần" not in render("activation_code_issued", language, facility=PARAMETERS["facility"]).body
        assert render("activation_code_issued", language).body  # callers without facility work too


@pytest.mark.parametrize("kind", ["next_dose_reminder", "follow_up_reminder"])
def test_reminders_point_to_the_app_and_are_not_security_messages(kind):
    assert kind not in SECURITY_KINDS
    assert "ứng dụng" in render(kind, "vi").body
    assert "app" in render(kind, "en").body
