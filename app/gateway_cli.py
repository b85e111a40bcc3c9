"""``flask --app app passport gateway upload|revoke|revocations|download``: HoSo and the EU DCC Gateway."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

passport_cli = AppGroup("passport", help="Vaccine passports.")
gateway_cli = AppGroup("gateway", help="The EU DCC Gateway (HOSO_DCC_GATEWAY_* settings).")
passport_cli.add_command(gateway_cli)


def _report(outcomes: list) -> None:  # type: ignore[type-arg]
    for outcome in outcomes:
        click.echo(outcome.line())
    if not outcomes:
        click.echo("nothing to do")
    if any(not outcome.ok for outcome in outcomes):
        raise SystemExit(1)


def _run(call):  # type: ignore[no-untyped-def]
    from app.services.errors import DomainError

    try:
        return call()
    except DomainError as error:
        raise click.ClickException(str(error)) from None


@gateway_cli.command("upload")
def gateway_upload() -> None:
    """Upload each published DSC the gateway does not hold yet (CMS signed with the upload certificate)."""
    from app.cli import cli_context
    from app.runtime import runtime
    from app.services import dcc_gateway

    _report(_run(lambda: dcc_gateway.upload(cli_context(), runtime().settings)))


@gateway_cli.command("revoke")
@click.option("--kid", "kids", multiple=True, help="Also delete this DSC (base64 kid), e.g. a compromised one.")
def gateway_revoke(kids: tuple[str, ...]) -> None:
    """Delete from the gateway the DSCs HoSo no longer publishes (and any --kid)."""
    from app.cli import cli_context
    from app.runtime import runtime
    from app.services import dcc_gateway

    _report(_run(lambda: dcc_gateway.revoke(cli_context(), runtime().settings, kids)))


@gateway_cli.command("revocations")
def gateway_revocations() -> None:
    """Upload the revoked passports not sent yet, in signed batches per kid and hash type."""
    from app.cli import cli_context
    from app.runtime import runtime
    from app.services import dcc_gateway

    _report(_run(lambda: dcc_gateway.upload_revocations(cli_context(), runtime().settings)))


@gateway_cli.command("download")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Read a saved gateway trust list instead of calling the gateway.")
def gateway_download(path: Path | None) -> None:
    """Import other countries' DSCs from the gateway's trust list, checked against its trust anchor."""
    from app.cli import cli_context
    from app.runtime import runtime
    from app.services import dcc_gateway

    settings = runtime().settings

    def run():  # type: ignore[no-untyped-def]
        document = dcc_gateway.read_file(path) if path else dcc_gateway.fetch_trust_list(settings)
        source = f"file:{path.name}" if path else f"{settings.dcc_gateway_url}/trustList"
        return dcc_gateway.import_trust_list(cli_context(), settings, document, source,
                                             verify_cache=runtime().verify_cache)

    report = _run(run)
    for line in report.lines():
        click.echo(line)
