import { useCallback, useEffect, useState } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { AdminOnly, AdminTabs, formatBytes } from "./AdminTabs";
import "./account.css";
import "./ops.css";

type Health = components["schemas"]["InstanceHealth"];
type DurationReport = components["schemas"]["DurationReport"];
type Durations = components["schemas"]["Durations"];

function ms(value: number | null | undefined): string {
  if (value === null || value === undefined) return "—";
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${(value / 1000).toFixed(1)} s`;
  return `${(value / 60_000).toFixed(1)} min`;
}

function DurationTable({ label, rows, first }: { label: string; rows: Durations[]; first: string }) {
  return (
    <table className="list" aria-label={label}>
      <thead>
        <tr><th>{first}</th><th>Finished</th><th>Failed</th><th>Failure rate</th><th>Mean</th><th>p95</th></tr>
      </thead>
      <tbody>
        {rows.slice(0, 15).map((row) => (
          <tr key={row.key}>
            <td>{row.name}</td>
            <td>{row.finished}</td>
            <td>{row.failed}</td>
            <td className={row.failure_rate > 0.1 ? "outcome-failed" : ""}>{(row.failure_rate * 100).toFixed(1)}%</td>
            <td>{ms(row.mean_ms)}</td>
            <td>{ms(row.p95_ms)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const REFRESH_MS = 10_000;

function every(seconds: number): string {
  if (seconds <= 0) return "never (run flowloom db maintain)";
  if (seconds % 86400 === 0) return seconds === 86400 ? "daily" : `every ${seconds / 86400} days`;
  if (seconds % 3600 === 0) return `every ${seconds / 3600} h`;
  return `every ${Math.round(seconds / 60)} min`;
}

export function AdminHealthPage() {
  const me = useAuth((s) => s.user);
  const [health, setHealth] = useState<Health | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [checked, setChecked] = useState<Date | null>(null);
  const [durations, setDurations] = useState<DurationReport | null>(null);

  const load = useCallback(async () => {
    try {
      const [now, times] = await Promise.all([
        api.get("/api/v1/admin/health"),
        api.get("/api/v1/admin/health/durations", { query: { hours: 24 } }),
      ]);
      setHealth(now);
      setDurations(times);
      setChecked(new Date());
      setError(null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    if (me?.role !== "admin") return;
    void load();
    const timer = window.setInterval(() => void load(), REFRESH_MS);
    return () => window.clearInterval(timer);
  }, [load, me?.role]);

  if (me && me.role !== "admin") return <AdminOnly title="Health" />;

  const most = Math.max(1, ...(health?.errors_per_hour.map((h) => h.failed_runs) ?? [1]));
  const last = health?.last_maintenance;
  return (
    <section className="page" aria-labelledby="health-title">
      <AdminTabs />
      <div className="page-head">
        <h1 id="health-title">Health</h1>
        <span className="muted">{checked ? `updated ${checked.toLocaleTimeString()} · refreshes every 10 s` : "loading…"}</span>
        <button type="button" onClick={() => void load()}>Refresh</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {health && (
        <>
          <div className="stat-cards" aria-label="Instance numbers">
            <div className="stat-card" data-testid="stat-queued">
              <div className="label">Queued runs</div>
              <div className="value">{health.runs.queued}</div>
              <div className="sub">{health.executor === "celery" ? "waiting for a worker" : "waiting for a slot"}</div>
            </div>
            <div className="stat-card" data-testid="stat-running">
              <div className="label">Running now</div>
              <div className="value">{health.runs.running}</div>
            </div>
            <div className="stat-card">
              <div className="label">Waiting for an answer</div>
              <div className="value">{health.runs.waiting}</div>
              <div className="sub">approvals, delays, events</div>
            </div>
            <div className={`stat-card ${health.failed_runs_24h ? "warn" : ""}`} data-testid="stat-failed">
              <div className="label">Failed runs, last 24 h</div>
              <div className="value">{health.failed_runs_24h}</div>
            </div>
            <div className="stat-card">
              <div className="label">Database</div>
              <div className="value">{formatBytes(health.database_bytes)}</div>
              <div className="sub">{health.database_kind === "sqlite" ? "SQLite" : "PostgreSQL"}</div>
            </div>
            <div className="stat-card">
              <div className="label">Workers</div>
              <div className="value">{health.workers === null ? "in process" : health.workers.length}</div>
              <div className="sub">{health.executor === "celery" ? "holding node leases now" : "runs execute inside the server"}</div>
            </div>
          </div>
          <section className="account-section" aria-labelledby="errors-title">
            <h2 id="errors-title">Failed runs per hour</h2>
            <div className="hour-bars" role="img" aria-label={`Failed runs per hour over the last 24 hours: ${health.failed_runs_24h} in all`}>
              {health.errors_per_hour.map((hour) => (
                <div
                  key={hour.hour}
                  className={`bar ${hour.failed_runs ? "" : "zero"}`}
                  style={{ height: `${Math.max(2, (hour.failed_runs / most) * 80)}px` }}
                  title={`${new Date(hour.hour).toLocaleString()}: ${hour.failed_runs} failed`}
                />
              ))}
            </div>
            <div className="hour-axis">
              <span>{new Date(health.errors_per_hour[0].hour).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</span>
              <span>now</span>
            </div>
          </section>
          {durations && (
            <section className="account-section" aria-labelledby="durations-title">
              <h2 id="durations-title">Durations and failures, last 24 h</h2>
              <p className="muted">Most failures first, then the slowest. {durations.truncated ? "Only the newest runs of this busy day are counted." : ""}</p>
              {durations.workflows.length === 0 ? (
                <p className="muted">No run finished in the last 24 hours.</p>
              ) : (
                <div className="two-col">
                  <DurationTable label="Durations per workflow" rows={durations.workflows} first="Workflow" />
                  <DurationTable label="Durations per node type" rows={durations.node_types} first="Node type" />
                </div>
              )}
            </section>
          )}
          {health.workers && health.workers.length > 0 && (
            <section className="account-section" aria-labelledby="workers-title">
              <h2 id="workers-title">Workers</h2>
              <table className="list" aria-label="Workers">
                <thead><tr><th>Worker</th><th>Nodes running</th></tr></thead>
                <tbody>
                  {health.workers.map((w) => <tr key={w.name}><td>{w.name}</td><td>{w.running_nodes}</td></tr>)}
                </tbody>
              </table>
            </section>
          )}
          <section className="account-section" aria-labelledby="maintenance-title">
            <h2 id="maintenance-title">Maintenance</h2>
            <p className="muted">The server runs its maintenance pass {every(health.maintenance_interval_s)}: retention (Settings), expired sessions, memory and subscriptions.</p>
            {last ? (
              <p>
                Last pass {new Date(last.started_at).toLocaleString()}: {last.runs_deleted} run(s) deleted, {last.node_outputs_cleared} node output(s) cleared,{" "}
                {Object.entries(last.rows_deleted).map(([table, n]) => `${n} ${table}`).join(", ") || "no other rows"} deleted, {last.sessions_purged} session(s) and {last.memory_purged} memory entr(ies) purged,{" "}
                {last.subscriptions_expired} subscription(s) expired.
                {last.error && <span className="error"> It stopped early: {last.error}</span>}
              </p>
            ) : (
              <p className="muted">No pass since this server started.</p>
            )}
          </section>
        </>
      )}
    </section>
  );
}
