"""Operating an instance over HTTP, on SQLite and PostgreSQL: the audit trail of every change and
the instance audit log, self-service plans and their expiry, deleting an account with its
data, usage by user and by day, workflow memory, and the Health panel's numbers."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from apikit import Account, create_workflow, example, sign_up
from sqlalchemy import func, select

from flowloom.ids import new_id
from flowloom.storage.database import Database
from flowloom.storage.maintenance import run_maintenance
from flowloom.storage.repos.billing import set_role
from flowloom.storage.repos.memory import MemoryRepo
from flowloom.storage.tables import AuditEntry, Usage, Workflow, WorkflowRun

ClientFactory = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]
PROBLEM = "application/problem+json"


async def make_admin(db: Database, client: httpx.AsyncClient) -> Account:
    account = await sign_up(client, "admin")
    async with db.write() as session:
        await set_role(session, user_id=account.user_id, role="admin")
    return account


async def my_log(client: httpx.AsyncClient, account: Account) -> list[dict[str, object]]:
    answer = await client.get("/api/v1/audit-log?limit=100", headers=account.bearer)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, object]] = answer.json()["items"]
    return items


# ---- the audit trail


async def test_every_change_is_audited_with_its_outcome_and_no_secret(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as client, new_client() as other_client:
        user = await sign_up(client)
        other = await sign_up(other_client, "other")
        workflow = await create_workflow(client, user, example("hello_template"))
        renamed = await client.patch(
            f"/api/v1/workflows/{workflow['id']}", json={"name": "renamed"}, headers=user.bearer
        )
        assert renamed.status_code == 200, renamed.text
        secret_value = f"sk-{secrets.token_hex(12)}"
        stored = await client.post(
            "/api/v1/credentials",
            json={"name": "openai-key", "value": secret_value, "kind": "api_key"},
            headers=user.bearer,
        )
        assert stored.status_code == 201, stored.text
        # Someone else's workflow: refused, and the attempt is on record as such.
        foreign = await other_client.delete(
            f"/api/v1/workflows/{workflow['id']}", headers=other.bearer
        )
        assert foreign.status_code == 404

        mine = await my_log(client, user)
        by_action = {entry["action"]: entry for entry in mine}
        assert "api.create_workflow" in by_action
        update = by_action["api.update_workflow"]
        assert update["object_type"] == "workflow"
        assert update["object_id"] == workflow["id"]
        assert update["details"] == {
            "method": "PATCH",
            "route": "/workflows/{workflow_id}",
            "status": 200,
            "outcome": "done",
            "via": "session",
        }
        assert secret_value not in str(mine)
        refused = [e for e in await my_log(other_client, other) if e["action"].startswith("api.")]  # type: ignore[union-attr]
        assert [
            (e["action"], e["details"]["status"], e["details"]["outcome"]) for e in refused
        ] == [  # type: ignore[index]
            ("api.delete_workflow", 404, "refused")
        ]
        # Reads are not audited; neither are run starts.
        started = await client.post(
            f"/api/v1/workflows/{workflow['id']}/runs", json={}, headers=user.bearer
        )
        assert started.status_code in (200, 201, 202), started.text
        assert not any(e["action"] == "api.start_run" for e in await my_log(client, user))


async def test_admins_read_the_instance_log_filtered_and_paged(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(client)
        for name in ("a", "b", "c"):
            await create_workflow(client, user, example("hello_template"), name=name)
        granted = await admin_client.post(
            f"/api/v1/admin/users/{user.user_id}/credits",
            json={"amount": 5},
            headers=admin.bearer,
        )
        assert granted.status_code == 200

        base = "/api/v1/admin/audit-log"
        theirs = await admin_client.get(
            base,
            params={"user_id": user.user_id, "action": "api.create", "limit": 2},
            headers=admin.bearer,
        )
        assert theirs.status_code == 200, theirs.text
        page = theirs.json()
        assert [e["action"] for e in page["items"]] == ["api.create_workflow"] * 2
        assert {e["user_email"] for e in page["items"]} == {user.email}
        rest = await admin_client.get(
            base,
            params={
                "user_id": user.user_id,
                "action": "api.create",
                "cursor": page["next_cursor"],
            },
            headers=admin.bearer,
        )
        assert len(rest.json()["items"]) == 1
        assert rest.json()["next_cursor"] is None
        about_user = await admin_client.get(
            base,
            params={"object_type": "user", "object_id": user.user_id, "action": "admin."},
            headers=admin.bearer,
        )
        assert [e["action"] for e in about_user.json()["items"]] == ["admin.user.credits"]
        # The admin's own credit grant is audited once, by the route, not by the trail too.
        assert about_user.json()["items"][0]["user_email"] == admin.email

        for params, field in (
            ({"since": "2030-01-01T00:00:00"}, "since"),
            ({"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}, "until"),
            ({"limit": 0}, "limit"),
        ):
            bad = await admin_client.get(base, params=params, headers=admin.bearer)
            assert bad.status_code == 422, bad.text
            assert bad.headers["content-type"] == PROBLEM
            assert field in bad.text
        assert (await client.get(base, headers=user.bearer)).status_code == 403


# ---- plans


async def test_a_user_subscribes_to_a_public_package_cancels_and_it_expires(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(client)
        suffix = secrets.token_hex(3)

        async def package(name: str, **fields: object) -> str:
            made = await admin_client.post(
                "/api/v1/admin/packages",
                json={"name": f"{name}-{suffix}", "max_runs_per_month": 100, **fields},
                headers=admin.bearer,
            )
            assert made.status_code == 201, made.text
            assert made.json()["public"] is fields.get("public", False)
            return str(made.json()["id"])

        public = await package("team", public=True)
        private = await package("enterprise")
        retired = await package("legacy", public=True, active=False)

        offered = await client.get("/api/v1/billing/packages", headers=user.bearer)
        names = {p["name"] for p in offered.json()["items"]}
        assert f"team-{suffix}" in names
        assert f"enterprise-{suffix}" not in names
        assert f"legacy-{suffix}" not in names

        plan = (await client.get("/api/v1/billing/plan", headers=user.bearer)).json()
        assert plan["subscription"] is None
        assert plan["usage"]["runs_used"] == 0

        for package_id, code in ((private, 404), (retired, 409), ("pkg_nope", 404)):
            refused = await client.put(
                "/api/v1/billing/subscription", json={"package_id": package_id}, headers=user.bearer
            )
            assert refused.status_code == code, refused.text
            assert refused.headers["content-type"] == PROBLEM
        subscribed = await client.put(
            "/api/v1/billing/subscription", json={"package_id": public}, headers=user.bearer
        )
        assert subscribed.status_code == 200, subscribed.text
        body = subscribed.json()
        assert body["package"]["id"] == public
        assert body["source"] == "subscription"
        assert body["usage"]["max_runs"] == 100

        cancelled = await client.delete("/api/v1/billing/subscription", headers=user.bearer)
        assert cancelled.status_code == 204
        again = await client.delete("/api/v1/billing/subscription", headers=user.bearer)
        assert again.status_code == 404
        assert (await client.get("/api/v1/billing/plan", headers=user.bearer)).json()[
            "subscription"
        ] is None
        actions = [e["action"] for e in await my_log(client, user)]
        assert "billing.subscribe" in actions
        assert "billing.cancel" in actions

        # An admin's subscription with an end date expires; the daily pass writes it.
        ends = datetime.now(UTC) + timedelta(seconds=2)
        given = await admin_client.put(
            f"/api/v1/admin/users/{user.user_id}/subscription",
            json={"package_id": private, "end_date": ends.isoformat()},
            headers=admin.bearer,
        )
        assert given.status_code == 200, given.text
        await run_maintenance(db, now=ends + timedelta(seconds=1))
        after = (await client.get("/api/v1/billing/plan", headers=user.bearer)).json()
        assert after["subscription"] is None
        assert after["source"] != "subscription"


# ---- deleting an account


async def test_an_admin_deletes_an_account_with_its_data(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(client, "leaving")
        workflow = await create_workflow(client, user, example("hello_template"))
        ran = await client.post(
            f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=user.bearer
        )
        assert ran.status_code in (200, 201), ran.text
        async with db.write() as session:
            session.add(
                Usage(
                    id=new_id("use"),
                    user_id=user.user_id,
                    provider="openai",
                    model="gpt-4o-mini",
                    tokens_in=3,
                    tokens_out=4,
                    tokens_total=7,
                )
            )

        assert (
            await admin_client.delete(f"/api/v1/admin/users/{admin.user_id}", headers=admin.bearer)
        ).status_code == 409
        assert (
            await client.delete(f"/api/v1/admin/users/{admin.user_id}", headers=user.bearer)
        ).status_code == 403
        gone = await admin_client.delete(
            f"/api/v1/admin/users/{user.user_id}", headers=admin.bearer
        )
        assert gone.status_code == 200, gone.text
        body = gone.json()
        assert body["email"] == user.email
        assert body["deleted"]["workflow_runs"] >= 1
        assert body["deleted"]["usage"] == 1
        assert body["deleted"]["users"] == 1

        assert (await client.get("/api/v1/auth/me", headers=user.bearer)).status_code == 401
        async with db.read() as session:
            for table, column in (
                (Workflow, Workflow.user_id),
                (WorkflowRun, WorkflowRun.user_id),
                (Usage, Usage.user_id),
            ):
                left = await session.scalar(
                    select(func.count()).select_from(table).where(column == user.user_id)
                )
                assert left == 0, table
            kept = await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.action == "admin.user.delete", AuditEntry.object_id == user.user_id
                )
            )
        assert kept == 1
        again = await admin_client.delete(
            f"/api/v1/admin/users/{user.user_id}", headers=admin.bearer
        )
        assert again.status_code == 404


# ---- usage across the instance


async def test_usage_by_user_and_by_day(db: Database, new_client: ClientFactory) -> None:
    async with new_client() as admin_client, new_client() as client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(client, "spender")
        day_one = datetime(2031, 3, 1, 10, tzinfo=UTC)
        async with db.write() as session:
            for when, tokens, cost in (
                (day_one, 10, "0.5"),
                (day_one + timedelta(hours=5), 20, "0.25"),
                (day_one + timedelta(days=1), 5, "1"),
            ):
                session.add(
                    Usage(
                        id=new_id("use"),
                        user_id=user.user_id,
                        provider="openai",
                        model="gpt-4o-mini",
                        tokens_in=tokens,
                        tokens_out=0,
                        tokens_total=tokens,
                        cost=Decimal(cost),
                        created_at=when,
                    )
                )
        window = {"from": "2031-03-01", "to": "2031-03-31"}
        by_user = await admin_client.get(
            "/api/v1/admin/usage/by-user", params=window, headers=admin.bearer
        )
        assert by_user.status_code == 200, by_user.text
        mine = [u for u in by_user.json()["items"] if u["user_id"] == user.user_id]
        assert len(mine) == 1
        assert (mine[0]["email"], mine[0]["calls"], mine[0]["tokens_total"]) == (
            user.email,
            3,
            35,
        )
        assert Decimal(mine[0]["cost"]) == Decimal("1.75")
        by_day = await admin_client.get(
            "/api/v1/admin/usage/by-day",
            params={**window, "user_id": user.user_id},
            headers=admin.bearer,
        )
        assert [(d["day"], d["calls"], d["tokens_total"]) for d in by_day.json()["items"]] == [
            ("2031-03-01", 2, 30),
            ("2031-03-02", 1, 5),
        ]
        bad = await admin_client.get(
            "/api/v1/admin/usage/by-day",
            params={"from": "2031-03-05", "to": "2031-03-01"},
            headers=admin.bearer,
        )
        assert bad.status_code == 422


# ---- memory


async def test_a_user_lists_and_clears_their_workflow_memory_and_only_theirs(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as client, new_client() as other_client:
        user = await sign_up(client)
        other = await sign_up(other_client, "other")
        workflow = await create_workflow(client, user, example("hello_template"), name="remembers")
        async with db.write() as session:
            memory = MemoryRepo(session, owner_id=user.user_id, workflow_id=workflow["id"])
            await memory.set(key="greeting", value="hello")
            await memory.set(key="count", value=3)
            await memory.set(key="topic", value={"name": "cats"}, scope="thrd_one")
            await memory.set(key="old", value=1, ttl_s=0.001)

        overview = await client.get("/api/v1/memory", headers=user.bearer)
        assert overview.status_code == 200
        [summary] = overview.json()["items"]
        assert (summary["workflow_name"], summary["entries"], summary["scopes"]) == (
            "remembers",
            3,
            2,
        )
        url = f"/api/v1/workflows/{workflow['id']}/memory"
        entries = (await client.get(url, headers=user.bearer)).json()["items"]
        assert [(e["scope"], e["key"], e["value"]) for e in entries] == [
            ("", "count", 3),
            ("", "greeting", "hello"),
            ("thrd_one", "topic", {"name": "cats"}),
        ]
        thread = (await client.get(url, params={"scope": "thrd_one"}, headers=user.bearer)).json()
        assert [e["key"] for e in thread["items"]] == ["topic"]

        assert (await other_client.get(url, headers=other.bearer)).status_code == 404
        assert (await other_client.delete(url, headers=other.bearer)).status_code == 404
        assert (await other_client.get("/api/v1/memory", headers=other.bearer)).json() == {
            "items": [],
            "next_cursor": None,
        }

        one = await client.delete(f"{url}/greeting", headers=user.bearer)
        assert one.status_code == 204
        assert (await client.delete(f"{url}/greeting", headers=user.bearer)).status_code == 404
        cleared = await client.delete(url, params={"scope": "thrd_one"}, headers=user.bearer)
        assert cleared.json() == {"deleted": 1}
        cleared = await client.delete(url, headers=user.bearer)
        assert cleared.json() == {"deleted": 1}  # "count"; the expired one does not count
        assert (await client.get(url, headers=user.bearer)).json()["items"] == []


# ---- health


async def test_the_health_panel_counts_runs_failures_and_the_database(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(client)
        answer = await admin_client.get("/api/v1/admin/health", headers=admin.bearer)
        assert answer.status_code == 200, answer.text
        health = answer.json()
        assert health["executor"] == "local"
        assert health["workers"] is None
        assert health["database_bytes"] > 0
        assert len(health["errors_per_hour"]) == 24
        assert health["failed_runs_24h"] == sum(h["failed_runs"] for h in health["errors_per_hour"])
        assert set(health["runs"]) == {"queued", "running", "waiting"}
        assert (await client.get("/api/v1/admin/health", headers=user.bearer)).status_code == 403


# ---- the copy taken before serve migrates


async def test_serve_copies_an_older_sqlite_database_before_migrating_it(tmp_path: Path) -> None:
    from apikit import make_settings

    from flowloom.api.app import create_app
    from flowloom.storage.migrate import current_revision, head_revision, upgrade_database

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    await upgrade_database(old, "0004")
    await old.dispose()
    settings = make_settings(tmp_path / "data", database_url=url, maintenance_interval_s=0)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    copies = list((tmp_path / "data" / "backups").glob("flowloom-0004-before-*.db"))
    assert len(copies) == 1
    check = Database(f"sqlite:///{copies[0]}")
    migrated = Database(url)
    try:
        assert await current_revision(check) == "0004"
        assert await current_revision(migrated) == head_revision()
    finally:
        await check.dispose()
        await migrated.dispose()


async def test_durations_and_failure_rates_per_workflow_and_node_type(
    db: Database, new_client: ClientFactory
) -> None:
    async with new_client() as admin_client, new_client() as client:
        admin = await make_admin(db, admin_client)
        user = await sign_up(client)
        workflow = await create_workflow(client, user, example("hello_template"), name="timed")
        for _ in range(3):
            ran = await client.post(
                f"/api/v1/workflows/{workflow['id']}/runs?wait=true", json={}, headers=user.bearer
            )
            assert ran.json()["status"] == "COMPLETED"
        async with db.write() as session:
            # One run made to look failed and slow, as seed 003's monitoring sees it.
            run = await session.scalar(
                select(WorkflowRun).where(WorkflowRun.workflow_id == workflow["id"]).limit(1)
            )
            assert run is not None
            run.status = "FAILED"
            run.duration_ms = 90_000
            others = await session.scalars(
                select(WorkflowRun.duration_ms).where(
                    WorkflowRun.workflow_id == workflow["id"], WorkflowRun.id != run.id
                )
            )
            # The two real runs may take under a millisecond each: the mean is exact either way.
            expected_mean = (90_000 + sum(d or 0 for d in others)) / 3
        report = await admin_client.get(
            "/api/v1/admin/health/durations", params={"hours": 1}, headers=admin.bearer
        )
        assert report.status_code == 200, report.text
        body = report.json()
        [timed] = [w for w in body["workflows"] if w["key"] == workflow["id"]]
        assert (timed["name"], timed["finished"], timed["failed"]) == ("timed", 3, 1)
        assert abs(timed["failure_rate"] - 1 / 3) < 1e-9
        assert timed["p95_ms"] == 90_000
        assert abs(timed["mean_ms"] - expected_mean) < 1e-6
        assert timed["mean_ms"] >= 30_000
        types = {n["key"]: n for n in body["node_types"]}
        assert types["text.template"]["finished"] >= 1  # later runs reuse its cached output
        assert types["text.template"]["p95_ms"] is not None
        bad = await admin_client.get(
            "/api/v1/admin/health/durations", params={"hours": 0}, headers=admin.bearer
        )
        assert bad.status_code == 422
