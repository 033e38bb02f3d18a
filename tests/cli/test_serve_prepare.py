"""``flowloom serve``'s first start (``prepare``): the local owner gets a one-time password
(stored by the server once started, ``flowloom.api.first_password``) and the examples are saved,
in one transaction; a restart makes neither again. It runs
in a child process while the server imports the API (``prepared_app``): a prepare that fails
there still stops ``serve`` with a clear error and a non-zero exit, nothing half-written."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from pgkit import POSTGRES_URL, require_postgres
from servekit import cli, free_port, postgres_admin

from flowloom import example_workflows
from flowloom.api.first_password import FirstPassword
from flowloom.cli.serve import FirstStart, prepare
from flowloom.exceptions import NotFound
from flowloom.local_account import LOCAL_OWNER_EMAIL
from flowloom.passwords import verify_password
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.repos.users import UserRepo


async def _stored_hash(settings: Settings) -> str | None:
    db = Database.from_settings(settings)
    try:
        async with db.read() as session:
            owner = await UserRepo(session).get_by_email(email=LOCAL_OWNER_EMAIL)
            return owner.password_hash
    finally:
        await db.dispose()


async def test_the_first_start_makes_a_password_for_the_server_to_store_until_one_is_stored(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    first = await prepare(settings)
    unstored = await prepare(settings)  # the server stopped before storing it: a new one
    await _store_first_password(settings, unstored)
    again = await prepare(settings)

    assert first.password is not None
    assert unstored.password is not None
    assert first.password != unstored.password
    assert first.examples_added == len(example_workflows.read_examples())
    assert unstored.examples_added == 0
    stored = await _stored_hash(settings)
    assert stored is not None
    assert verify_password(stored, unstored.password)
    assert not verify_password(stored, first.password)
    assert (again.password, again.examples_added) == (None, 0)
    assert await _stored_hash(settings) == stored


async def _store_first_password(settings: Settings, first: FirstStart) -> None:
    assert first.password is not None
    db = Database.from_settings(settings)
    try:
        waiting = FirstPassword(user_id=first.user_id, password=first.password)
        waiting.start(db)
        await waiting.stored()
    finally:
        await db.dispose()


async def test_a_failed_example_load_stores_nothing_and_the_next_start_begins_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")

    async def broken(*args: object, **kwargs: object) -> list[object]:
        raise OSError("examples unreadable")

    with monkeypatch.context() as patched:
        patched.setattr(example_workflows, "install_examples", broken)
        with pytest.raises(OSError, match="examples unreadable"):
            await prepare(settings)
    first = await prepare(settings)
    await _store_first_password(settings, first)

    assert first.password is not None
    assert first.examples_added > 0
    stored = await _stored_hash(settings)
    assert stored is not None
    assert verify_password(stored, first.password)


def _served(data_dir: Path, *, env: dict[str, str] | None = None) -> CompletedProcess[str]:
    """``flowloom serve`` on a port nothing listens on; every case here ends before serving."""
    return cli(data_dir, "serve", "--port", str(free_port()), env=env)


def test_a_data_dir_that_is_a_file_stops_serve_with_one_line_and_exit_2(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("not a folder")

    served = _served(data_dir)

    assert served.returncode == 2, served.stderr
    assert served.stderr == f"flowloom: error: data dir {data_dir} exists and is not a directory\n"
    assert data_dir.read_text() == "not a folder"


def test_a_database_file_that_is_not_sqlite_stops_serve_and_is_left_as_it_was(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    junk = b"no database here " * 500
    database_file = Settings(data_dir=data_dir).sqlite_path
    assert database_file is not None
    database_file.write_bytes(junk)

    served = _served(data_dir)

    assert served.returncode == 2, served.stderr
    assert served.stderr.startswith("flowloom: error: "), served.stderr
    assert "file is not a database" in served.stderr
    assert database_file.read_bytes() == junk
    assert "password" not in served.stdout


def test_an_unmigrated_postgresql_database_stops_serve_naming_the_fix(tmp_path: Path) -> None:
    require_postgres()
    name = f"fl_{secrets.token_hex(6)}"
    postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
        served = _served(tmp_path / "data", env={"FLOWLOOM_DATABASE_URL": url})
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert served.returncode == 2, served.stderr
    assert "run `flowloom db upgrade` first" in served.stderr
    assert served.stderr.count("\n") == 1, served.stderr


_FAILING_EXAMPLES = """
import sys
from flowloom import example_workflows
async def broken(*args, **kwargs):
    raise OSError("examples unreadable")
