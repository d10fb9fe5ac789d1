"""The `apivigil` command. Thin: each command parses options and calls tested functions.

The daemon, the store and the demo (SQLAlchemy, Alembic, FastAPI) are imported inside the
commands that use them: `apivigil scan` in CI must not pay a second of imports it never uses.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from checks.controls import controls_document
from checks.egress import EgressPolicy
from checks.registry import URL_ONLY_CHECKS, params_model
from monitor import __version__
from monitor.cli_alerts import alerts_app, notify_app, silence_app
from monitor.cli_baseline import baseline_app
from monitor.cli_common import (
    ConfigOption,
    OutputFormat,
    StoreOption,
    err,
    load,
    load_with_warnings,
    out,
    store_session,
)
from monitor.cli_dashboards import dashboards_app
from monitor.cli_inventory import inventory_app
from monitor.cli_patch import advisories_app
from monitor.cli_report import report
from monitor.cli_worker import worker
from monitor.display import cell
from monitor.durations import format_duration, parse_duration
from monitor.fanout import auto_processes
from monitor.logs import configure_logging, configure_logging_on_first_use
from monitor.model import (
    CheckKind,
    CheckRun,
    FindingStatus,
    RunStatus,
    Severity,
    Target,
    parse_endpoint,
)
from monitor.render import print_scan
from monitor.runner import CheckJob
from monitor.scan import (
    EXIT_PUSH_FAILED,
    EXIT_USAGE,
    ScanFormat,
    exit_code,
    run_scan,
    scan_document,
    scan_sarif,
)
from monitor.tables import Column, fitted_table

if TYPE_CHECKING:
    from checks.interface import CheckParams
    from monitor.jobs import ScheduledCheck
    from monitor.push import PushGateway
    from monitor.settings import Settings

app = typer.Typer(
    name="apivigil",
    help="Continuous security monitoring of the APIs you operate (NIST SP 800-137).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # help is plain text: "[default: ...]" is not a markup tag
)
config_app = typer.Typer(help="Validate configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the store's schema.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(baseline_app, name="baseline")
app.add_typer(inventory_app, name="inventory")
app.add_typer(silence_app, name="silence")
app.add_typer(alerts_app, name="alerts")
app.add_typer(notify_app, name="notify")
app.add_typer(advisories_app, name="advisories")
app.add_typer(dashboards_app, name="dashboards")


def version() -> None:
    """Print the apivigil version."""
    out.print(f"apivigil {__version__}")


def run(
    config: ConfigOption = None,
    migrate: Annotated[bool, typer.Option(help="apply pending schema migrations at start")] = False,
) -> None:
    """Run the daemon: scheduled checks, /metrics, /healthz, /readyz.

    SIGTERM drains running checks and exits; SIGHUP reloads the config.
    """
    from monitor.daemon import Daemon, exit_leaving_library_threads
    from monitor.serving import DaemonError
    from monitor.store.interface import StoreError

    settings, path = load(config, required=True)
    configure_logging(settings.log_level, settings.log_format)
    try:
        Daemon(settings, path, migrate=migrate).serve_forever()
    except (DaemonError, StoreError, OSError) as error:
        err.print(f"[red]apivigil cannot start:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    exit_leaving_library_threads()


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="where certificates and config go")
    ] = Path(".apivigil-demo"),
    listen: Annotated[str, typer.Option(help="address of /metrics")] = "127.0.0.1:9690",
    store: Annotated[str, typer.Option(help="store URL")] = "sqlite:///apivigil.db",
) -> None:
    """Start local HTTPS demo targets (healthy, expiring in 5 days, expired) and watch them."""
    from monitor.daemon import Daemon, exit_leaving_library_threads
    from monitor.demo import start_demo_targets, write_demo_config
    from monitor.serving import DaemonError
    from monitor.store.interface import StoreError

    targets = start_demo_targets(directory)
    config_path = write_demo_config(directory, targets, store, listen)
    settings, _ = load(config_path)
    configure_logging(settings.log_level, settings.log_format)
    host, _, port = listen.rpartition(":")
    err.print(
        "[bold]apivigil demo[/]: three HTTPS targets on 127.0.0.1; certificates checked "
        "every 30 s, TLS posture every 5 min"
    )
    for target in targets:
        err.print(f"  {target.name:15} {target.server.url}  ({target.description})")
    err.print(f"  metrics   http://{host}:{port}/metrics")
    err.print("  findings  apivigil findings   (from another terminal, in this directory)")
    err.print(f"  config    {config_path}\n  store     {store}\nStop with Ctrl-C.")
    try:
        Daemon(settings, config_path, migrate=True).serve_forever()
    except (DaemonError, StoreError, OSError) as error:
        err.print(f"[red]apivigil cannot start:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        for target in targets:
            target.server.stop()
    exit_leaving_library_threads()


@config_app.command("check")
def config_check(
    file: Annotated[
        Path | None, typer.Argument(help="config file [default: as for --config]")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Validate a config file offline; print every problem with its key and line (exit 2),
    and warnings about keys that are accepted but ignored."""
    settings, path, warnings = load_with_warnings(file or config, required=True)
    for warning in warnings:
        err.print(f"{path}: warning: {warning}", markup=False, highlight=False)
    jobs = scheduled_checks(settings)
    out.print(f"{path}: ok — {len(settings.targets)} target(s), {len(jobs)} scheduled check(s)")


