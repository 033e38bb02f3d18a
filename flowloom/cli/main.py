"""The ``flowloom`` command: Typer wiring only; the work is in the modules beside this one.

Each command imports what it needs when it runs (the ``db`` commands their storage modules,
all of them rich for the console), so ``flowloom serve`` loads none of it.
"""

from __future__ import annotations

import gc
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowloom.cli.common import fail, load_settings, require_storable, run_async
from flowloom.exceptions import FlowloomError, InputError
from flowloom.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["app"]

app = typer.Typer(
    name="flowloom",
    help="flowloom: build AI workflows as graphs, run them, and read every run back.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database: migrate, prune, back up, inspect.", no_args_is_help=True)
users_app = typer.Typer(help="Accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")


@cache
def _console() -> Console:
    from rich.console import Console

    return Console()


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the SQLite file, blobs and the secret key.", show_default=False
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(help="sqlite:///PATH or postgresql://USER@HOST/DB.", show_default=False),
    ] = None,
) -> None:
    """Options given here win over FLOWLOOM_* environment variables."""
    if ctx.invoked_subcommand != "serve":
        # The entry point loaded the modules with the collector off (``flowloom.cli.entry``);
        # serve's app turns it on once started.
        gc.enable()
    ctx.obj = load_settings(data_dir=data_dir, database_url=database_url)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the database to the newest schema (backed up first into DATA_DIR/backups when
    it has tables to migrate; FLOWLOOM_BACKUP_BEFORE_MIGRATE=false skips that)."""
    from flowloom.cli import db as db_commands

    revision, copy = run_async(lambda: db_commands.upgrade(_settings(ctx)))
    if copy is not None:
        _console().print(f"before migrating, the database was copied to {copy}")
    _console().print(f"database is at revision [bold]{revision}[/bold]")


@db_app.command("prune")
def db_prune(
    ctx: typer.Context,
    older_than: Annotated[
        str | None, typer.Option(help="Age such as 30d, 12h, 2w.", show_default=False)
    ] = None,
    before: Annotated[
        str | None,
        typer.Option(help="ISO date or date-time (UTC): prune runs created before it."),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option(help="Write pruned runs to JSON Lines files in this folder first."),
    ] = None,
) -> None:
    """Delete old runs with their node executions and the blobs only they used."""
    from flowloom.storage.maintenance import parse_date, parse_duration

    if (older_than is None) == (before is None):
        fail("give exactly one of --older-than AGE or --before DATE")
    try:
        age = parse_duration(older_than) if older_than is not None else None
        cutoff = parse_date(before) if before is not None else None
    except InputError as exc:
        fail(str(exc))
    from flowloom.cli import db as db_commands

    report = run_async(
        lambda: db_commands.prune(_settings(ctx), older_than=age, before=cutoff, archive=archive)
    )
    _console().print(
        f"pruned {report.runs} run(s), {report.node_executions} node execution(s), "
        f"{report.artifacts} artifact(s), {report.blobs_deleted} blob(s) "
        f"(runs created before {report.cutoff:%Y-%m-%d %H:%M:%S} UTC)"
    )
    if report.database_bytes_before is not None and report.database_bytes_after is not None:
        _console().print(
            f"database file {report.database_bytes_before / 1e6:,.1f} MB"
            f" -> {report.database_bytes_after / 1e6:,.1f} MB"
        )
    for path in report.archive_files:
        _console().print(f"archived to {path}")


@db_app.command("backup")
def db_backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the copy (must not exist).")],
    verify: Annotated[
        bool, typer.Option("--verify", help="Then open the copy and check it is whole.")
    ] = False,
) -> None:
    """Write a consistent copy of the database while flowloom keeps running (SQLite's online
    backup; pg_dump for PostgreSQL, when it is installed)."""
    from flowloom.cli import db as db_commands

    written, check = run_async(
        lambda: db_commands.backup(_settings(ctx), target=path, verify=verify)
    )
    _console().print(f"backup written to {written}")
    if check is not None:
        at = f", schema revision {check.revision}" if check.revision else ""
        _console().print(
            f"verified: the copy opens and passes its integrity check ({check.tables} tables{at})"
        )


@db_app.command("maintain")
def db_maintain(ctx: typer.Context) -> None:
    """Run the maintenance pass now: the retention the instance settings ask for, expired
    sessions, memory and subscriptions (what the server does daily)."""
    from flowloom.cli import db as db_commands

    report = run_async(lambda: db_commands.maintain(_settings(ctx)))
    deleted = ", ".join(f"{n} {table}" for table, n in report.rows_deleted.items()) or "none"
    _console().print(
        f"runs deleted {report.runs_deleted}; node outputs cleared "
        f"{report.node_outputs_cleared}; rows deleted: {deleted}; sessions purged "
        f"{report.sessions_purged}; memory entries purged {report.memory_purged}; "
        f"subscriptions expired {report.subscriptions_expired}"
    )
    if report.error is not None:
        fail(f"the pass stopped early: {report.error}")


@db_app.command("stats")
def db_stats(ctx: typer.Context) -> None:
    """Rows (and sizes, where the database tells) of every table."""
    from flowloom.cli import db as db_commands

    rows = run_async(lambda: db_commands.stats(_settings(ctx)))
    from rich.table import Table

    table = Table("table", "rows", "size", caption="~ marks an estimate")
    for row in rows:
        size = "-" if row.bytes is None else f"{row.bytes / 1024:,.0f} KiB"
        count = f"{row.rows:,}" if row.rows_exact else f"~{row.rows:,}"
        table.add_row(row.name, count, size)
    _console().print(table)


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="The account's email address.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    admin: Annotated[bool, typer.Option(help="Give the account the admin role.")] = False,
) -> None:
    """Create an account. The password is read from standard input, never from arguments."""
    from flowloom.cli.users import create_user

    if not password_stdin:
        fail("give --password-stdin and pipe the password in (it never goes on a command line)")
    password = sys.stdin.readline().rstrip("\r\n")
    require_storable({"--email": email, "the password": password})
    user = run_async(
        lambda: create_user(_settings(ctx), email=email, password=password, admin=admin)
    )
    _console().print(f"created {user.role} {user.email} ({user.id})")


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the API and run the engine in this process (SIGTERM or Ctrl-C stops it)."""
    from flowloom.cli.serve import serve as serve_app

    try:
        serve_app(_settings(ctx), host=host, port=port)
    except FlowloomError as exc:
        fail(str(exc))


