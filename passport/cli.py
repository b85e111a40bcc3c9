"""``python -m passport verify``: verify a passport from the command line and print one JSON object."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from .errors import PassportError
from .gateway import gateway_trust_list
from .revocation import RevocationList
from .rules import COUNTRY, RuleSet, check_rules, verdict_json
from .trust import TrustList
from .verify import VerificationResult, verify

__all__ = ["main", "verify_document"]

EXIT_VALID, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def verify_document(data: str | bytes, trust_document: object | None, now: datetime,
                    revocation_document: object | None = None) -> VerificationResult:
    """Verify with a trust list (and revocation list) given as parsed JSON: the CLI's code path.

    :param data: HC1 text or PNG bytes
    :param trust_document: the trust list JSON (``GET /passport/trust-list``, or the EU DCC Gateway's
        array of entries, as ``GET /passport/dcc/trustList`` serves it), or ``None``
    :param now: the verification time (timezone-aware)
    :param revocation_document: the revocation list JSON, or ``None``
    :returns: the verification result
    :raises TrustListError: on a malformed trust list
    :raises GatewayError: on a malformed gateway trust list
    :raises RevocationListError: on a malformed revocation list
    """
    trust_list: TrustList | None
    if trust_document is None:
        trust_list = None
    elif isinstance(trust_document, list):
        trust_list = gateway_trust_list(trust_document)
    else:
        trust_list = TrustList.from_json(trust_document)
    revocations = RevocationList.from_json(revocation_document) if revocation_document is not None else None
    return verify(data, trust_list, now, revocations)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m passport", description="EU DCC vaccine passports.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="verify HC1 text or a QR image; exit 0 valid, 1 invalid, 2 usage")
    check.add_argument("hc1", nargs="?", metavar="HC1-TEXT", help="the QR text ('-' reads standard input)")
    check.add_argument("--image", type=Path, metavar="QR.png", help="a PNG image of the QR code")
    check.add_argument("--trust-list", type=Path, metavar="FILE",
                       help="trust list JSON (as GET /passport/trust-list, or the EU DCC Gateway's array as "
                            "GET /passport/dcc/trustList); without it nothing is trusted")
    check.add_argument("--revocations", type=Path, metavar="FILE", help="revocation list JSON")
    check.add_argument("--at", metavar="ISO-8601", help="verification time (default: now; naive means UTC)")
    check.add_argument("--rules", type=Path, metavar="FILE",
                       help="business rules JSON (as GET /passport/rules, or gateway-format rules)")
    check.add_argument("--country", metavar="XX",
                       help="country of arrival whose rules apply (default VN; needs --rules)")
    return parser


def _load_json(path: Path | None) -> object | None:
    return None if path is None else json.loads(path.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """Run the command line.

    :param argv: arguments (default: ``sys.argv[1:]``)
    :returns: 0 when valid, 1 when invalid, 2 on a usage error (bad arguments, unreadable files)
    """
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse reports usage errors by exiting with 2
        return EXIT_USAGE if stop.code else EXIT_VALID
    if (args.hc1 is None) == (args.image is None):
        print("python -m passport verify: give either HC1-TEXT or --image", file=stderr)
        return EXIT_USAGE
    if args.country is not None and args.rules is None:
        print("python -m passport verify: --country needs --rules FILE", file=stderr)
        return EXIT_USAGE
    country = args.country or "VN"
    if not COUNTRY.match(country):
        print("python -m passport verify: --country takes two capital letters (VN, DE, ...)", file=stderr)
        return EXIT_USAGE
    try:
        if args.at is None:
            now = datetime.now(UTC)
        else:
            now = datetime.fromisoformat(args.at)
            now = now if now.tzinfo else now.replace(tzinfo=UTC)
        data: str | bytes = args.image.read_bytes() if args.image else (
            stdin.read() if args.hc1 == "-" else args.hc1)
        rule_set = RuleSet.from_json(_load_json(args.rules)) if args.rules is not None else RuleSet(())
        if args.rules is not None and country not in rule_set.countries:
            print(f"python -m passport verify: {args.rules} has no rules for {country}", file=stderr)
            return EXIT_USAGE
        result = verify_document(data, _load_json(args.trust_list), now, _load_json(args.revocations))
    except (OSError, ValueError, PassportError) as error:
        # ValueError covers bad JSON and a bad --at; PassportError a malformed trust, revocation or rule list.
        print(f"python -m passport verify: {error}", file=stderr)
        return EXIT_USAGE
    document = verdict_json(result, check_rules(result, rule_set, country, now), country)
    if args.rules is None:
        document["country"] = None  # no rules were given: valid means authentic
    print(json.dumps(document, ensure_ascii=False), file=stdout)
    return EXIT_VALID if document["valid"] else EXIT_INVALID