TARGET_COLUMNS = (
    Column("target", key=True),
    Column("url", key=True),
    Column("check"),
    Column("interval", drop=2),
    Column("timeout", drop=3),
    Column("labels", drop=1),
)


def targets(
    config: ConfigOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
) -> None:
    """List configured targets and their checks with effective schedules."""
    settings, _ = load(config, required=True)
    planned_checks = scheduled_checks(settings)
    if format is OutputFormat.JSON:
        print_json(
            [
                {
                    "target": p.job.target.name,
                    "url": p.job.target.url,
                    "labels": dict(p.job.target.labels),
                    "check": p.job.check.value,
                    "interval_seconds": p.interval.total_seconds(),
                    "timeout_seconds": p.job.timeout.total_seconds(),
                }
                for p in planned_checks
            ]
        )
        return
    rows = [
        [
            cell(p.job.target.name),
            cell(p.job.target.url or ""),
            p.job.check.value,
            format_duration(p.interval),
            format_duration(p.job.timeout),
            cell(", ".join(f"{k}={v}" for k, v in p.job.target.labels.items())),
        ]
        for p in planned_checks
    ]
    out.print(fitted_table(out.width, TARGET_COLUMNS, rows))


def findings(
    config: ConfigOption = None,
    store: Annotated[str | None, typer.Option(help="store URL [default: from the config]")] = None,
    target: Annotated[str | None, typer.Option(help="only this target")] = None,
    severity: Annotated[
        Severity | None, typer.Option(help="only at or above this severity")
    ] = None,
    status: Annotated[
        list[FindingStatus] | None, typer.Option(help="statuses to show [default: open]")
    ] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.TABLE,
) -> None:
    """List findings from the store."""
    from monitor.render import print_findings
    from monitor.store.interface import FindingQuery

    settings, config_file = load(config)
    query = FindingQuery(
        target=target,
        min_severity=severity,
        statuses=frozenset(status or [FindingStatus.OPEN]),
    )
    with store_session(settings, store, config_file) as sql_store:
        found = sql_store.findings(query)
    if format is OutputFormat.JSON:
        document = [
            {
                "fingerprint": f.fingerprint,
                "check": f.check.value,
                "target": f.target,
                "rule_id": f.rule_id,
                "severity": f.severity.value,
                "status": f.status.value,
                "title": f.title,
                "subject": f.subject,
                "evidence": f.evidence,
                "remediation": f.remediation,
                "first_seen": f.first_seen.isoformat(),
                "last_seen": f.last_seen.isoformat(),
                "resolved_at": f.resolved_at.isoformat() if f.resolved_at else None,
                "controls": controls_document(f.rule_id),
            }
            for f in found
        ]
        print_json(document)
        return
    print_findings(out, found)


@db_app.command("upgrade")
def db_upgrade(
    config: ConfigOption = None,
    store: Annotated[str | None, typer.Option(help="store URL [default: from the config]")] = None,
) -> None:
    """Create or migrate the store's schema to this version of apivigil."""
    from monitor.store.interface import StoreError
    from monitor.store.sql import SqlStore

    settings, _ = load(config)
    try:
        sql_store = SqlStore(store or settings.store)
        before = sql_store.schema_state()
        sql_store.upgrade_schema()
    except StoreError as error:
        err.print(f"[red]store:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    out.print(f"{sql_store.describe()}: schema was {before.value}, now current")
    sql_store.close()


@db_app.command("prune")
def db_prune(
    config: ConfigOption = None,
    store: StoreOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="say what would be removed; change nothing")
    ] = False,
) -> None:
    """Roll up and delete history older than the `retention:` settings, now."""
    from datetime import UTC, datetime

    from rich.table import Table

    settings, _ = load(config)
    with store_session(settings, store) as sql_store:
        result = sql_store.prune(
            settings.retention.policy(), datetime.now(UTC), budget_seconds=86_400, dry_run=dry_run
        )
        auto_vacuum = sql_store.sqlite_auto_vacuum()
    verb = "would remove" if dry_run else "removed"
    table = Table("table", f"rows {verb}")
    for name, rows in sorted(result.removed.items()):
        table.add_row(name, str(rows))
    out.print(table)
    days = result.rolled_up_days
    rolled = f"{len(days)} day(s), {days[0]} to {days[-1]}" if days else "no day"
    out.print(
        f"{sql_store.describe()}: {verb} {sum(result.removed.values())} rows; rolled up {rolled}"
    )
    if auto_vacuum is False and result.removed and not dry_run:
        out.print(
            "This SQLite file was created without incremental auto-vacuum, so it does not "
            "shrink by itself: with apivigil stopped, run "
            "`sqlite3 FILE 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'` once."
        )


