"""``flowloom demo``: set up the local database, load the examples, show what is stored.

This is what ``make run`` does until the server lands: it proves the storage end to end on the
SQLite file in the data dir (migrations, the local account, workflows and their versions,
validation logs, the table statistics), and is safe to run again and again.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from flowloom.cli.common import open_database
from flowloom.example_workflows import install_examples
from flowloom.exceptions import NotFound
from flowloom.settings import Settings
from flowloom.storage.enums import UserRole
from flowloom.storage.maintenance import table_stats
from flowloom.storage.migrate import current_revision, upgrade_database
from flowloom.storage.repos.users import UserRepo
from flowloom.storage.repos.workflows import WorkflowRepo
from flowloom.storage.tables import User

__all__ = ["LOCAL_OWNER_EMAIL", "run_demo"]

LOCAL_OWNER_EMAIL = "owner@flowloom.localhost"
"""The local account the examples are loaded into; it has no password until one is set."""


async def run_demo(settings: Settings, *, console: Console) -> None:
    settings.load_secret_key()
    async with open_database(settings) as db:
        await upgrade_database(db)
        console.print(f"database {settings.resolved_database_url}")
        console.print(f"schema revision {await current_revision(db)}")
        async with db.write() as session:
            owner = await _local_owner(UserRepo(session))
            added = await install_examples(session, owner_id=owner.id)
        console.print(f"local account {owner.email}; {len(added)} example workflow(s) added")
        async with db.read() as session:
            page = await WorkflowRepo(session, owner_id=owner.id).list(limit=100)
        workflows = Table("workflow", "id", "version", "valid", "nodes", "edges")
        for workflow in page.items:
            workflows.add_row(
                workflow.name,
                workflow.id,
                str(workflow.version),
                "yes" if workflow.is_valid else "no",
                str(len(workflow.definition.get("nodes", []))),
                str(len(workflow.definition.get("edges", []))),
            )
        console.print(workflows)
        stats = Table("table", "rows")
        for stat in await table_stats(db):
            if stat.rows:
                stats.add_row(stat.name, f"{stat.rows:,}")
        console.print(stats)


async def _local_owner(users: UserRepo) -> User:
    try:
        return await users.get_by_email(email=LOCAL_OWNER_EMAIL)
    except NotFound:
        return await users.create(email=LOCAL_OWNER_EMAIL, role=UserRole.ADMIN)