example_workflows.install_examples = broken
from flowloom.cli.entry import main
sys.argv = ["flowloom", "serve", "--port", sys.argv[1]]
main()
"""


def test_an_error_in_the_prepare_process_stops_serve_and_leaves_no_half_start(
    tmp_path: Path,
) -> None:
    """The database is prepared in a child process (``flowloom.cli.forked``): its unexpected
    error ends the server with the child's traceback and exit 1; what the child began is rolled
    back, so the next start is a first start again."""
    data_dir = tmp_path / "data"
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir)}
    env.pop("FLOWLOOM_DATABASE_URL", None)

    served = subprocess.run(
        [sys.executable, "-c", _FAILING_EXAMPLES, str(free_port())],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert served.returncode == 1, served.stderr
    assert "OSError: examples unreadable" in served.stderr
    assert "raised in the child process" in served.stderr
    assert "password" not in served.stdout
    with pytest.raises(NotFound):  # the local owner was made in the rolled back transaction
        asyncio.run(_stored_hash(Settings(data_dir=data_dir)))
    again = asyncio.run(prepare(Settings(data_dir=data_dir)))
    assert again.password is not None
    assert again.examples_added == len(example_workflows.read_examples())


def test_the_app_is_made_once_the_prepare_process_has_answered(tmp_path: Path) -> None:
    """``prepared_app``: prepare runs in another process; its FirstStart comes back whole, the
    database is ready before the app exists, and the app holds the new password to store once
    started (a real server's sign-in with it: ``tests/api/test_api_serve.py``)."""
    code = """
import json, os
import flowloom.cli.serve as serve
from flowloom.settings import Settings
real = serve.prepare
async def noted(settings):
    first = await real(settings)
    (settings.data_dir / "prepared-in").write_text(str(os.getpid()))
    return first
serve.prepare = noted
settings = Settings()
first, app = serve.prepared_app(settings)
held = app.state.flowloom.first_password
print(json.dumps([first.password, first.examples_added, os.getpid(),
                  int((settings.data_dir / "prepared-in").read_text()),
                  held is not None and held.user_id == first.user_id]))
"""
    data_dir = tmp_path / "data"
    env = {**os.environ, "FLOWLOOM_DATA_DIR": str(data_dir)}
    env.pop("FLOWLOOM_DATABASE_URL", None)

    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    password, added, server_pid, prepare_pid, held = json.loads(done.stdout)

    assert prepare_pid != server_pid
    assert added == len(example_workflows.read_examples())
    assert password is not None
    assert held
    assert asyncio.run(_stored_hash(Settings(data_dir=data_dir))) is None  # not started


def _tables_and_revision(database_file: Path) -> tuple[list[str], list[str]]:
    connection = sqlite3.connect(database_file)
    try:
        tables = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        revisions = connection.execute("SELECT version_num FROM alembic_version")
        return sorted(row[0] for row in tables), [row[0] for row in revisions]
    finally:
        connection.close()


def test_a_migration_that_fails_in_the_prepare_process_stops_serve_and_changes_nothing(
    tmp_path: Path,
) -> None:
    """A database at a revision this flowloom does not know: the migration fails in the child,
    serve exits 1 with Alembic's error, and the database holds what it held."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database_file = Settings(data_dir=data_dir).sqlite_path
    assert database_file is not None
    connection = sqlite3.connect(database_file)
    with connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('9999')")
    connection.close()

    served = _served(data_dir)

    assert served.returncode == 1, served.stderr
    assert "Can't locate revision identified by '9999'" in served.stderr
    assert "raised in the child process" in served.stderr
    assert "password" not in served.stdout
    assert _tables_and_revision(database_file) == (["alembic_version"], ["9999"])