def scan(
    urls: Annotated[
        list[str] | None, typer.Argument(help="ad-hoc targets (https://host[:port] or host:port)")
    ] = None,
    config: ConfigOption = None,
    check: Annotated[
        list[CheckKind] | None,
        typer.Option(
            "--check",
            help="only these checks [default: with URLs, every check that needs only a URL "
            f"({', '.join(sorted(URL_ONLY_CHECKS))}); with a config, every enabled check]",
        ),
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="only these configured targets")
    ] = None,
    format: Annotated[ScanFormat, typer.Option("--format", "-f")] = ScanFormat.TABLE,
    fail_on: Annotated[
        Severity, typer.Option(help="exit 1 when a finding is at or above this")
    ] = Severity.HIGH,
    concurrency: Annotated[int, typer.Option(min=1, max=2000, help="runs at once")] = 50,
    processes: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="worker processes [default: one per core for big scans]"),
    ] = None,
    timeout: Annotated[
        str | None, typer.Option(help="per-run timeout for ad-hoc targets, e.g. 30s")
    ] = None,
    push_gateway: Annotated[
        str | None,
        typer.Option(help="push the scan's metrics to this Prometheus Pushgateway URL"),
    ] = None,
    push_job: Annotated[str, typer.Option(help="the push's job label")] = "apivigil-scan",
    push_instance: Annotated[
        str | None, typer.Option(help="the push's instance label [default: this host's name]")
    ] = None,
    push_basic_auth_file: Annotated[
        Path | None, typer.Option(help="file holding user:password for the Pushgateway")
    ] = None,
    push_token_file: Annotated[
        Path | None, typer.Option(help="file holding a bearer token for the Pushgateway")
    ] = None,
    push_required: Annotated[
        bool, typer.Option(help="exit 4 when the push fails (else it is only reported)")
    ] = False,
) -> None:
    """Run checks once and report.

    With URLs, every check that needs nothing but a URL runs (certificate expiry and trust,
    TLS posture); pick others with --check. Without URLs, the config's targets and checks.
    Exit 0 when clean, 1 for a finding at or above --fail-on, 2 for usage or config
    errors, 3 when a check could not run, 4 when --push-required and the push failed.
    """
    gateway = _push_gateway(
        push_gateway, push_job, push_instance, push_basic_auth_file, push_token_file
    )
    only = frozenset(check) if check else None
    egress = EgressPolicy()
    if urls:
        jobs = _ad_hoc_jobs(urls, only, timeout)
    else:
        settings, _ = load(config, required=True)
        egress = settings.egress.policy()
        jobs = [planned.job for planned in scheduled_checks(settings, only)]
        if target:
            unknown = set(target) - {job.target.name for job in jobs}
            if unknown:
                err.print(f"[red]unknown target(s):[/] {', '.join(sorted(unknown))}")
                raise typer.Exit(EXIT_USAGE)
            jobs = [job for job in jobs if job.target.name in target]
    if not jobs:
        err.print("[red]nothing to scan:[/] no enabled checks match")
        raise typer.Exit(EXIT_USAGE)
    configure_logging_on_first_use("error", "console")
    runs = _scan_with_progress(jobs, concurrency, processes or auto_processes(len(jobs)), egress)
    if format is ScanFormat.JSON:
        print_json(scan_document(runs))
    elif format is ScanFormat.SARIF:
        locations = {job.target.name: job.target.url for job in jobs}
        print_json(scan_sarif(runs, locations))
    else:
        print_scan(out, runs)
    code = exit_code(runs, fail_on)
    if gateway is not None and not _pushed(gateway, runs, jobs) and push_required:
        code = max(code, EXIT_PUSH_FAILED)
    raise typer.Exit(code)


