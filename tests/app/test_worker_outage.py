"""The notification worker outlasts its database: a real worker process, a paused SecantusDB process."""

from __future__ import annotations

import json
import random
import threading

import mongoengine
import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from app import create_app
from app.models.notification import Notification
from app.services.worker import Outage, is_transient
from app.settings import Settings
from tests.app.faults import CountingProvider, OwnDatabase, start_worker, wait_until, worker_env
from tests.helpers import CitizenActions, citizen_body


@pytest.mark.parametrize("error", [
    ServerSelectionTimeoutError("no server"), AutoReconnect("reset"), NetworkTimeout("timed out"),
    NotPrimaryError("not primary"), OperationFailure("stepped down", code=189),
    OperationFailure("interrupted", code=11602),
    OperationFailure("retry me", code=1, details={"errorLabels": ["RetryableWriteError"]}),
], ids=type)
def test_connection_timeout_and_failover_errors_are_waited_out(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [DuplicateKeyError("dup", code=11000), OperationFailure("bad query", code=2)],
                         ids=type)
def test_other_database_errors_are_not(error):
    assert not is_transient(error)


def test_outage_backoff_grows_with_jitter_up_to_its_cap():
    outage = Outage(threading.Event(), base=0.5, cap=30.0, rng=random.Random(7))
    ceilings = []
    for failures in range(12):
        outage.failures = failures
        ceiling = min(30.0, 0.5 * 2 ** failures)
        delays = {outage.delay() for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 1
        ceilings.append(max(delays))
    assert ceilings[-1] <= 30.0 and ceilings[0] <= 0.5


@pytest.mark.slow
def test_worker_survives_a_25_second_database_stall(tmp_path):
    """The stall of the issue: the worker waits, logs the outage once, and sends each message once."""
    database = OwnDatabase(tmp_path / "db")
    provider = CountingProvider(delay=0.05)
    env = worker_env(tmp_path / "var", database.uri("outage"), provider)
    worker = None
    try:
        settings = Settings.from_env(env)  # the worker's own secrets, from the same var/
        app = create_app(settings)
        with app.app_context():
            actions = CitizenActions(app.test_client())
            for serial in range(40):  # a security message on SMS and on e-mail each
                assert actions.register(citizen_body(serial=300000 + serial)).status_code == 201
            queued = {str(m.id) for m in Notification.objects(channel="sms")}
            assert len(queued) == 40
        worker = start_worker(env, tmp_path / "worker.log")
        assert wait_until(lambda: len(provider.received) >= 5, 60)
        database.pause()
        paused_at = len(provider.received)
        threading.Event().wait(25)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        database.resume()
        assert wait_until(lambda: set(provider.received) == queued, 90), (tmp_path / "worker.log").read_text()
        assert paused_at < 40  # the stall came in the middle of the work
        assert max(provider.received.values()) == 1  # nothing sent twice
        with app.app_context():
            assert wait_until(lambda: Notification.objects(channel__in=["sms", "email"], status="sent").count() == 80,
                              30)
        emails = (tmp_path / "var" / "outbox" / "email.jsonl").read_text(encoding="utf-8").splitlines()
        assert len({json.loads(line)["id"] for line in emails}) == len(emails) == 40
        assert worker.poll() is None
        log = (tmp_path / "worker.log").read_text()
        assert log.count("database unavailable") == 1, log
        assert log.count("database available again") == 1, log
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        mongoengine.disconnect(alias="default")
        provider.close()
        database.close()


@pytest.mark.slow
def test_worker_started_during_an_outage_waits_then_runs_reminders_and_delivers(tmp_path):
    database = OwnDatabase(tmp_path / "db")
    provider = CountingProvider()
    env = worker_env(tmp_path / "var", database.uri("outage"), provider)
    worker = None
    try:
        app = create_app(Settings.from_env(env))
        with app.app_context():
            assert CitizenActions(app.test_client()).register().status_code == 201
            queued = {str(m.id) for m in Notification.objects(channel="sms")}
        mongoengine.disconnect(alias="default")
        database.pause()
        worker = start_worker(env, tmp_path / "worker.log")
        threading.Event().wait(12)
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
        database.resume()
        assert wait_until(lambda: set(provider.received) == queued, 60), (tmp_path / "worker.log").read_text()
        log = (tmp_path / "worker.log").read_text()
        assert "reminders for" in log and log.count("database unavailable") == 1, log
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        mongoengine.disconnect(alias="default")
        provider.close()
        database.close()
