import { useCallback, useEffect, useState } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { formatCost } from "../components/format";
import { AdminOnly, AdminTabs } from "./AdminTabs";
import "./account.css";
import "./ops.css";

type DayUsage = components["schemas"]["DayUsage"];
type UserUsage = components["schemas"]["UserUsage"];
type ModelUsage = components["schemas"]["ModelUsage"];

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function monthStart(): string {
  const now = new Date();
  return isoDay(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)));
}

export function AdminUsagePage() {
  const me = useAuth((s) => s.user);
  const [from, setFrom] = useState(monthStart());
  const [to, setTo] = useState(isoDay(new Date()));
  const [days, setDays] = useState<DayUsage[]>([]);
  const [users, setUsers] = useState<UserUsage[]>([]);
  const [models, setModels] = useState<ModelUsage[]>([]);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async (first: string, last: string) => {
    setError(null);
    try {
      const query = { from: first, to: last };
      const [byDay, byUser, byModel] = await Promise.all([
        api.get("/api/v1/admin/usage/by-day", { query }),
        api.get("/api/v1/admin/usage/by-user", { query: { ...query, limit: 50 } }),
        api.get("/api/v1/admin/usage", { query }),
      ]);
      setDays(byDay.items);
      setUsers(byUser.items);
      setModels(byModel.items);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    if (me?.role === "admin") void load(from, to);
    // Loads on open; the range applies when Show is pressed.
  }, [load, me?.role]);

  if (me && me.role !== "admin") return <AdminOnly title="Usage" />;

  const most = Math.max(1, ...days.map((d) => Number(d.cost) || d.tokens_total));
  const byCost = days.some((d) => Number(d.cost) > 0);
  const total = days.reduce(
    (sum, d) => ({ calls: sum.calls + d.calls, tokens: sum.tokens + d.tokens_total, cost: sum.cost + Number(d.cost) }),
    { calls: 0, tokens: 0, cost: 0 },
  );

  return (
    <section className="page" aria-labelledby="admin-usage-title">
      <AdminTabs />
      <h1 id="admin-usage-title">Usage across the instance</h1>
      <form
        className="filters"
        onSubmit={(event) => {
          event.preventDefault();
          void load(from, to);
        }}
      >
        <div className="filter">
          <label htmlFor="usage-from">From</label>
          <input id="usage-from" type="date" value={from} onChange={(e) => setFrom(e.target.value)} />
        </div>
        <div className="filter">
          <label htmlFor="usage-to">To</label>
          <input id="usage-to" type="date" value={to} onChange={(e) => setTo(e.target.value)} />
        </div>
        <button type="submit">Show</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <div className="stat-cards">
        <div className="stat-card"><div className="label">Calls</div><div className="value">{total.calls.toLocaleString()}</div></div>
        <div className="stat-card"><div className="label">Tokens</div><div className="value">{total.tokens.toLocaleString()}</div></div>
        <div className="stat-card"><div className="label">Cost</div><div className="value">{formatCost(total.cost)}</div></div>
        <div className="stat-card"><div className="label">Users with usage</div><div className="value">{users.length}</div></div>
      </div>
      <div className="two-col">
        <section className="account-section" aria-labelledby="by-day-title">
          <h2 id="by-day-title">By day</h2>
          <table className="list" aria-label="Usage by day">
            <thead><tr><th>Day (UTC)</th><th>Calls</th><th>Tokens</th><th>Cost</th></tr></thead>
            <tbody>
              {days.map((d) => (
                <tr key={d.day}>
                  <td>{d.day}</td>
                  <td>{d.calls.toLocaleString()}</td>
                  <td>
                    <span className="day-bar" style={{ width: `${Math.round(((byCost ? Number(d.cost) : d.tokens_total) / most) * 80)}px` }} aria-hidden="true" />
                    {d.tokens_total.toLocaleString()}
                  </td>
                  <td>{formatCost(d.cost)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {days.length === 0 && <p className="muted">No calls in this range.</p>}
        </section>
        <section className="account-section" aria-labelledby="by-user-title">
          <h2 id="by-user-title">By user</h2>
          <table className="list" aria-label="Usage by user">
            <thead><tr><th>User</th><th>Calls</th><th>Tokens</th><th>Cost</th></tr></thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.user_id}>
                  <td className="email">{u.email ?? <span className="muted">deleted account</span>}</td>
                  <td>{u.calls.toLocaleString()}</td>
                  <td>{u.tokens_total.toLocaleString()}</td>
                  <td>{formatCost(u.cost)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {users.length === 0 && <p className="muted">Nobody used a model in this range.</p>}
        </section>
      </div>
      <section className="account-section" aria-labelledby="by-model-title">
        <h2 id="by-model-title">By model</h2>
        <table className="list" aria-label="Usage by model">
          <thead><tr><th>Provider</th><th>Model</th><th>Calls</th><th>Tokens in</th><th>Tokens out</th><th>Cost</th></tr></thead>
          <tbody>
            {models.map((m) => (
              <tr key={`${m.provider}/${m.model}`}>
                <td>{m.provider}</td>
                <td>{m.model}</td>
                <td>{m.calls.toLocaleString()}</td>
                <td>{m.tokens_in.toLocaleString()}</td>
                <td>{m.tokens_out.toLocaleString()}</td>
                <td>{formatCost(m.cost)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {models.length === 0 && <p className="muted">No model was called in this range.</p>}
      </section>
    </section>
  );
}
