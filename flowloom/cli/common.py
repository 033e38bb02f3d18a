"""What every command shares: settings from the global options, and one way to fail."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from flowloom.exceptions import FlowloomError
from flowloom.settings import Settings
from flowloom.storable import unstorable_reason
from flowloom.storage.database import Database

__all__ = ["EXIT_USAGE", "fail", "load_settings", "open_database", "require_storable", "run_async"]

EXIT_USAGE = 2
"""Exit code for anything the user can fix: a bad argument, bad settings, a database not there."""

T = TypeVar("T")


def fail(message: str) -> NoReturn:
    """Print one clear line to stderr and exit with code 2."""
    typer.echo(f"flowloom: error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def require_storable(values: Mapping[str, str | None]) -> None:
    """Exit 2 naming the first option (key) whose text cannot be stored: a NUL, or a lone
    surrogate, which is how Python hands over argument or input bytes that are not UTF-8."""
    for option, value in values.items():
        if value is not None and (reason := unstorable_reason(value)) is not None:
            fail(f"{option}: {reason}")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with command-line options winning; bad ones exit 2."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "settings"
        fail(f"{field}: {first['msg'].removeprefix('Value error, ')}")


def run_async(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, turning flowloom's errors into one line and exit 2."""
    try:
        return asyncio.run(work())
    except FlowloomError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """A Database that was reached once (StorageError if not), disposed of at the end."""
    db = Database.from_settings(settings)
    try:
        await db.ping()
        yield db
    finally:
        await db.dispose()
