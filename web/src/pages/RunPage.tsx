/** One run, read-only: what started it, how it went node by node, and a way onto the canvas. */
import { useCallback, useEffect, useState } from "react";
import { Link, useParams } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import { FINISHED_RUN_STATUSES as FINISHED } from "../api/events";
import type { components } from "../api/schema.gen";
import type { RunDetail } from "../api/types";
import { formatDuration, StatusBadge, TRIGGER_NAMES } from "./Runs";
import "./ops.css";

type TriggerKind = components["schemas"]["TriggerKind"];

const POLL_MS = 2000;

/** A value as a short, readable text: strings as they are, the rest as indented JSON. */
function Value({ value }: { value: unknown }) {
  if (value == null) return <span className="muted">—</span>;
  if (typeof value === "string") return <span className="output-value">{value.length > 400 ? `${value.slice(0, 400)}…` : value}</span>;
  const text = JSON.stringify(value, null, 2);
  return <pre className="json">{text.length > 2000 ? `${text.slice(0, 2000)}…` : text}</pre>;
}

/** The label of each node of a definition that has one, by node id. */
function nodeLabels(definition: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  const nodes = (definition as { nodes?: unknown[] } | null)?.nodes;
  for (const node of Array.isArray(nodes) ? nodes : []) {
    const n = node as { id?: unknown; data?: { label?: unknown } };
    if (typeof n.id === "string" && typeof n.data?.label === "string" && n.data.label) labels[n.id] = n.data.label;
  }
  return labels;
}

function errorText(error: Record<string, unknown> | null | undefined): string | null {
  if (!error) return null;
  const message = error.message ?? error.detail ?? error.error;
  return typeof message === "string" ? message : JSON.stringify(error);
}

export function RunPage() {
  const { runId = "" } = useParams();
  const [run, setRun] = useState<RunDetail | null>(null);
  const [workflowName, setWorkflowName] = useState<string | null>(null);
  const [labels, setLabels] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const detail = await api.get("/api/v1/runs/{run_id}", { path: { run_id: runId } });
      setRun(detail);
      setError(null);
      return detail;
    } catch (caught) {
      setError(errorMessage(caught));
      return null;
    }
  }, [runId]);

  useEffect(() => {
    let live = true;
    let timer: number | undefined;
    const tick = async () => {
      const detail = await load();
      if (live && detail && !FINISHED.has(detail.status)) timer = window.setTimeout(() => void tick(), POLL_MS);
    };
    void tick();
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [load]);

  const workflowId = run?.workflow_id;
  useEffect(() => {
    if (!workflowId) return;
    api
      .get("/api/v1/workflows/{workflow_id}", { path: { workflow_id: workflowId } })
      .then((workflow) => {
        setWorkflowName(workflow.name);
        setLabels(nodeLabels(workflow.definition));
      })
      .catch(() => setWorkflowName(null));
  }, [workflowId]);

  async function cancel() {
    try {
      setRun(await api.post("/api/v1/runs/{run_id}/cancel", { path: { run_id: runId } }));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  if (!run) {
    return (
      <section className="page">
        <p><Link to="/runs">← All runs</Link></p>
        {error ? <p className="error" role="alert">{error}</p> : <p role="status">Loading…</p>}
      </section>
    );
  }

  const runError = errorText(run.error);
  return (
    <section className="page" aria-labelledby="run-title">
      <p><Link to="/runs">← All runs</Link></p>
      <div className="page-head">
        <h1 id="run-title">
          Run of {workflowName ?? "a deleted workflow"} <StatusBadge status={run.status} />
        </h1>
        {!FINISHED.has(run.status) && <button type="button" className="danger" onClick={() => void cancel()}>Cancel run</button>}
        {workflowName && (
          <Link className="button-link" to={`/workflows/${run.workflow_id}?run=${encodeURIComponent(run.id)}`}>
            Open on the canvas
          </Link>
        )}
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <dl className="run-facts">
        <div>
          <dt>Started by</dt>
          <dd>
            {TRIGGER_NAMES[run.trigger_kind as TriggerKind] ?? run.trigger_kind}
            {(run.trigger_kind === "webhook" || run.trigger_kind === "schedule") && workflowName && (
              <> · <Link to={`/workflows/${run.workflow_id}/triggers`}>its triggers</Link></>
            )}
          </dd>
        </div>
        <div><dt>Version</dt><dd>v{run.workflow_version}</dd></div>
        <div>
          <dt>What ran</dt>
          <dd>
            {run.scope === "FULL" ? (run.used_pinned ? "What follows the pinned nodes" : "The whole workflow") : `${run.scope.toLowerCase()} ${run.target_node_id ?? ""}`}
            {run.used_pinned && <span className="muted"> (pinned outputs stood in for their nodes)</span>}
          </dd>
        </div>
        <div><dt>Duration</dt><dd>{formatDuration(run.duration_ms)}</dd></div>
        <div><dt>Created</dt><dd>{new Date(run.created_at).toLocaleString()}</dd></div>
        <div><dt>Finished</dt><dd>{run.finished_at ? new Date(run.finished_at).toLocaleString() : "—"}</dd></div>
        <div><dt>Model calls</dt><dd>{run.usage.calls} ({run.usage.tokens_total} tokens)</dd></div>
        <div><dt>Run id</dt><dd><code>{run.id}</code></dd></div>
      </dl>
      {runError && <p className="error" role="alert">This run failed: {runError}</p>}
      <div className="two-col">
        <div>
          <h2>Inputs</h2>
          <Value value={Object.keys(run.inputs).length ? run.inputs : null} />
        </div>
        <div>
          <h2>Outputs</h2>
          <Value value={run.outputs} />
        </div>
      </div>
      <h2>Nodes</h2>
      <table className="list" aria-label="Nodes of the run">
        <thead>
          <tr><th>Node</th><th>Status</th><th>Attempt</th><th>Duration</th><th>Result</th></tr>
        </thead>
        <tbody>
          {run.nodes.map((node) => {
            const failure = errorText(node.error);
            return (
              <tr key={`${node.node_id}-${node.attempt}`} data-node-id={node.node_id}>
                <td>
                  <strong>{labels[node.node_id] ?? node.node_id}</strong>
                  <div className="muted"><code>{labels[node.node_id] ? `${node.node_id} · ` : ""}{node.type}</code></div>
                </td>
                <td><StatusBadge status={node.status} /></td>
                <td>{node.attempt}</td>
                <td>{formatDuration(node.duration_ms)}</td>
                <td className="value-cell">
                  {failure ? <span className="node-error-text">{failure}</span> : <Value value={node.outputs} />}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {run.nodes.length === 0 && <p className="muted">No node has started yet.</p>}
    </section>
  );
}
