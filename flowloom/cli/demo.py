"""``flowloom demo``: set up the local database, load the examples, run them, show the history.

This is what ``make run`` does until the server lands. It proves the whole stack on the SQLite
file in the data dir: migrations, the local account, workflows and their versions, validation
logs, the engine running each valid example with every node checkpointed, the run history read
back newest first, and the table statistics. It is safe to run again and again: examples are
loaded once, and every call adds one run of each.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from flowloom.cli.common import open_database
from flowloom.engine import Engine
from flowloom.example_workflows import install_examples
from flowloom.local_account import local_owner
from flowloom.nodes.registry import default_registry
from flowloom.settings import Settings
from flowloom.storage.enums import TriggerKind
from flowloom.storage.maintenance import table_stats
from flowloom.storage.migrate import current_revision, upgrade_database
from flowloom.storage.repos.runs import RunRepo
from flowloom.storage.repos.workflows import WorkflowRepo

__all__ = ["run_demo"]


async def run_demo(settings: Settings, *, console: Console) -> None:
    settings.load_secret_key()
    async with open_database(settings) as db:
        await upgrade_database(db)
        console.print(f"database {settings.resolved_database_url}")
        console.print(f"schema revision {await current_revision(db)}")
        async with db.write() as session:
            owner = await local_owner(session)
            added = await install_examples(session, owner_id=owner.id)
        console.print(f"local account {owner.email}; {len(added)} example workflow(s) added")
        async with db.read() as session:
            workflows = (await WorkflowRepo(session, owner_id=owner.id).list(limit=100)).items

        engine = Engine.from_settings(db, settings, default_registry())
        try:
            for workflow in workflows:
                if workflow.is_valid:
                    await engine.run_to_end(
                        owner_id=owner.id, workflow_id=workflow.id, trigger_kind=TriggerKind.CLI
                    )
        finally:
            await engine.close()

        names = {workflow.id: workflow.name for workflow in workflows}
        async with db.read() as session:
            runs = RunRepo(session, owner_id=owner.id)
            page = await runs.history(limit=20)
            history = Table("run", "workflow", "status", "ms", "nodes", title="newest runs")
            for run in page.items:
                _, nodes = await runs.get_with_nodes(run_id=run.id)
                states = sorted({node.status for node in nodes})
                history.add_row(
                    run.id,
                    names.get(run.workflow_id, run.workflow_id),
                    run.status,
                    "-" if run.duration_ms is None else str(run.duration_ms),
                    f"{len(nodes)} ({', '.join(states)})",
                )
        console.print(history)
        stats = Table("table", "rows")
        for stat in await table_stats(db):
            if stat.rows:
                stats.add_row(stat.name, f"{stat.rows:,}")
        console.print(stats)
