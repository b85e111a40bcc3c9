"""Helpers of the verifier page's browser tests: open the page, wait on it, verify on it, make passports."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import CitizenActions, facility_token
from tests.records_data import immunization_body

V1 = "/api/v1"
PHONE = {"width": 412, "height": 915}


def recent_dose(days: int = 40) -> dict[str, Any]:
    """A dose given ``days`` ago (Viet Nam's rules accept 14 to 365 days), without the 2021 reaction."""
    when = (datetime.now(UTC) - timedelta(days=days)).replace(microsecond=0)
    return {"administered_at": when.isoformat(), "reactions": None}


def issue_passport(client: Any, serial: int, **changes: Any) -> dict[str, Any]:
    """Enrol a citizen with a facility-recorded dose and issue their passport through the API."""
    citizens = CitizenActions(client)
    account = citizens.enrol(serial=serial)
    hanoi = {"Authorization": f"Bearer {facility_token('01001')}"}
    pushed = client.put(f"{V1}/facility/immunizations/IM{serial}", json=immunization_body(serial=serial, **changes),
                        headers=hanoi)
    assert pushed.status_code == 201, pushed.json
    issued = client.post(f"{V1}/me/passports", headers=account.headers)
    assert issued.status_code == 201, issued.json
    return {**issued.json, "headers": account.headers}


def verify_on_page(page: Any, hc1: str) -> tuple[bool, list[str], str]:
    """Paste the text, press Verify, wait for the verdict: (valid, failed checks, reasons text)."""
    before = page.evaluate("Number(document.documentElement.dataset.verified || 0)")
    page.fill("#hc1", hc1)
    page.click("#verify")
    page.wait_for_selector(f'html[data-verified="{before + 1}"]', state="attached")
    valid = page.get_attribute("#verdict", "data-valid")
    assert valid in ("true", "false")
    checks = page.eval_on_selector_all("#reasons li", "items => items.map(item => item.dataset.check)")
    return valid == "true", checks, page.inner_text("#reasons")


def open_page(page: Any, url: str) -> None:
    # The page's Content-Security-Policy forbids eval, which wait_for_function needs: wait on selectors.
    response = page.goto(url)
    assert response is not None and response.ok, (
        f"GET {url} answered {response and response.status}: is the verifier blueprint registered "
        "(app/__init__.py) and listed in app/web/access.py, and does app/web/http.py keep its policy?")
    page.wait_for_selector('html[data-ready="true"]', state="attached", timeout=30_000)


def wait_until(page: Any, expression: str, timeout: float = 15.0) -> None:
    """Poll a JavaScript expression (page.evaluate is not subject to the page's CSP)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)
