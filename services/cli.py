"""`platform-services`: the runtime services' console script (the image's ENTRYPOINT).

argparse, not Typer: the image carries nothing it does not run. Commands only parse and print; the work is in the
same library functions `platformctl meter serve` and `platformctl payouts run` call. Every error ends in `main`:
bad input exits 2, a runtime failure 1, success 0; tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from foundation.errors import EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK, InputError, PlatformError
from services.payouts.money import PERIOD_HELP

PROG = "platform-services"
DEFAULT_WAREHOUSE = "local:.platformctl/warehouse"
EPILOG = """examples:
  platform-services meter serve --host 0.0.0.0 --port 8787 --region eu-central \\
      --warehouse 'snowflake://ORG-PLATFORM_EU_CENTRAL/PLATFORM_EU_CENTRAL?user=METER&role=LOADER&warehouse=WH' \\
      --public-url https://meter.eu-central.voice-platform.example --spool /var/lib/platform-services/spool.db
  platform-services payouts run --period previous --region eu-central --live \\
      --statements s3://platform-eu-central-statements/statements
  platform-services conformance run --url http://calsync.integration-calsync.svc.cluster.local:8080/healthz
  platform-services webhooks serve --host 0.0.0.0 --port 8788 --store local:/var/spool/platform
  platform-services meter serve --help

