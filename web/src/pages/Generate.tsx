/**
 * "Describe a workflow": plain language in, a validated workflow out. The model's draft is
 * checked by the server and sent back with its problems for up to `max_repairs` repairs; each
 * attempt's outcome is shown. A valid result opens in the editor; the history lists every
 * attempt ever made.
 */
import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";

import { ApiError, api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { AttemptPublic, GenerationEntry, Provider } from "../api/types";
import { useCredentials } from "../editor/lookups";

interface Problem {
  message?: string;
  node_id?: string | null;
  port?: string | null;
  field?: string | null;
}

/** "node x, port y: message": one problem of a generated workflow, readable. */
export function problemLine(problem: Problem): string {
  const where = [problem.node_id && `node ${problem.node_id}`, problem.port && `port ${problem.port}`, problem.field && `field ${problem.field}`]
    .filter(Boolean)
    .join(", ");
  const message = problem.message ?? JSON.stringify(problem);
  return where ? `${where}: ${message}` : message;
}

/** The attempts a failed generation's problem document carries (422: `attempts`). */
export function attemptsOf(error: unknown): AttemptPublic[] {
  if (!(error instanceof ApiError)) return [];
  const raw = error.body.attempts;
  return Array.isArray(raw) ? (raw as AttemptPublic[]) : [];
}

const OUTCOME: Record<string, string> = { valid: "valid", invalid: "the server found problems", error: "the model's answer could not be read" };

export function Attempts({ attempts, caption }: { attempts: AttemptPublic[]; caption: string }) {
  return (
    <ol className="attempts" aria-label={caption}>
      {attempts.map((attempt) => (
        <li key={attempt.id} className={`attempt attempt-${attempt.outcome}`} data-testid="attempt" data-outcome={attempt.outcome}>
          <div>
            <strong>Attempt {attempt.attempt}</strong>{" "}
            <span className={attempt.outcome === "valid" ? "status status-completed" : "status status-failed"}>{attempt.outcome}</span>{" "}
            <span className="muted">
              {OUTCOME[attempt.outcome]} · {attempt.tokens_in + attempt.tokens_out} tokens
            </span>
          </div>
          {attempt.problems.length > 0 && (
            <ul className="problems" aria-label={`Problems of attempt ${attempt.attempt}`}>
              {attempt.problems.map((p, i) => <li key={i}>{problemLine(p as Problem)}</li>)}
            </ul>
          )}
        </li>
      ))}
    </ol>
  );
}

function History({ refreshKey }: { refreshKey: number }) {
  // A new attempt (refreshKey) starts the list again.
  const list = usePaged<GenerationEntry>((cursor) => api.get("/api/v1/generations", { query: { cursor, limit: 20 } }), String(refreshKey));
  const { items, error } = list;
  return (
    <section aria-labelledby="history-title">
      <h2 id="history-title">History</h2>
      {error && <p className="error" role="alert">{error}</p>}
      {items.length === 0 && !error && <p className="muted">No generations yet.</p>}
      {items.length > 0 && (
        <table className="list" aria-label="Generation history, newest first">
          <thead>
            <tr><th>When</th><th>Prompt</th><th>Model</th><th>Attempt</th><th>Outcome</th><th>Workflow</th></tr>
          </thead>
          <tbody>
            {items.map((entry) => (
              <tr key={entry.id}>
                <td>{new Date(entry.created_at).toLocaleString()}</td>
                <td className="prompt-cell" title={entry.prompt}>{entry.prompt.length > 80 ? `${entry.prompt.slice(0, 80)}…` : entry.prompt}</td>
                <td>{entry.provider}/{entry.model}</td>
                <td>{entry.attempt}</td>
                <td>
                  <span className={entry.outcome === "valid" ? "ok" : "warn"}>{entry.outcome}</span>
                  {entry.problems.length > 0 && (
                    <details>
                      <summary>{entry.problems.length} problem{entry.problems.length > 1 ? "s" : ""}</summary>
                      <ul className="problems">{entry.problems.map((p, i) => <li key={i}>{problemLine(p as Problem)}</li>)}</ul>
                    </details>
                  )}
                </td>
                <td>{entry.workflow_id ? <Link to={`/workflows/${entry.workflow_id}`}>open</Link> : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Older attempts</button>}
    </section>
  );
}

export function GeneratePage() {
  const navigate = useNavigate();
  const [prompt, setPrompt] = useState("");
  const [provider, setProvider] = useState<Provider>("openai");
  const [model, setModel] = useState("");
  const [maxRepairs, setMaxRepairs] = useState(2);
  const [name, setName] = useState("");
  const [credential, setCredential] = useState("");
  const [busy, setBusy] = useState(false);
  const [failed, setFailed] = useState<{ message: string; attempts: AttemptPublic[] } | null>(null);
  const [refreshKey, setRefreshKey] = useState(0);
  const { items: credentials } = useCredentials();

  async function generate(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setFailed(null);
    try {
      const made = await api.post("/api/v1/workflows/generate", {
        body: {
          prompt,
          provider,
          model: model.trim(),
          max_repairs: maxRepairs,
          name: name.trim() || null,
          credential: credential.trim() || null,
        },
      });
      navigate(`/workflows/${made.workflow_id}`, { state: { generated: made.attempts } });
    } catch (caught) {
      setFailed({ message: errorMessage(caught), attempts: attemptsOf(caught) });
      setRefreshKey((k) => k + 1);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="page" aria-labelledby="generate-title">
      <h1 id="generate-title">Describe a workflow</h1>
      <p className="muted">
        Say what the workflow should do; a model drafts it from the node types, the server checks it, and the
        model repairs what is wrong. A valid workflow opens in the editor.
      </p>
      <form className="card wide" onSubmit={generate} aria-busy={busy}>
        <label>
          What should it do?
          <textarea required rows={4} maxLength={8000} value={prompt} onChange={(e) => setPrompt(e.target.value)} placeholder="Every morning, fetch the weather for Paris and summarise it in one sentence." />
        </label>
        <div className="row">
          <label>
            Provider
            <select value={provider} onChange={(e) => setProvider(e.target.value as Provider)}>
              <option value="openai">openai</option>
              <option value="gemini">gemini</option>
              <option value="anthropic">anthropic</option>
            </select>
          </label>
          <label>
            Model
            <input required maxLength={200} value={model} onChange={(e) => setModel(e.target.value)} placeholder="gpt-4o-mini" />
          </label>
          <label>
            Repairs at most
            <input type="number" min={0} max={5} step={1} value={maxRepairs} onChange={(e) => setMaxRepairs(Math.max(0, Math.min(5, Number(e.target.value) || 0)))} />
          </label>
        </div>
        <div className="row">
          <label>
            Name (optional)
            <input maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <label>
            Credential (optional)
            <input list="generate-credentials" value={credential} onChange={(e) => setCredential(e.target.value)} placeholder="the instance's key" autoComplete="off" />
            <datalist id="generate-credentials">
              {credentials.map((c) => <option key={c.id} value={c.name}>{c.kind}</option>)}
            </datalist>
          </label>
        </div>
        <button type="submit" className="primary" disabled={busy}>{busy ? "Generating…" : "Generate"}</button>
        {busy && <p role="status" className="muted">The model is drafting; each repair is another call.</p>}
      </form>
      {failed && (
        <div className="card wide" role="alert" aria-label="Generation failed">
          <p className="error">{failed.message}</p>
          {failed.attempts.length > 0 && <Attempts attempts={failed.attempts} caption="Attempts" />}
        </div>
      )}
      <History refreshKey={refreshKey} />
    </section>
  );
}
