"""The command line as a user meets it: real SQLite files in a temp folder, real exit codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowloom.cli.main import app

runner = CliRunner()


def flowloom(data_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--data-dir", str(data_dir), *args], input=stdin)
    return result.exit_code, result.output


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    code, output = flowloom(path, "db", "upgrade")
    assert code == 0, output
    return path


def test_upgrade_creates_the_database_and_reports_the_revision(tmp_path: Path) -> None:
    code, output = flowloom(tmp_path / "fresh", "db", "upgrade")
    assert code == 0, output
    assert "database is at revision" in output
    assert (tmp_path / "fresh" / "flowloom.db").exists()
    code, output = flowloom(tmp_path / "fresh", "db", "upgrade")
    assert code == 0, "upgrading twice is harmless"


def test_users_create_reads_the_password_from_stdin(data_dir: Path) -> None:
    code, output = flowloom(
        data_dir,
        "users",
        "create",
        "--email",
        "Ada@Example.org",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert code == 0, output
    assert "ada@example.org" in output
    with sqlite3.connect(data_dir / "flowloom.db") as conn:
        (stored,) = conn.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored


def test_users_create_refuses_a_duplicate_with_one_line_and_exit_2(data_dir: Path) -> None:
    args = ("users", "create", "--email", "dup@example.org", "--password-stdin")
    assert flowloom(data_dir, *args, stdin="long enough 1\n")[0] == 0
    code, output = flowloom(data_dir, *args, stdin="long enough 2\n")
    assert code == 2
    assert output.strip().count("\n") == 0
    assert "already exists" in output


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (("users", "create", "--email", "a@b.org", "--password-stdin"), "short\n", "at least 8"),
        (
            ("users", "create", "--email", "not-an-email", "--password-stdin"),
            "long enough\n",
            "email",
        ),
        (("users", "create", "--email", "a@b.org"), None, "--password-stdin"),
        (("db", "prune", "--older-than", "30x"), None, "30x"),
        (("db", "prune", "--older-than", "-3d"), None, "-3d"),
    ],
)
def test_bad_arguments_get_one_clear_line_and_exit_2(
    data_dir: Path, args: tuple[str, ...], stdin: str | None, expected: str
) -> None:
    code, output = flowloom(data_dir, *args, stdin=stdin)
    assert code == 2, output
    assert output.startswith("flowloom: error:")
    assert expected in output
    assert output.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@127.0.0.1/x", "not supported"),
        ("::not a url::", "database"),
        ("postgresql://postgres@127.0.0.1:1/nowhere", "the database is unavailable"),
    ],
)
def test_a_bad_or_unreachable_database_url_gets_exit_2(
    tmp_path: Path, url: str, expected: str
) -> None:
    result = runner.invoke(app, ["--database-url", url, "db", "upgrade"])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert result.output.strip().count("\n") == 0


def test_stats_lists_every_table(data_dir: Path) -> None:
    code, output = flowloom(data_dir, "db", "stats")
    assert code == 0, output
    for table in ("users", "workflow_runs", "node_executions", "usage", "audit_log"):
        assert table in output


def test_backup_writes_a_copy_that_opens_and_refuses_to_overwrite(
    data_dir: Path, tmp_path: Path
) -> None:
    flowloom(
        data_dir,
        "users",
        "create",
        "--email",
        "b@example.org",
        "--password-stdin",
        stdin="long enough\n",
    )
    target = tmp_path / "copy.db"
    code, output = flowloom(data_dir, "db", "backup", str(target))
    assert code == 0, output
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT email FROM users").fetchall() == [("b@example.org",)]
    code, output = flowloom(data_dir, "db", "backup", str(target))
    assert code == 2
    assert "exists" in output


def test_prune_with_nothing_old_prunes_nothing(data_dir: Path, tmp_path: Path) -> None:
    code, output = flowloom(
        data_dir, "db", "prune", "--older-than", "30d", "--archive", str(tmp_path / "cold")
    )
    assert code == 0, output
    assert "pruned 0 run(s)" in output


def _seed_runs(db_file: Path, *, days_old: list[int]) -> None:
    """A user, a workflow and one finished run per entry, created that many days ago."""
    from datetime import UTC, datetime, timedelta

    from flowloom.ids import new_id

    now = datetime.now(UTC)
    with sqlite3.connect(db_file) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        user, workflow = new_id("usr"), new_id("wf")
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute(
            "INSERT INTO users (id, email, role, credits, is_active, created_at, updated_at)"
            " VALUES (?, 'old@example.org', 'user', 0, 1, ?, ?)",
            (user, stamp, stamp),
        )
        conn.execute(
            "INSERT INTO workflows (id, user_id, name, definition, version, is_valid, active,"
            " created_at, updated_at) VALUES (?, ?, 'w', '{}', 1, 1, 1, ?, ?)",
            (workflow, user, stamp, stamp),
        )
        for days in days_old:
            created = (now - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.%f")
            conn.execute(
                "INSERT INTO workflow_runs (id, workflow_id, workflow_version, user_id, status,"
                " scope, trigger_kind, inputs, cancel_requested, created_at, updated_at)"
                " VALUES (?, ?, 1, ?, 'COMPLETED', 'FULL', 'manual', '{}', 0, ?, ?)",
                (new_id("run"), workflow, user, created, created),
            )


def test_prune_archives_then_deletes_only_old_runs(data_dir: Path, tmp_path: Path) -> None:
    db_file = data_dir / "flowloom.db"
    _seed_runs(db_file, days_old=[90, 45, 31, 5, 0])
    cold = tmp_path / "cold"
    code, output = flowloom(data_dir, "db", "prune", "--older-than", "30d", "--archive", str(cold))
    assert code == 0, output
    assert "pruned 3 run(s)" in output
    (archive,) = cold.glob("runs-*.jsonl")
    assert len(archive.read_text().splitlines()) == 3
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM workflow_runs").fetchone() == (2,)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--before", "2026-13-45"), "2026-13-45"),
        (("--older-than", "30d", "--before", "2026-01-01"), "exactly one"),
        ((), "exactly one"),
    ],
)
def test_prune_refuses_bad_or_conflicting_limits(
    data_dir: Path, args: tuple[str, ...], expected: str
) -> None:
    code, output = flowloom(data_dir, "db", "prune", *args)
    assert code == 2, output
    assert expected in output


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_run_command_runs_a_file_and_prints_json(tmp_path: Path) -> None:
    import json

    code, output = flowloom(
        tmp_path / "data", "run", str(EXAMPLES / "hello_template.json"), "-i", "name=Ada", "--json"
    )
    assert code == 0, output
    result = json.loads(output)
    assert result["status"] == "COMPLETED"
    assert result["outputs"]["lines"]["text"].startswith("Hello, Ada!")


def test_run_command_refuses_a_malformed_input_with_exit_2(tmp_path: Path) -> None:
    code, output = flowloom(
        tmp_path / "data", "run", str(EXAMPLES / "hello_template.json"), "-i", "x"
    )
    assert code == 2
    assert "NAME=VALUE" in output


def test_demo_loads_and_runs_every_example(tmp_path: Path) -> None:
    code, output = flowloom(tmp_path / "data", "demo")
    assert code == 0, output
    names = [path.stem.replace("_", " ").capitalize() for path in EXAMPLES.glob("*.json")]
    assert f"{len(names)} example workflow(s) added" in output
    for name in names:
        assert name in output, f"{name} ran"
    assert "FAILED" not in output
    assert "WAITING" in output, "the approval example waits for a person"
    code, output = flowloom(tmp_path / "data", "demo")
    assert code == 0, output
    assert "0 example workflow(s) added" in output


def test_validate_command_names_the_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"nodes": [{"id": "a", "type": "text.nope"}], "edges": []}')
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "a.type: unknown node type 'text.nope'" in result.output
    result = runner.invoke(app, ["validate", str(EXAMPLES / "fan_out_merge.json")])
    assert result.exit_code == 0, result.output


def test_backup_verify_checks_the_copy(data_dir: Path, tmp_path: Path) -> None:
    code, output = flowloom(data_dir, "db", "backup", "--verify", str(tmp_path / "v.db"))
    assert code == 0, output
    flat = " ".join(output.split())  # the console wraps long lines
    assert "verified: the copy opens and passes its integrity check" in flat
    assert "schema revision" in flat


def test_upgrade_copies_an_older_database_first(tmp_path: Path) -> None:
    import asyncio

    from flowloom.storage.database import Database
    from flowloom.storage.migrate import head_revision, upgrade_database

    data_dir = tmp_path / "older"
    data_dir.mkdir()

    async def make_old() -> None:
        db = Database(f"sqlite:///{data_dir / 'flowloom.db'}")
        await upgrade_database(db, "0004")
        await db.dispose()

    asyncio.run(make_old())
    code, output = flowloom(data_dir, "db", "upgrade")
    assert code == 0, output
    assert "before migrating, the database was copied to" in " ".join(output.split())
    copies = list((data_dir / "backups").glob(f"flowloom-0004-before-{head_revision()}-*.db"))
    assert len(copies) == 1
    with sqlite3.connect(copies[0]) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == ("0004",)
    # Already at the head: nothing to copy.
    code, output = flowloom(data_dir, "db", "upgrade")
    assert "copied" not in output


def test_maintain_runs_the_pass_once(data_dir: Path) -> None:
    code, output = flowloom(data_dir, "db", "maintain")
    assert code == 0, output
    assert "runs deleted 0" in output
    assert "subscriptions expired 0" in output
