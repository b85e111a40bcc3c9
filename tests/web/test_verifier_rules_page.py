"""The verifier page applies the entry rules of the country staff pick, in the browser (certlogic-js), and
shows both verdicts: authentic, and each rule passed, failed or open. Its verdict on every rule is the one
``POST /api/v1/passport/verify`` gives (panzi-json-logic on the server), for HoSo passports and for the
payloads of signed EU-format certificates; the rules come from the public route and work offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.runtime import runtime
from app.services.signing_keys import init_keys
from tests.helpers import system_context
from tests.web.conftest import LiveServer
from tests.web.helpers import PHONE, issue_passport, open_page, recent_dose, verify_on_page, wait_until

V1 = "/api/v1"
FOREIGN = json.loads((Path(__file__).parents[1] / "data" / "dcc" / "rules" / "XA.json").read_text(encoding="utf-8"))
SINOPHARM = {"tg": "840539006", "vp": "1157024006", "mp": "BBIBP-CorV", "ma": "ORG-100020693", "name": "Vero Cell"}

pytestmark = pytest.mark.slow


def page_rules(page: Any) -> dict[str, str]:
    return dict(page.eval_on_selector_all("#rules li", "items => items.map(i => [i.dataset.rule, i.dataset.result])"))


def test_page_shows_authentic_and_each_rule_like_the_api(app, client, staff, browser, artifacts):
    init_keys(system_context(), runtime().settings)
    assert client.put(f"{V1}/admin/passport-rules/XA", json={"rules": FOREIGN},
                      headers=staff.headers()).status_code == 200
    passports = {
        "fresh": issue_passport(client, 410001, **recent_dose()),
        "2021": issue_passport(client, 410002),
        "sinopharm": issue_passport(client, 410003, vaccine=SINOPHARM, **recent_dose()),
        "first-dose": issue_passport(client, 410004, dose_number=1, **recent_dose(20)),
        "too-soon": issue_passport(client, 410005, **recent_dose(5)),
    }
    server = LiveServer(app)
    context = browser.new_context(viewport=PHONE, locale="en-GB", service_workers="allow")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        open_page(page, f"{server.url}/verify?lang=en")
        wait_until(page, "navigator.serviceWorker.controller !== null")
        assert page.eval_on_selector_all("#country option", "options => options.map(o => o.value)") == ["VN", "XA"]

        # Every rule of both countries, page against API, for every passport.
        for country in ("VN", "XA"):
            for name, issued in passports.items():
                api = client.post(f"{V1}/passport/verify", json={"hc1": issued["hc1"], "country": country}).json
                mine = page.evaluate("([hc1, country]) => window.hosoVerifier.check(hc1, {country})",
                                     [issued["hc1"], country])
                assert [(r["id"], r["result"]) for r in mine["rules"]] == \
                    [(r["id"], r["result"]) for r in api["rules"]], (name, country)
                assert (mine["authentic"], mine["valid"]) == (api["authentic"], api["valid"]), (name, country)
                assert [r["description"] for r in mine["rules"]] == [r["description"] for r in api["rules"]]

        # What staff see: green for a fresh passport in Viet Nam ...
        valid, failed, _ = verify_on_page(page, passports["fresh"]["hc1"])
        assert valid and failed == [] and set(page_rules(page).values()) == {"passed"}
        assert "meets every entry rule of" in page.inner_text("#verdict")
        page.screenshot(path=artifacts / "rules-green-vn.png", full_page=True)

        # ... red for the 2021 course: authentic, the 365-day rule failed, the holder still shown.
        valid, failed, _ = verify_on_page(page, passports["2021"]["hc1"])
        assert not valid and failed == []
        assert page.get_attribute("#verdict", "data-authentic") == "true"
        assert page_rules(page)["VR-VN-0005"] == "failed"
        assert "does not meet the entry rules" in page.inner_text("#verdict")
        assert "The last dose was given at most 365 days ago." in page.inner_text("#rules")
        assert "Nguyễn Văn Nam" in page.inner_text("#holder")
        page.screenshot(path=artifacts / "rules-red-2021.png", full_page=True)

        # BBIBP-CorV: green in Viet Nam; staff pick XA (EMA products only) and the verdict follows.
        valid, _, _ = verify_on_page(page, passports["sinopharm"]["hc1"])
        assert valid
        before = page.evaluate("Number(document.documentElement.dataset.verified)")
        page.select_option("#country", "XA")
        page.wait_for_selector(f'html[data-verified="{before + 1}"]', state="attached")
        assert page.get_attribute("#verdict", "data-valid") == "false"
        assert page_rules(page)["VR-XA-0001"] == "failed"
        page.screenshot(path=artifacts / "rules-red-xa.png", full_page=True)

        # Vietnamese descriptions, and the choice of country kept.
        open_page(page, f"{server.url}/verify?lang=vi")
        assert page.input_value("#country") == "XA"
        page.select_option("#country", "VN")
        verify_on_page(page, passports["first-dose"]["hc1"])
        assert page_rules(page)["VR-VN-0003"] == "failed"
        assert "Đã tiêm đủ liều cơ bản" in page.inner_text("#rules") and "không đạt" in page.inner_text("#rules")

        # Offline: the rules come from the service worker's copy.
        server.stop()
        context.set_offline(True)
        open_page(page, f"{server.url}/verify?lang=en")
        valid, _, _ = verify_on_page(page, passports["too-soon"]["hc1"])
        assert not valid and page_rules(page)["VR-VN-0004"] == "failed"
        valid, _, _ = verify_on_page(page, passports["fresh"]["hc1"])
        assert valid
        # A country with no rules on the device is never green.
        unknown = page.evaluate("(hc1) => window.hosoVerifier.check(hc1, {country: 'XB'})", passports["fresh"]["hc1"])
        assert unknown["authentic"] is True and unknown["valid"] is False and unknown["rulesMissing"] is True
    finally:
        context.close()
        server.stop()
    assert errors == []
