/** Saved versions of the workflow, newest first; restoring one saves it again as the newest. */
import { useState } from "react";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { VersionSummary, WorkflowPublic } from "../api/types";

export function Versions({
  workflowId,
  current,
  onRestored,
}: {
  workflowId: string;
  current: number;
  onRestored: (workflow: WorkflowPublic) => void;
}) {
  // A new version saved (current) lists them again.
  const list = usePaged<VersionSummary>(
    (cursor) => api.get("/api/v1/workflows/{workflow_id}/versions", { path: { workflow_id: workflowId }, query: { cursor, limit: 20 } }),
    `${workflowId}/${current}`,
  );
  const versions = list.items;
  const [actionError, setError] = useState<string | null>(null);
  const error = actionError ?? list.error;

  async function restore(version: number) {
    if (!window.confirm(`Restore version ${version}? It becomes a new version; unsaved changes are lost.`)) return;
    try {
      const workflow = await api.post("/api/v1/workflows/{workflow_id}/versions/{version}/restore", {
        path: { workflow_id: workflowId, version },
        query: { expected_version: current },
      });
      onRestored(workflow);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <div className="versions">
      <h2>Versions</h2>
      {error && <p className="error" role="alert">{error}</p>}
      <ol aria-label="Saved versions, newest first">
        {versions.map((v) => (
          <li key={v.version}>
            <span>
              <strong>v{v.version}</strong> {new Date(v.created_at).toLocaleString()}
              {v.note && <span className="muted"> — {v.note}</span>}
            </span>
            {v.version === current ? (
              <span className="muted">current</span>
            ) : (
              <button type="button" onClick={() => void restore(v.version)} aria-label={`Restore version ${v.version}`}>Restore</button>
            )}
          </li>
        ))}
      </ol>
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Older versions</button>}
    </div>
  );
}
