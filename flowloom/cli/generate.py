"""``flowloom generate "..."``: a workflow from plain language, saved to the local account.

The model drafts, flowloom validates, the model repairs (``--repairs`` times at most); each
attempt is shown as it ends and kept in the generation history. A valid result is saved as a
workflow of the local account, and with ``--output`` also written as a definition file that
``flowloom run`` takes. Exit 0 when saved, 1 when still invalid, 2 for bad arguments or setup.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from rich.console import Console

from flowloom.engine import Engine
from flowloom.generation.generator import Attempt
from flowloom.generation.service import GenerationRequest, generate_for_owner
from flowloom.local_account import local_owner
from flowloom.nodes.registry import default_registry
from flowloom.settings import Settings
from flowloom.storage.database import Database
from flowloom.storage.migrate import upgrade_database

__all__ = ["generate_command"]


async def generate_command(
    settings: Settings,
    request: GenerationRequest,
    *,
    output: Path | None,
    as_json: bool,
    console: Console,
) -> int:
    db = Database.from_settings(settings)
    try:
        await upgrade_database(db)
        async with db.write() as session:
            owner_id = (await local_owner(session)).id
        registry = default_registry()
        engine = Engine.from_settings(db, settings, registry)
        try:
            if engine.providers is None:
                console.print("flowloom: error: no LLM providers are configured", style="red")
                return 2

            async def shown(attempt: Attempt) -> None:
                if as_json:
                    return
                style = "green" if attempt.outcome == "valid" else "yellow"
                console.print(
                    f"attempt {attempt.number}: {attempt.outcome}"
                    f" ({attempt.tokens_in} in, {attempt.tokens_out} out)",
                    style=style,
                    markup=False,
                )
                for problem in attempt.problems:
                    console.print(f"  {problem}", markup=False, highlight=False)

            outcome = await generate_for_owner(
                db, engine.providers, registry, request, owner_id=owner_id, on_attempt=shown
            )
        finally:
            await engine.close()
    finally:
        await db.dispose()
    generated = outcome.generated
    last = generated.last
    if outcome.workflow_id is not None and output is not None and last.definition is not None:
        text = json.dumps(last.definition, indent=2) + "\n"
        await asyncio.to_thread(output.write_text, text, encoding="utf-8")
    if as_json:
        print(
            json.dumps(
                {
                    "workflow_id": outcome.workflow_id,
                    "name": outcome.workflow_name,
                    "valid": generated.valid,
                    "attempts": [
                        {
                            "id": generation_id,
                            "attempt": attempt.number,
                            "outcome": attempt.outcome,
                            "problems": [str(p) for p in attempt.problems],
                            "tokens_in": attempt.tokens_in,
                            "tokens_out": attempt.tokens_out,
                        }
                        for generation_id, attempt in zip(
                            outcome.generation_ids, generated.attempts, strict=True
                        )
                    ],
                    "definition": last.definition if generated.valid else None,
                }
            )
        )
    elif outcome.workflow_id is not None:
        console.print(
            f"saved workflow {outcome.workflow_name!r} ({outcome.workflow_id})",
            style="bold green",
            markup=False,
        )
        if output is not None:
            console.print(f"written to {output}", markup=False)
    else:
        console.print(
            f"still invalid after {len(generated.attempts)} attempt(s); nothing was saved",
            style="bold red",
        )
    return 0 if outcome.workflow_id is not None else 1
