"""`apivigil dashboards build|push`: the Grafana dashboards as JSON, and into a Grafana."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli_common import err, out
from monitor.scan import EXIT_USAGE
from monitor.secret_files import read_secret_file

dashboards_app = typer.Typer(
    help="Grafana dashboards: build the JSON, push it into a Grafana.", no_args_is_help=True
)


@dashboards_app.command("build")
def build(
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", help="directory for the JSON [default: dashboards/json, in this directory]"
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option(help="write nothing; exit 1 when the JSON there is out of date")
    ] = False,
) -> None:
    """Generate the dashboards (dashboards/build.py) as JSON files."""
    from dashboards.build import differences, write

    # relative to where the command runs, never into the installed package
    directory = out_dir or Path("dashboards") / "json"
    if check:
        problems = differences(directory)
        for problem in problems:
            err.print(problem, markup=False, highlight=False)
        if problems:
            raise typer.Exit(1)
        out.print(f"{directory}: up to date")
        return
    for path in write(directory):
        out.print(str(path), markup=False, highlight=False)


@dashboards_app.command("push")
def push(
    grafana_url: Annotated[str, typer.Option(help="e.g. http://127.0.0.1:3000")],
    token_file: Annotated[Path, typer.Option(help="file holding a Grafana service account token")],
    folder: Annotated[str, typer.Option(help="Grafana folder (created if absent)")] = "apivigil",
    datasource: Annotated[
        str | None,
        typer.Option(
            help="Prometheus data source name or uid [default: the default Prometheus one]"
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="seconds per request")] = 10.0,
) -> None:
    """Create the folder and upsert every dashboard (same uids; unchanged ones are left)."""
    from dashboards.build import build_all
    from dashboards.push import PushError, grafana_api
    from dashboards.push import push as push_dashboards

    try:
        token = read_secret_file(token_file, "--token-file").get_secret_value()
    except ValueError as error:
        err.print(str(error), style="red", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        api = grafana_api(grafana_url, token, timeout)
        report = push_dashboards(api, list(build_all().values()), folder, datasource)
    except PushError as error:
        err.print(f"[red]push failed:[/] {error}", highlight=False)
        raise typer.Exit(1) from None
    verb = "created" if report.folder_created else "found"
    out.print(f"folder {report.folder_title!r} ({report.folder_uid}) {verb}", highlight=False)
    if report.datasource_verified:
        out.print(f"data source {report.datasource} ({report.datasource_uid})", highlight=False)
    else:
        out.print(
            f"data source {report.datasource!r} used as given: the token may not list "
            "data sources to check it",
            highlight=False,
        )
    for pushed in report.dashboards:
        out.print(
            f"{pushed.outcome.value:9} {pushed.uid} v{pushed.version} {pushed.title}",
            markup=False,
            highlight=False,
        )