exit codes: 0 success, 1 runtime failure (or partners not paid), 2 bad input (the message names the argument)"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def parser() -> argparse.ArgumentParser:
    root = _Parser(
        prog=PROG,
        description="The platform's runtime services: the usage meter, the payouts job and webhooks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--debug", action="store_true", help="show tracebacks")
    services = root.add_subparsers(dest="service", required=True, metavar="SERVICE", parser_class=_Parser)

    meter = services.add_parser("meter", help="the usage meter (Twilio status callbacks and Kong logs)")
    meter_commands = meter.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    serve = meter_commands.add_parser(
        "serve",
        help="run the meter",
        description="Run the meter. Needs TWILIO_AUTH_TOKEN and METER_KONG_TOKEN in the environment. The partners it "
        "meters are the warehouse's active PARTNERS rows homed in --region, read at start and every 30 s.",
        epilog="example: platform-services meter serve --region eu-central --public-url https://meter.example",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8787, help="port to listen on (default 8787)")
    serve.add_argument(
        "--warehouse",
        default=os.environ.get("METER_WAREHOUSE_URL", DEFAULT_WAREHOUSE),
        help="snowflake://ACCOUNT/DATABASE?user=&role=&warehouse= or local:DIR (needs platform-services[local]); "
        "env METER_WAREHOUSE_URL",
    )
    serve.add_argument(
        "--public-url",
        default=os.environ.get("METER_PUBLIC_URL"),
        help="base URL Twilio calls and signs (default http://HOST:PORT); env METER_PUBLIC_URL",
    )
    serve.add_argument("--spool", type=Path, default=Path(".platformctl/meter/spool.db"), help="spool file (SQLite)")
    serve.add_argument("--region", help="meter only partners homed in this region code (default: every partner)")
    serve.add_argument(
        "--max-pending", type=_positive, default=1_000_000, help="events waiting for the warehouse before 503"
    )

    payouts = services.add_parser("payouts", help="revenue-share statements and Stripe Connect transfers")
    payouts_commands = payouts.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    run = payouts_commands.add_parser(
        "run",
        help="pay one period",
        description="Build each partner's statement for the period from the warehouse (usage views x PARTNERS), "
        "transfer its revenue share once, store the statement. Needs STRIPE_API_KEY unless --dry-run.",
        epilog="example: platform-services payouts run --period previous --region eu-central --live",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--period", required=True, help=PERIOD_HELP)
    run.add_argument(
        "--region",
        help="the region whose warehouse this is (recorded on statements); every partner with usage metered here is "
        "paid, wherever it is homed now",
    )
    run.add_argument(
        "--warehouse",
        default=os.environ.get("PAYOUTS_WAREHOUSE_URL", DEFAULT_WAREHOUSE),
        help="as for meter serve; env PAYOUTS_WAREHOUSE_URL",
    )
    run.add_argument(
        "--statements",
        default=os.environ.get("PAYOUTS_STATEMENTS", ".platformctl/statements"),
        help="DIR or s3://BUCKET/PREFIX; env PAYOUTS_STATEMENTS",
    )
    run.add_argument("--adjustments", type=Path, help="YAML of signed adjustment lines for this period")
    run.add_argument("--dry-run", action="store_true", help="print the statements; write and call nothing")
    run.add_argument("--live", action="store_true", help="allow a live STRIPE_API_KEY")
    run.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    webhooks = services.add_parser("webhooks", help="signed, retried deliveries of platform events to endpoints")
    webhooks_commands = webhooks.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    hooks = webhooks_commands.add_parser(
        "serve",
        help="run the webhooks service",
        description="Run the webhooks service: POST /events for producers (WEBHOOKS_EVENT_TOKEN), the management API "
        "under /v1/webhooks for owners through Kong (WEBHOOKS_KONG_TOKEN and X-Consumer-Custom-ID), /healthz, "
        "/metrics. Endpoint secrets are sealed with a data key from KMS (WEBHOOKS_KMS_KEY_ID) or, locally, "
        "WEBHOOKS_SECRET_KEY (base64 of 32 bytes). Deliveries go only to https on 443 at public addresses; "
        "WEBHOOKS_BLOCKED_CIDRS and WEBHOOKS_PLATFORM_DOMAINS add the platform's own ranges and zones. Test settings "
        "WEBHOOKS_ALLOW_LOOPBACK=1 and WEBHOOKS_TIME_SCALE are refused in a cluster (KUBERNETES_SERVICE_HOST set).",
        epilog="example: platform-services webhooks serve --host 0.0.0.0 --store local:/var/spool/platform",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hooks.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    hooks.add_argument("--port", type=_port, default=8788, help="port to listen on (default 8788)")
    hooks.add_argument(
        "--store",
        default=os.environ.get("WEBHOOKS_STORE", "local:.platformctl/webhooks"),
        help="local:DIR: the durable store, DIR/webhooks.db (default local:.platformctl/webhooks); env WEBHOOKS_STORE",
    )
    hooks.add_argument(
        "--per-endpoint", type=_positive, default=8, help="attempts in flight per endpoint at most (default 8)"
    )
    return root


def webhooks_serve(args: argparse.Namespace) -> int:
    from services.webhooks.server import ServeConfig, serve

    serve(ServeConfig(host=args.host, port=args.port, store=args.store, per_endpoint=args.per_endpoint))
    return EXIT_OK


def meter_serve(args: argparse.Namespace) -> int:
    from services.meter.server import ServeConfig, serve

    serve(
        ServeConfig(
            host=args.host,
            port=args.port,
            warehouse_url=args.warehouse,
            public_url=args.public_url,
            spool_path=args.spool,
            region=args.region,
            max_pending=args.max_pending,
        )
    )
    return EXIT_OK


def payouts_run(args: argparse.Namespace) -> int:
    from services.payouts import runner

    if args.adjustments is not None and not args.adjustments.is_file():
        raise InputError.single("--adjustments", "", f"{args.adjustments} is not a file")
    report = runner.run(
        args.period,
        region=args.region,
        warehouse_url=args.warehouse,
        statements=args.statements,
        adjustments_file=args.adjustments,
        dry_run=args.dry_run,
        live=args.live,
        env=os.environ,
    )
    if args.as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        for outcome in report.outcomes:
            detail = f" ({outcome.reason})" if outcome.reason else ""
            print(f"{outcome.partner} {outcome.period or report.period}: {outcome.status}{detail}")
        if not report.outcomes:
            print(f"nothing to pay for {report.period}")
    for outcome in report.outcomes:
        for warning in outcome.warnings:
            print(f"warning: {outcome.partner}: {warning}", file=sys.stderr)
    for note in report.webhooks:
        print(f"webhooks: {note}", file=sys.stderr)
    for outcome in report.not_paid:
        print(f"not paid: {outcome.partner} {outcome.period}: {outcome.reason}", file=sys.stderr)
    if report.not_paid:
        names = ", ".join(f"{o.partner} ({o.period}: {o.status})" for o in report.not_paid)
        raise PlatformError(f"{len(report.not_paid)} month(s) not paid up to {report.period}: {names}")
    return EXIT_OK


COMMANDS = {
    ("meter", "serve"): meter_serve,
    ("payouts", "run"): payouts_run,
    ("webhooks", "serve"): webhooks_serve,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn every error into an exit code (the one place that does)."""
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:2] == ["conformance", "run"]:
        # The marketplace's conformance Job (its own argparse: stdlib only, prints one JSON result).
        from services.conformance import main as conformance_main

        return conformance_main(given[2:])
    args = parser().parse_args(given)
    try:
        return COMMANDS[(args.service, args.command)](args)
    except InputError as exc:
        _report(exc, [str(p) for p in exc.problems] or [str(exc)], args.debug)
        return EXIT_BAD_INPUT
    except PlatformError as exc:
        _report(exc, [str(exc)], args.debug)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line unless asked for the traceback
        line = f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"
        _report(exc, [line], args.debug)
        return EXIT_FAILURE


def _report(exc: BaseException, lines: list[str], debug: bool) -> None:
    if debug:
        print("".join(traceback.format_exception(exc)), file=sys.stderr)
    for line in lines:
        print(f"error: {line}", file=sys.stderr)


def entry() -> None:
    sys.exit(main())