@app.command("worker")
def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Worker processes; each drives one run at a time.")
    ] = 2,
    pool: Annotated[
        str,
        typer.Option(
            help="Celery pool: prefork (a process per run slot), threads (one process, one "
            "engine, --concurrency runs at once) or solo (one run at a time)."
        ),
    ] = "prefork",
    queue: Annotated[
        list[str] | None,
        typer.Option(
            help="A queue to consume, repeatable: 'runs', or a routed node queue such as "
            "'heavy' (FLOWLOOM_WORKER_NODE_QUEUES). Default: all of them."
        ),
    ] = None,
) -> None:
    """Drive queued runs (distributed mode: FLOWLOOM_BROKER_URL, a shared PostgreSQL)."""
    from flowloom.worker.celery_app import run_worker

    if pool not in ("prefork", "threads", "solo"):
        fail(f"--pool must be prefork, threads or solo, not {pool!r}")
    try:
        run_worker(_settings(ctx), concurrency=concurrency, pool=pool, queues=queue)
    except FlowloomError as exc:
        fail(str(exc))


@app.command("run")
def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A workflow definition (JSON).")],
    input_: Annotated[
        list[str] | None,
        typer.Option("--input", "-i", help="NAME=VALUE for the manual trigger; repeatable."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate a definition file, store it, and run it here with live node states."""
    from flowloom.cli.run import parse_inputs, run_file

    try:
        inputs = parse_inputs(input_ or [])
    except InputError as exc:
        fail(str(exc))
    code = run_async(lambda: run_file(_settings(ctx), file, inputs, as_json, _console()))
    raise typer.Exit(code)


@app.command("resume")
def resume(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """Finish the runs a killed `flowloom run` left behind, from where their records stand."""
    from flowloom.cli.run import resume_runs

    raise typer.Exit(run_async(lambda: resume_runs(_settings(ctx), as_json, _console())))


@app.command("generate")
def generate(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What the workflow should do.")],
    provider: Annotated[str, typer.Option(help="openai, gemini or anthropic.")] = "openai",
    model: Annotated[str, typer.Option(help="The model that drafts it.")] = "gpt-4o-mini",
    credential: Annotated[
        str | None, typer.Option(help="A stored credential instead of the instance key.")
    ] = None,
    repairs: Annotated[int, typer.Option(min=0, max=5, help="Repairs at most.")] = 2,
    name: Annotated[str | None, typer.Option(help="The saved workflow's name.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the definition here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Draft a workflow from plain language with a model; save it once it validates."""
    from flowloom.cli.generate import generate_command
    from flowloom.generation.service import GenerationRequest

    if provider not in ("openai", "gemini", "anthropic"):
        fail(f"--provider: {provider!r} is not one of openai, gemini, anthropic")
    if not prompt.strip():
        fail("the prompt is empty")
    require_storable(
        {"the prompt": prompt, "--model": model, "--credential": credential, "--name": name}
    )
    request = GenerationRequest(
        prompt=prompt,
        provider=provider,
        model=model,
        credential=credential,
        max_repairs=repairs,
        name=name,
    )
    code = run_async(
        lambda: generate_command(
            _settings(ctx), request, output=output, as_json=as_json, console=_console()
        )
    )
    raise typer.Exit(code)


@app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="A workflow definition (JSON).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check a definition file and name every problem (node, port, message)."""
    from flowloom.cli.validate import validate_file

    raise typer.Exit(validate_file(file, _console(), as_json))


@app.command("demo")
def demo(ctx: typer.Context) -> None:
    """Set up the local database, load and run the example workflows, show the history."""
    from flowloom.cli.demo import run_demo

    run_async(lambda: run_demo(_settings(ctx), console=_console()))


if __name__ == "__main__":  # pragma: no cover
    app()
