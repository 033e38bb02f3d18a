/** Every run of every workflow, newest first, filtered by workflow, status, trigger and dates. */
import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { components } from "../api/schema.gen";
import type { RunPublic } from "../api/types";
import "./ops.css";

type RunStatus = components["schemas"]["RunStatus"];
type TriggerKind = components["schemas"]["TriggerKind"];

export const RUN_STATUSES: RunStatus[] = ["PENDING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"];

/** What a person calls each way a run starts. */
export const TRIGGER_NAMES: Record<TriggerKind, string> = {
  manual: "By hand",
  api: "API key",
  webhook: "Webhook",
  schedule: "Schedule",
  subworkflow: "Another workflow",
  cli: "Command line",
  debug: "Debugger",
};

const PAGE = 25;

/** The names of the caller's workflows by id (every page of them, for labels and the filter);
 * null until they have arrived. */
export function useWorkflowNames(): Map<string, string> | null {
  const [names, setNames] = useState<Map<string, string> | null>(null);
  useEffect(() => {
    let live = true;
    (async () => {
      const found = new Map<string, string>();
      let cursor: string | undefined;
      for (let page = 0; page < 20; page += 1) {
        const answer = await api.get("/api/v1/workflows", { query: { limit: 100, cursor } });
        for (const item of answer.items) found.set(item.id, item.name);
        if (!answer.next_cursor) break;
        cursor = answer.next_cursor;
      }
      if (live) setNames(found);
    })().catch(() => live && setNames(new Map()));
    return () => {
      live = false;
    };
  }, []);
  return names;
}

export function formatDuration(ms: number | null | undefined): string {
  if (ms == null) return "—";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A yyyy-mm-dd date input's value as the start of that day in the browser's time zone. */
function startOfDay(value: string, plusDays = 0): string | undefined {
  if (!value) return undefined;
  const [year, month, day] = value.split("-").map(Number);
  if (!year || !month || !day) return undefined;
  return new Date(year, month - 1, day + plusDays).toISOString();
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`status status-${status.toLowerCase()}`}>{status.toLowerCase()}</span>;
}

export function RunsPage() {
  const [params, setParams] = useSearchParams();
  const workflowId = params.get("workflow") ?? "";
  const status = params.get("status") ?? "";
  const trigger = params.get("trigger") ?? "";
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const names = useWorkflowNames();
  const query = useMemo(
    () => ({
      workflow_id: workflowId || undefined,
      status: (status || undefined) as RunStatus | undefined,
      trigger: (trigger || undefined) as TriggerKind | undefined,
      since: startOfDay(from),
      // The "to" day is included: the range ends at the start of the day after.
      until: startOfDay(to, 1),
      limit: PAGE,
    }),
    [workflowId, status, trigger, from, to],
  );

  const list = usePaged<RunPublic>((cursor) => api.get("/api/v1/runs", { query: { ...query, cursor } }), JSON.stringify(query));
  const { items: runs, loading, error } = list;

  function setFilter(name: string, value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  }

  const filtered = Boolean(workflowId || status || trigger || from || to);
  const workflowOptions = [...(names ?? new Map<string, string>()).entries()].sort((a, b) => a[1].localeCompare(b[1]));

  return (
    <section className="page" aria-labelledby="runs-title">
      <div className="page-head">
        <h1 id="runs-title">Runs</h1>
        <button type="button" onClick={list.reload}>Refresh</button>
      </div>
      <form className="filters" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <div className="filter">
          <label htmlFor="runs-workflow">Workflow</label>
          <select id="runs-workflow" value={workflowId} onChange={(e) => setFilter("workflow", e.target.value)}>
            <option value="">All workflows</option>
            {workflowOptions.map(([id, name]) => (
              <option key={id} value={id}>{name}</option>
            ))}
          </select>
        </div>
        <div className="filter">
          <label htmlFor="runs-status">Status</label>
          <select id="runs-status" value={status} onChange={(e) => setFilter("status", e.target.value)}>
            <option value="">Any status</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>{s.charAt(0) + s.slice(1).toLowerCase()}</option>
            ))}
          </select>
        </div>
        <div className="filter">
          <label htmlFor="runs-trigger">Started by</label>
          <select id="runs-trigger" value={trigger} onChange={(e) => setFilter("trigger", e.target.value)}>
            <option value="">Anything</option>
            {(Object.keys(TRIGGER_NAMES) as TriggerKind[]).map((kind) => (
              <option key={kind} value={kind}>{TRIGGER_NAMES[kind]}</option>
            ))}
          </select>
        </div>
        <div className="filter">
          <label htmlFor="runs-from">From</label>
          <input id="runs-from" type="date" value={from} max={to || undefined} onChange={(e) => setFilter("from", e.target.value)} />
        </div>
        <div className="filter">
          <label htmlFor="runs-to">To</label>
          <input id="runs-to" type="date" value={to} min={from || undefined} onChange={(e) => setFilter("to", e.target.value)} />
        </div>
        {filtered && (
          <button type="button" onClick={() => setParams(new URLSearchParams(), { replace: true })}>
            Clear filters
          </button>
        )}
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      <table className="list" aria-label="Runs, newest first">
        <thead>
          <tr>
            <th>Workflow</th>
            <th>Status</th>
            <th>Started by</th>
            <th>Created</th>
            <th>Duration</th>
            <th><span className="sr-only">Open</span></th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id} data-run-id={run.id}>
              <td>
                <Link to={`/workflows/${run.workflow_id}`}>{names ? (names.get(run.workflow_id) ?? "(deleted workflow)") : "…"}</Link>
                <div className="muted">v{run.workflow_version}{run.scope !== "FULL" ? ` · ${run.scope.toLowerCase()} ${run.target_node_id ?? ""}` : ""}</div>
              </td>
              <td><StatusBadge status={run.status} /></td>
              <td>{TRIGGER_NAMES[run.trigger_kind as TriggerKind] ?? run.trigger_kind}</td>
              <td>{new Date(run.created_at).toLocaleString()}</td>
              <td>{formatDuration(run.duration_ms)}</td>
              <td className="actions">
                <Link to={`/runs/${run.id}`} aria-label={`Open run ${run.id}`}>Details</Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && runs.length === 0 && !error && (
        <p className="muted">{filtered ? "No run matches these filters." : "No runs yet: run a workflow from its canvas."}</p>
      )}
      {loading && <p role="status">Loading…</p>}
      {list.hasMore && !loading && <button type="button" onClick={list.loadMore}>Older runs</button>}
    </section>
  );
}
