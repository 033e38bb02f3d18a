/** The workflow's runs, newest first, a page at a time; opening one shows it on the canvas. */
import { useCallback, useEffect, useState } from "react";

import { api, errorMessage } from "../api/client";
import type { RunPublic } from "../api/types";
import { onRunsChanged, openRun } from "./runs";
import { useEditor } from "./store";

const PAGE = 10;

export function RunHistory({ workflowId }: { workflowId: string }) {
  const [runs, setRuns] = useState<RunPublic[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const shownId = useEditor((s) => s.run?.id);
  const shownStatus = useEditor((s) => s.run?.status);

  const load = useCallback(
    async (after: string | null) => {
      try {
        const page = await api.get("/api/v1/workflows/{workflow_id}/runs", {
          path: { workflow_id: workflowId },
          query: { cursor: after ?? undefined, limit: PAGE },
        });
        setRuns((old) => (after ? [...old, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
        setError(null);
      } catch (caught) {
        setError(errorMessage(caught));
      }
    },
    [workflowId],
  );

  useEffect(() => {
    void load(null);
    return onRunsChanged(() => void load(null));
  }, [load]);

  // The open run's status in the list follows the live one.
  const shown = (run: RunPublic) => (run.id === shownId && shownStatus ? shownStatus : run.status);
  return (
    <div className="run-history">
      <div className="panel-title">
        <h2>Runs</h2>
        <button type="button" onClick={() => void load(null)}>Refresh</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {runs.length === 0 && !error && <p className="muted">No runs yet.</p>}
      <ol className="runs" aria-label="Run history, newest first">
        {runs.map((run) => (
          <li key={run.id}>
            <button
              type="button"
              className={run.id === shownId ? "run-item current" : "run-item"}
              aria-current={run.id === shownId ? "true" : undefined}
              data-run-id={run.id}
              onClick={() => void openRun(run.id)}
            >
              <span className={`status status-${shown(run).toLowerCase()}`}>{shown(run).toLowerCase()}</span>
              <span className="run-when">{new Date(run.created_at).toLocaleString()}</span>
              <span className="muted">
                v{run.workflow_version} · {run.scope.toLowerCase()}
                {run.target_node_id ? ` ${run.target_node_id}` : ""}
                {run.duration_ms != null ? ` · ${run.duration_ms} ms` : ""}
              </span>
            </button>
          </li>
        ))}
      </ol>
      {cursor && <button type="button" onClick={() => void load(cursor)}>Older runs</button>}
    </div>
  );
}
