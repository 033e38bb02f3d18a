import { useCallback, useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import "./account.css";
import "./admin.css";
import "./ops.css";

type Summary = components["schemas"]["WorkflowMemorySummary"];
type Entry = components["schemas"]["MemoryEntryPublic"];

function scopeLabel(scope: string): string {
  return scope === "" ? "whole workflow" : `thread ${scope}`;
}

function valueText(entry: Entry): string {
  return typeof entry.value === "string" ? entry.value : JSON.stringify(entry.value, null, 2);
}

export function MemoryPage() {
  const [params, setParams] = useSearchParams();
  const [workflows, setWorkflows] = useState<Summary[]>([]);
  const [entries, setEntries] = useState<Entry[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const selected = params.get("workflow") ?? workflows[0]?.workflow_id ?? null;
  const scope = params.get("scope");

  const loadWorkflows = useCallback(async () => {
    try {
      setWorkflows((await api.get("/api/v1/memory")).items);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setLoaded(true);
    }
  }, []);

  const loadEntries = useCallback(async (workflowId: string) => {
    try {
      setEntries((await api.get("/api/v1/workflows/{workflow_id}/memory", { path: { workflow_id: workflowId } })).items);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void loadWorkflows();
  }, [loadWorkflows]);

  useEffect(() => {
    if (selected) void loadEntries(selected);
    else setEntries([]);
  }, [selected, loadEntries]);

  function choose(workflowId: string, nextScope: string | null = null) {
    const next = new URLSearchParams();
    next.set("workflow", workflowId);
    if (nextScope !== null) next.set("scope", nextScope);
    setParams(next, { replace: true });
    setNotice(null);
  }

  async function forget(entry: Entry) {
    if (!selected) return;
    setError(null);
    try {
      await api.delete("/api/v1/workflows/{workflow_id}/memory/{key}", {
        path: { workflow_id: selected, key: entry.key },
        query: { scope: entry.scope },
      });
      setEntries((old) => old.filter((e) => e.id !== entry.id));
      setNotice(`Forgot "${entry.key}" (${scopeLabel(entry.scope)}).`);
      void loadWorkflows();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function clear(onlyScope: string | null) {
    if (!selected) return;
    const name = workflows.find((w) => w.workflow_id === selected)?.workflow_name ?? selected;
    const what = onlyScope === null ? `everything ${name} remembers` : `the memory of ${scopeLabel(onlyScope)} in ${name}`;
    if (!window.confirm(`Forget ${what}? Its next runs start without it.`)) return;
    setError(null);
    try {
      const answer = await api.delete("/api/v1/workflows/{workflow_id}/memory", {
        path: { workflow_id: selected },
        query: { scope: onlyScope ?? undefined },
      });
      setNotice(`Forgot ${answer.deleted} entr${answer.deleted === 1 ? "y" : "ies"}.`);
      if (onlyScope !== null) choose(selected);
      await loadEntries(selected);
      await loadWorkflows();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  const scopes = [...new Set(entries.map((e) => e.scope))];
  const shown = scope === null ? entries : entries.filter((e) => e.scope === scope);
  const current = workflows.find((w) => w.workflow_id === selected);
  return (
    <section className="page" aria-labelledby="memory-title">
      <h1 id="memory-title">Memory</h1>
      <p className="muted">What your workflows remember between runs (the Memory nodes' store): for the whole workflow, or per conversation thread. Entries with an expiry disappear by themselves.</p>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      {loaded && workflows.length === 0 && !error ? (
        <p className="muted">No workflow remembers anything yet. A Memory node (set) stores values here.</p>
      ) : (
        <div className="memory-layout">
          <ul className="memory-list" aria-label="Workflows with memory">
            {workflows.map((w) => (
              <li key={w.workflow_id}>
                <button type="button" aria-current={w.workflow_id === selected} onClick={() => choose(w.workflow_id)}>
                  <strong>{w.workflow_name}</strong>
                  <span className="muted">{w.entries} entr{w.entries === 1 ? "y" : "ies"} · {w.scopes} scope{w.scopes === 1 ? "" : "s"}</span>
                </button>
              </li>
            ))}
          </ul>
          <div>
            {current && (
              <div className="page-head">
                <h2 style={{ margin: 0 }}>{current.workflow_name}</h2>
                <Link to={`/workflows/${current.workflow_id}`}>Open workflow</Link>
                <button type="button" className="danger" onClick={() => void clear(null)}>Forget everything</button>
              </div>
            )}
            {scopes.length > 1 && (
              <div className="filters">
                <div className="filter">
                  <label htmlFor="memory-scope">Scope</label>
                  <select id="memory-scope" value={scope ?? "*"} onChange={(e) => selected && choose(selected, e.target.value === "*" ? null : e.target.value)}>
                    <option value="*">all scopes</option>
                    {scopes.map((s) => <option key={s} value={s}>{scopeLabel(s)}</option>)}
                  </select>
                </div>
                {scope !== null && <button type="button" className="danger" onClick={() => void clear(scope)}>Forget this scope</button>}
              </div>
            )}
            <table className="list" aria-label="Memory entries">
              <thead><tr><th>Key</th><th>Scope</th><th>Value</th><th>Updated</th><th>Expires</th><th><span className="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {shown.map((entry) => (
                  <tr key={entry.id} data-testid={`memory-${entry.scope}-${entry.key}`}>
                    <td><code>{entry.key}</code></td>
                    <td>{scopeLabel(entry.scope)}</td>
                    <td className="value-cell"><pre className="memory-value">{valueText(entry)}</pre><span className="muted">{entry.value_type}</span></td>
                    <td>{new Date(entry.updated_at).toLocaleString()}</td>
                    <td>{entry.expires_at ? new Date(entry.expires_at).toLocaleString() : "never"}</td>
                    <td>
                      <div className="row-actions">
                        <button type="button" className="danger" onClick={() => void forget(entry)} aria-label={`Forget ${entry.key} (${scopeLabel(entry.scope)})`}>Forget</button>
                      </div>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </section>
  );
}
