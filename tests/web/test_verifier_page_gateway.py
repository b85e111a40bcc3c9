"""The verifier page with other countries' DSCs: imported from a checked EU DCC Gateway list, they reach
the page through ``/passport/trust-list``, its offline cache keeps them, and every EU test vector whose
EXPECTEDVERIFY is true verifies there, online and offline."""

from __future__ import annotations

import json

import pytest

import passport
from app.runtime import runtime
from app.services import dcc_gateway
from app.services.signing_keys import init_keys
from tests.app.dcc_gateway_world import VECTORS, new_gateway, publish_vector_dscs, verifying_vectors
from tests.conftest import make_settings
from tests.helpers import system_context
from tests.web.helpers import open_page, wait_until

V1 = "/api/v1"
pytestmark = pytest.mark.slow


@pytest.fixture
def gateway_state():
    return new_gateway()


@pytest.fixture
def settings(mongodb_server, tmp_path, gateway_state):
    anchor = tmp_path / "trust-anchor.pem"
    anchor.write_bytes(passport.certificate_pem(gateway_state.anchor))
    return make_settings(mongodb_server, tmp_path / "var", dcc_gateway_trust_anchor_file=anchor)


def test_page_verifies_every_country_from_its_cached_trust_list(app, client, browser, live_server, gateway_state):
    init_keys(system_context(), runtime().settings)
    publish_vector_dscs(gateway_state)
    report = dcc_gateway.import_trust_list(system_context(), runtime().settings, gateway_state.trust_list(),
                                           "file:test", verify_cache=runtime().verify_cache)
    assert report.refused == [] and report.added
    total = len(client.get(f"{V1}/passport/trust-list").json["dsc"])
    assert total == len(report.added) + 1
    vectors = [{"name": name, "hc1": vector["PREFIX"], "clock": vector["TESTCTX"]["VALIDATIONCLOCK"]}
               for name in verifying_vectors() for vector in [json.loads((VECTORS / name).read_text())]]
    script = """async (vectors) => {
        const out = {}
        for (const v of vectors) {
            const r = await window.hosoVerifier.verify(v.hc1, {at: v.clock})
            const s = r.checks.find(c => c.name === 'signature')
            if (s.status !== 'ok') out[v.name] = s.reason
        }
        return out
    }"""
    context = browser.new_context(service_workers="allow")
    page = context.new_page()
    try:
        open_page(page, f"{live_server.url}/verify?lang=en")
        assert f"signing keys: {total}" in page.inner_text("#lists-text")
        wait_until(page, "navigator.serviceWorker.controller !== null")
        assert page.evaluate(script, vectors) == {}
        # offline: the foreign keys come from the service worker's copy of the trust list
        live_server.stop()
        context.set_offline(True)
        open_page(page, f"{live_server.url}/verify?lang=en")
        assert f"signing keys: {total}" in page.inner_text("#lists-text")
        assert page.evaluate(script, vectors[:40]) == {}
    finally:
        context.close()
