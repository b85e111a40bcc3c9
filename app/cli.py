"""Flask CLI commands: ``flask --app app admin create``, ``flask --app app demo seed``,
``flask --app app data build-registries``."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask import Flask
from flask.cli import AppGroup

from app.clock import VIETNAM
from app.gateway_cli import passport_cli
from app.services.audit import SYSTEM_ACTOR, RequestContext

admin_cli = AppGroup("admin", help="Administrator accounts.")
demo_cli = AppGroup("demo", help="Demonstration data for development.")
data_cli = AppGroup("data", help="Data migrations.")
audit_cli = AppGroup("audit", help="The audit trail's upgrade and repair steps.")


def cli_context() -> RequestContext:
    """Audit context of a command run by an operator on the server."""
    from app.runtime import runtime

    rt = runtime()
    return RequestContext(actor=SYSTEM_ACTOR, now=rt.now(), request_id="cli", trail=rt.audit_trail)


@admin_cli.command("create")
@click.argument("username")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def create_admin(username: str, as_json: bool) -> None:
    """Create an admin; prints a one-time password and the TOTP enrolment URI."""
    from app.runtime import runtime
    from app.services.errors import AlreadyExists
    from app.services.staff import create_staff

    rt = runtime()
    try:
        new = create_staff(cli_context(), username, "admin", passwords=rt.passwords, box=rt.box)
    except AlreadyExists as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"username": new.user.username, "password": new.password,
                               "totp_uri": new.totp_uri}))
        return
    click.echo(f"username: {new.user.username}")
    click.echo(f"password: {new.password}   (shown once)")
    click.echo(f"TOTP URI: {new.totp_uri}   (add it to an authenticator app)")


@demo_cli.command("seed")
def seed_demo() -> None:
    """Create the demo admin, facility and API client once; print their credentials."""
    from app.dev.demo import seed

    click.echo(json.dumps(seed(), indent=2, ensure_ascii=False))


@data_cli.command("build-registries")
def build_registries() -> None:
    """Fill citizen_keys, share_keys, certificate_keys and certificate_revocations from the stored
    citizens, shares and certificates (once when upgrading; safe to run again). Exits 1 when a
    value is held by two documents (reported, never overwritten)."""
    from app.runtime import runtime
    from app.services.registries import build_registries as build

    report = build(runtime().now())
    for filled in report:
        click.echo(filled.line())
    if any(filled.conflicts for filled in report):
        raise SystemExit(1)


keys_cli = AppGroup("keys", help="Passport signing keys (development CSCA and DSC under var/keys).")


@keys_cli.command("init")
def keys_init() -> None:
    """Create the CSCA and an active DSC unless they exist."""
    from app.runtime import runtime
    from app.services.errors import DomainError
    from app.services.signing_keys import init_keys

    try:
        info = init_keys(cli_context(), runtime().settings)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"active DSC kid {info.kid}, valid {info.not_before:%Y-%m-%d} to {info.not_after:%Y-%m-%d}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new DSC; the old one stays trusted until its passports expire."""
    from app.runtime import runtime
    from app.services.errors import DomainError
    from app.services.signing_keys import rotate_keys

    try:
        info = rotate_keys(cli_context(), runtime().settings, verify_cache=runtime().verify_cache)
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"new active DSC kid {info.kid}, valid to {info.not_after:%Y-%m-%d}")


rules_cli = AppGroup("rules", help="Business rules of countries of arrival (EU DCC gateway format).")
passport_cli.add_command(rules_cli)


@rules_cli.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8"))
def rules_import(file) -> None:  # type: ignore[no-untyped-def]
    """Import rules (a rule, a list of rules, or {"rules": [...]}, as the gateway publishes them): each
    country in FILE gets the file's rules as its whole rule set (audited)."""
    import marshmallow as ma

    import passport
    from app.resources.passport.schemas import BusinessRuleSchema
    from app.runtime import runtime
    from app.services.errors import DomainError
    from app.services.passport_rules import import_rules
    from app.web.json_body import JsonBodyError, loads

    try:
        parsed = passport.RuleSet.from_json(loads(file.read()))
        # The same input rule as PUT /admin/passport-rules/{country}: every string under the text rule.
        rules = [BusinessRuleSchema().load(rule.document) for rule in parsed.rules]
        counts = import_rules(cli_context(), rules, source="cli", verify_cache=runtime().verify_cache)
    except ma.ValidationError as error:
        raise click.ClickException(f"a rule is not acceptable: {error.messages}") from None
    except (JsonBodyError, DomainError, passport.RulesError) as error:
        raise click.ClickException(str(error)) from None
    for country, count in counts.items():
        click.echo(f"{country}: {count} rule(s) stored")