def _push_gateway(
    url: str | None,
    job: str,
    instance: str | None,
    basic_auth_file: Path | None,
    token_file: Path | None,
) -> PushGateway | None:
    if url is None:
        return None  # before the imports: a scan without a gateway loads no store code
    import socket

    from monitor.push import PushGateway
    from monitor.secret_files import read_secret_file

    if basic_auth_file is not None and token_file is not None:
        err.print("--push-basic-auth-file and --push-token-file: give one of them", markup=False)
        raise typer.Exit(EXIT_USAGE)
    try:
        token = read_secret_file(token_file, "--push-token-file") if token_file else None
        pair = (
            read_secret_file(basic_auth_file, "--push-basic-auth-file") if basic_auth_file else None
        )
    except ValueError as error:
        err.print(str(error), markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    basic_auth = None
    if pair is not None:
        user, colon, password = pair.get_secret_value().partition(":")
        if not colon or not user:
            err.print(
                f"--push-basic-auth-file: {basic_auth_file} must hold user:password", markup=False
            )
            raise typer.Exit(EXIT_USAGE)
        basic_auth = (user, password)
    return PushGateway(
        url=url,
        job=job,
        instance=instance or socket.gethostname(),
        basic_auth=basic_auth,
        bearer_token=token.get_secret_value() if token else None,
    )


def _pushed(gateway: PushGateway, runs: list[CheckRun], jobs: list[CheckJob]) -> bool:
    """Push the scan's metrics; report a failure on stderr and return False."""
    from datetime import UTC, datetime

    from monitor.push import push, scan_registry

    targets = list({job.target.name: job.target for job in jobs}.values())
    complete = all(run.status is RunStatus.OK for run in runs)
    where = f"{gateway.url} (job {gateway.job}, instance {gateway.instance})"
    try:
        push(gateway, scan_registry(runs, targets, datetime.now(UTC)), complete)
    except OSError as error:
        err.print(f"push to {where} failed: {error}", markup=False, highlight=False)
        return False
    err.print(f"pushed the scan's metrics to {where}", markup=False, highlight=False)
    return True


def print_json(document: object) -> None:
    """Indented for a terminal; compact when piped (the C encoder, ~5x faster on big scans)."""
    print(json.dumps(document, indent=2 if sys.stdout.isatty() else None))


def scheduled_checks(
    settings: Settings, only: frozenset[CheckKind] | None = None
) -> list[ScheduledCheck]:
    """`monitor.jobs.scheduled_checks`, imported when a command plans checks (it needs the
    settings models, which `apivigil version` and `--help` never build)."""
    from monitor.jobs import scheduled_checks as planned

    return planned(settings, only)


def _ad_hoc_jobs(
    urls: list[str], only: frozenset[CheckKind] | None, timeout: str | None
) -> list[CheckJob]:
    try:
        run_timeout = parse_duration(timeout) if timeout else parse_duration("60s")
    except ValueError as error:
        err.print(f"[red]--timeout:[/] {error}")
        raise typer.Exit(EXIT_USAGE) from None
    kinds = sorted(only or URL_ONLY_CHECKS)
    jobs = []
    for url in urls:
        try:
            endpoint = parse_endpoint(url)
        except ValueError as error:
            err.print(f"[red]{url}:[/] {error}")
            raise typer.Exit(EXIT_USAGE) from None
        for kind in kinds:
            try:
                params: CheckParams = params_model(kind)()
            except ValidationError:
                err.print(f"[red]{kind}[/] needs settings (e.g. sources): use a config file")
                raise typer.Exit(EXIT_USAGE) from None
            jobs.append(CheckJob(kind, Target(name=str(endpoint), url=url), params, run_timeout))
    return jobs


def _scan_with_progress(
    jobs: list[CheckJob], concurrency: int, processes: int, egress: EgressPolicy
) -> list[CheckRun]:
    if not err.is_terminal:
        return run_scan(jobs, concurrency, processes=processes, egress=egress)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    # no refresh thread: scan workers are forked, and a fork must not copy a running thread
    with Progress(
        TextColumn("scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        auto_refresh=False,
    ) as progress:
        task = progress.add_task("scan", total=len(jobs))

        def advance(_run: CheckRun) -> None:
            progress.advance(task)
            progress.refresh()

        return run_scan(jobs, concurrency, on_done=advance, processes=processes, egress=egress)


# `apivigil --help` lists the commands in the order they are registered: the daily ones first
# (typer lists the command groups, config, db, baseline, ..., after these).
for _command in (run, scan, findings, report, targets, demo, worker, version):
    app.command()(_command)
