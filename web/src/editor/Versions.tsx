/** Saved versions of the workflow, newest first; restoring one saves it again as the newest. */
import { useCallback, useEffect, useState } from "react";

import { api, errorMessage } from "../api/client";
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
  const [versions, setVersions] = useState<VersionSummary[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(
    async (after: string | null) => {
      try {
        const page = await api.get("/api/v1/workflows/{workflow_id}/versions", {
          path: { workflow_id: workflowId },
          query: { cursor: after ?? undefined, limit: 20 },
        });
        setVersions((old) => (after ? [...old, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
      } catch (caught) {
        setError(errorMessage(caught));
      }
    },
    [workflowId],
  );

  useEffect(() => {
    void load(null);
  }, [load, current]);

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
      {cursor && <button type="button" onClick={() => void load(cursor)}>Older versions</button>}
    </div>
  );
}