@rules_cli.command("list")
def rules_list() -> None:
    """Print the countries with stored rules and how many rules each has."""
    from app.models.rules import PassportRuleSet
    from app.services.passport_rules import install_shipped

    install_shipped(cli_context())
    for stored in PassportRuleSet.objects.order_by("country"):
        click.echo(f"{stored.country}: {len(stored.rules)} rule(s), revision {stored.revision}, {stored.source}")


notifications_cli = AppGroup("notifications", help="The notification outbox.")


@notifications_cli.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, run today's reminders, and exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between passes when idle.")
def notifications_worker(once: bool, interval: float) -> None:
    """Deliver the outbox (SMS, e-mail, push) with retries; run the daily reminders."""
    import os
    import signal
    import socket

    from app.infra.configured_channels import build_channels
    from app.runtime import runtime
    from app.services.worker import Worker

    rt = runtime()
    worker = Worker(
        channels=build_channels(rt.settings), box=rt.box, clock=rt.now,
        name=f"{socket.gethostname()}:{os.getpid()}",
        reminder_interval=timedelta(days=rt.settings.reminder_interval_days), context=cli_context,
        local_date=lambda moment: moment.astimezone(VIETNAM).date(), interval=interval, echo=click.echo,
    )
    signal.signal(signal.SIGTERM, lambda *_: worker.stop.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop.set())
    worker.run(once=once)


@notifications_cli.command("reminders")
def notifications_reminders() -> None:
    """Queue today's reminders (next dose, follow-up visit); each is sent once."""
    from app.runtime import runtime
    from app.services.reminders import run_reminders

    rt = runtime()
    today = rt.now().astimezone(VIETNAM).date()
    queued = run_reminders(cli_context(), today, timedelta(days=rt.settings.reminder_interval_days))
    click.echo(f"reminders for {today}: {queued} queued")


@click.command("import-xml130")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def import_xml130(files: tuple[str, ...]) -> None:
    """Import QĐ 130 insurance XML files as visits of the facility each file names (MACSKCB)."""
    from pathlib import Path

    from tqdm import tqdm

    from app.services.audit import Actor
    from app.services.errors import DomainError
    from app.services.facilities import get_facility
    from app.services.ingest.xml130 import Xml130Error, parse_envelope
    from app.services.ingest.xml130_import import import_envelope

    failed = False
    for name in files:
        data = Path(name).read_bytes()
        try:
            facility_code, records = parse_envelope(data)
            facility = get_facility(facility_code or "")
        except (Xml130Error, DomainError) as error:
            click.echo(f"{name}: {error}", err=True)
            failed = True
            continue
        if not facility.active:
            click.echo(f"{name}: facility {facility.code} is not active", err=True)
            failed = True
            continue
        ctx = cli_context().acting_as(Actor("system", "import-xml130", f"CLI import of {Path(name).name}",
                                            facility.code))
        with tqdm(total=len(records), desc=Path(name).name, unit="record") as bar:
            report = import_envelope(ctx, data, progress=bar.update)
        summary = report.summary
        click.echo(f"{name}: " + ", ".join(f"{count} {what}" for what, count in summary.items()))
        for record in report.records:
            if record.get("errors"):
                click.echo(f"  record {record['index']} (MA_LK {record['source_id']}): {record['errors']}")
        failed = failed or bool(summary["rejected"])
    if failed:
        raise SystemExit(1)


@audit_cli.command("number")
def audit_number() -> None:
    """Number the audit events stored before events had numbers (once, on upgrade)."""
    from app.services import audit

    click.echo(f"numbered {audit.number_unnumbered()} events")


@audit_cli.command("entries")
@click.argument("first", type=int)
@click.argument("last", type=int)
def audit_entries(first: int, last: int) -> None:
    """Write the access-log entries missing for the events numbered FIRST..LAST (after a crash)."""
    from app.services import audit

    click.echo(f"wrote {audit.copy_missing_entries(first, last)} entries")


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(admin_cli)
    app.cli.add_command(data_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(import_xml130)
    app.cli.add_command(keys_cli)
    app.cli.add_command(notifications_cli)
    app.cli.add_command(passport_cli)
