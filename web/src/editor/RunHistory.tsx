/**
 * The workflow's runs, newest first, a page at a time, optionally of one status: each with the
 * inputs it was given, opened on the canvas by a click, with a link to its own page.
 */
import { useEffect, useState } from "react";
import { Link } from "react-router-dom";

import { api } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { components } from "../api/schema.gen";
import type { RunPublic } from "../api/types";
import { onRunsChanged, openRun } from "./runs";
import { useEditor } from "./store";

const PAGE = 10;

type RunStatus = components["schemas"]["RunStatus"];
const STATUSES: [RunStatus, string][] = [
  ["RUNNING", "Running"],
  ["WAITING", "Waiting"],
  ["COMPLETED", "Completed"],
  ["FAILED", "Failed"],
  ["CANCELLED", "Cancelled"],
  ["PENDING", "Pending"],
];

/** A value of an input, short: text in quotes, anything else as JSON. */
function short(value: unknown, chars: number): string {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}

/** A run's inputs in one line of at most about `chars` characters: `topic: "rivers", count: 3`. */
export function inputsSummary(inputs: Record<string, unknown> | null | undefined, chars = 90): string {
  const entries = Object.entries(inputs ?? {});
  if (entries.length === 0) return "no inputs";
  const parts: string[] = [];
  let used = 0;
  for (const [index, [name, value]] of entries.entries()) {
    const room = Math.max(12, chars - used - name.length - 2);
    const part = `${name}: ${short(value, room)}`;
    if (parts.length > 0 && used + part.length > chars) {
      parts.push(`+${entries.length - index} more`);
      break;
    }
    parts.push(part);
    used += part.length + 2;
  }
  return parts.join(", ");
}

interface RunHistoryProps {
  workflowId: string;
  /** Start a new run with the scope and inputs of `run` (absent while a run is going). */
  onRerun?: (run: RunPublic) => void;
}

export function RunHistory({ workflowId, onRerun }: RunHistoryProps) {
  const [status, setStatus] = useState<RunStatus | "">("");
  const shownId = useEditor((s) => s.run?.id);
  const shownStatus = useEditor((s) => s.run?.status);

  const list = usePaged<RunPublic>(
    (cursor) =>
      api.get("/api/v1/workflows/{workflow_id}/runs", {
        path: { workflow_id: workflowId },
        query: { cursor, limit: PAGE, status: status || undefined },
      }),
    `${workflowId}/${status}`,
  );
  const { items: runs, error, loaded, reload } = list;
  useEffect(() => onRunsChanged(reload), [reload]);

  // The open run's status in the list follows the live one.
  const shown = (run: RunPublic) => (run.id === shownId && shownStatus ? shownStatus : run.status);
  const statusName = STATUSES.find(([value]) => value === status)?.[1].toLowerCase();
  return (
    <div className="run-history">
      <div className="panel-title">
        <h2>Runs</h2>
        <button type="button" onClick={reload}>Refresh</button>
      </div>
      <div className="field run-filter">
        <label htmlFor="run-status-filter">Status</label>
        <select id="run-status-filter" value={status} onChange={(e) => setStatus(e.target.value as RunStatus | "")}>
          <option value="">All runs</option>
          {STATUSES.map(([value, label]) => (
            <option key={value} value={value}>{label}</option>
          ))}
        </select>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {loaded && runs.length === 0 && !error && (
        <p className="muted">{status ? `No ${statusName} runs.` : "No runs yet."}</p>
      )}
      <ol className="runs" aria-label="Run history, newest first">
        {runs.map((run) => {
          const inputs = inputsSummary(run.inputs);
          return (
            <li key={run.id} className={run.id === shownId ? "run-entry current" : "run-entry"}>
              <button
                type="button"
                className="run-item"
                aria-current={run.id === shownId ? "true" : undefined}
                data-run-id={run.id}
                title="Show this run on the canvas"
                onClick={() => void openRun(run.id)}
              >
                <span className="run-line">
                  <span className={`status status-${shown(run).toLowerCase()}`}>{shown(run).toLowerCase()}</span>
                  <span className="run-when">{new Date(run.created_at).toLocaleString()}</span>
                </span>
                <span className="muted">
                  v{run.workflow_version} · {run.scope.toLowerCase()}
                  {run.target_node_id ? ` ${run.target_node_id}` : ""} · {run.trigger_kind}
                  {run.duration_ms != null ? ` · ${run.duration_ms} ms` : ""}
                  {run.used_pinned ? " · with pinned data" : ""}
                </span>
                <span className={inputs === "no inputs" ? "run-inputs muted" : "run-inputs"} data-testid="run-inputs" title={JSON.stringify(run.inputs, null, 2)}>
                  {inputs}
                </span>
              </button>
              <div className="run-actions">
                {onRerun && (
                  <button type="button" className="small-button" onClick={() => onRerun(run)} title="A new run of the saved workflow, with these inputs">
                    Run again
                  </button>
                )}
                <Link className="run-page-link" to={`/runs/${encodeURIComponent(run.id)}`} aria-label={`Page of the run of ${new Date(run.created_at).toLocaleString()}`}>
                  Run page →
                </Link>
              </div>
            </li>
          );
        })}
      </ol>
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Older runs</button>}
    </div>
  );
}
