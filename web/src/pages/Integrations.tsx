/**
 * Integrations: the user's MCP servers (stdio commands, administrators only; or streamable HTTP
 * URLs). Env and header values are write-only: the list shows their names, and an edit that
 * sends them replaces them whole. Each server can be tested, and its tools listed.
 */
import { useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { ConnectionTest, IntegrationPublic, ToolPublic } from "../api/types";
import { forgetLookups } from "../editor/lookups";
import { parseArgs, parsePairs } from "./integrationForm";

type Transport = "http" | "stdio";

interface Draft {
  name: string;
  transport: Transport;
  url: string;
  command: string;
  args: string;
  cwd: string;
  env: string;
  headers: string;
  timeoutS: string;
  enabled: boolean;
}

const EMPTY: Draft = { name: "", transport: "http", url: "", command: "", args: "", cwd: "", env: "", headers: "", timeoutS: "30", enabled: true };

function draftOf(integration: IntegrationPublic): Draft {
  return {
    name: integration.name,
    transport: integration.transport,
    url: integration.url ?? "",
    command: integration.command ?? "",
    args: (integration.args ?? []).join("\n"),
    cwd: integration.cwd ?? "",
    env: "",
    headers: "",
    timeoutS: String(integration.timeout_s),
    enabled: integration.enabled,
  };
}

/** The form of a new server, or of changes to one (`editing`: empty secrets keep the stored ones). */
function IntegrationForm({
  initial,
  editing,
  onSubmit,
  onCancel,
}: {
  initial: Draft;
  editing?: IntegrationPublic;
  onSubmit: (draft: Draft, env: Record<string, string> | null, headers: Record<string, string> | null) => Promise<void>;
  onCancel?: () => void;
}) {
  const [draft, setDraft] = useState<Draft>(initial);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const prefix = editing ? `edit-${editing.id}` : "new";

  async function submit(event: FormEvent) {
    event.preventDefault();
    const env = parsePairs(draft.env, "=");
    const headers = parsePairs(draft.headers, ":");
    if (!env.ok) return setError(`Environment: ${env.error}`);
    if (!headers.ok) return setError(`Headers: ${headers.error}`);
    setError(null);
    setBusy(true);
    try {
      // Editing, an empty box keeps the stored values; a filled one replaces them whole.
      const keep = (text: string, parsed: Record<string, string>) => (editing && text.trim() === "" ? null : parsed);
      await onSubmit(draft, keep(draft.env, env.value), keep(draft.headers, headers.value));
      if (!editing) setDraft(EMPTY);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  const transport = editing ? editing.transport : draft.transport;
  return (
    <form onSubmit={submit} className="card integration-form" aria-label={editing ? `Edit ${editing.name}` : "New MCP server"}>
      <label>
        Name
        <input required maxLength={200} value={draft.name} onChange={(e) => set("name", e.target.value)} />
      </label>
      {!editing && (
        <fieldset>
          <legend>Transport</legend>
          <label className="check">
            <input type="radio" name={`${prefix}-transport`} checked={draft.transport === "http"} onChange={() => set("transport", "http")} />
            Streamable HTTP (a URL)
          </label>
          <label className="check">
            <input type="radio" name={`${prefix}-transport`} checked={draft.transport === "stdio"} onChange={() => set("transport", "stdio")} />
            stdio (a command run on the flowloom host: administrators only)
          </label>
        </fieldset>
      )}
      {transport === "http" ? (
        <>
          <label>
            URL
            <input required type="url" value={draft.url} onChange={(e) => set("url", e.target.value)} placeholder="https://mcp.example.com/mcp" />
          </label>
          <label>
            Headers {editing && <span className="muted">(sent: {(editing.header_names ?? []).join(", ") || "none"}; leave empty to keep them)</span>}
            <textarea rows={2} value={draft.headers} onChange={(e) => set("headers", e.target.value)} placeholder="Authorization: Bearer …" spellCheck={false} autoComplete="off" />
          </label>
        </>
      ) : (
        <>
          <label>
            Command
            <input required value={draft.command} onChange={(e) => set("command", e.target.value)} placeholder="npx" />
          </label>
          <label>
            Arguments (one per line)
            <textarea rows={2} value={draft.args} onChange={(e) => set("args", e.target.value)} spellCheck={false} />
          </label>
          <label>
            Working directory (optional)
            <input value={draft.cwd} onChange={(e) => set("cwd", e.target.value)} />
          </label>
          <label>
            Environment {editing && <span className="muted">(set: {(editing.env_names ?? []).join(", ") || "none"}; leave empty to keep them)</span>}
            <textarea rows={2} value={draft.env} onChange={(e) => set("env", e.target.value)} placeholder="API_TOKEN=…" spellCheck={false} autoComplete="off" />
          </label>
        </>
      )}
      <p className="hint">Header and environment values are sealed when saved and never shown again.</p>
      <div className="row">
        <label>
          Timeout (s)
          <input type="number" min={1} max={600} step="any" value={draft.timeoutS} onChange={(e) => set("timeoutS", e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" checked={draft.enabled} onChange={(e) => set("enabled", e.target.checked)} />
          Enabled
        </label>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <div className="button-row">
        <button type="submit" className="primary" disabled={busy}>{editing ? "Save changes" : "Add server"}</button>
        {onCancel && <button type="button" onClick={onCancel}>Cancel</button>}
      </div>
    </form>
  );
}

function ToolList({ tools }: { tools: ToolPublic[] }) {
  if (tools.length === 0) return <p className="muted">The server lists no tools.</p>;
  return (
    <ul className="tool-list" aria-label="Tools">
      {tools.map((tool) => (
        <li key={tool.name}>
          <code className="tool-name">{tool.name}</code> <span>{tool.description || <span className="muted">No description.</span>}</span>
          <details>
            <summary>Input schema</summary>
            <pre className="json">{JSON.stringify(tool.input_schema, null, 2)}</pre>
          </details>
        </li>
      ))}
    </ul>
  );
}

function IntegrationCard({ integration, onChanged, onDeleted }: { integration: IntegrationPublic; onChanged: (i: IntegrationPublic) => void; onDeleted: () => void }) {
  const [editing, setEditing] = useState(false);
  const [test, setTest] = useState<ConnectionTest | null>(null);
  const [tools, setTools] = useState<ToolPublic[] | null>(null);
  const [busy, setBusy] = useState<"test" | "tools" | null>(null);
  const [error, setError] = useState<string | null>(null);
  const headingId = `integration-${integration.id}`;

  async function runTest() {
    setBusy("test");
    setError(null);
    try {
      setTest(await api.post("/api/v1/integrations/{integration_id}/test", { path: { integration_id: integration.id } }));
    } catch (caught) {
      setTest(null);
      setError(errorMessage(caught));
    } finally {
      setBusy(null);
    }
  }

  async function listTools() {
    setBusy("tools");
    setError(null);
    try {
      setTools((await api.get("/api/v1/integrations/{integration_id}/tools", { path: { integration_id: integration.id } })).items);
    } catch (caught) {
      setTools(null);
      setError(`Could not list the tools: ${errorMessage(caught)}`);
    } finally {
      setBusy(null);
    }
  }

  async function remove() {
    if (!window.confirm(`Delete the integration "${integration.name}"? Nodes and agents using it will fail.`)) return;
    try {
      await api.delete("/api/v1/integrations/{integration_id}", { path: { integration_id: integration.id } });
      onDeleted();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <li className="card integration" aria-labelledby={headingId}>
      <div className="panel-title">
        <h2 id={headingId}>{integration.name}</h2>
        <span className={integration.enabled ? "status status-completed" : "status"}>{integration.enabled ? "enabled" : "disabled"}</span>
      </div>
      <p className="muted">
        {integration.transport === "http" ? <>HTTP <code>{integration.url}</code></> : <>stdio <code>{[integration.command, ...(integration.args ?? [])].join(" ")}</code></>}
        {" · "}id <code>{integration.id}</code> · timeout {integration.timeout_s} s
        {(integration.env_names ?? []).length > 0 && <> · env: {(integration.env_names ?? []).join(", ")}</>}
        {(integration.header_names ?? []).length > 0 && <> · headers: {(integration.header_names ?? []).join(", ")}</>}
      </p>
      <div className="button-row">
        <button type="button" onClick={() => void runTest()} disabled={busy !== null} aria-label={`Test ${integration.name}`}>{busy === "test" ? "Testing…" : "Test"}</button>
        <button type="button" onClick={() => void listTools()} disabled={busy !== null} aria-label={`List the tools of ${integration.name}`}>{busy === "tools" ? "Listing…" : "List tools"}</button>
        <button type="button" onClick={() => setEditing((e) => !e)} aria-expanded={editing} aria-label={`Edit ${integration.name}`}>Edit</button>
        <button type="button" className="danger" onClick={() => void remove()} aria-label={`Delete ${integration.name}`}>Delete</button>
      </div>
      {test && (
        <p className={test.ok ? "ok" : "error"} role="status" data-testid="test-result">
          {test.ok ? "OK: " : "Failed: "}{test.message} ({test.duration_ms} ms)
        </p>
      )}
      {error && <p className="error" role="alert">{error}</p>}
      {tools && <ToolList tools={tools} />}
      {editing && (
        <IntegrationForm
          initial={draftOf(integration)}
          editing={integration}
          onCancel={() => setEditing(false)}
          onSubmit={async (draft, env, headers) => {
            const http = integration.transport === "http";
            const changed = await api.patch("/api/v1/integrations/{integration_id}", {
              path: { integration_id: integration.id },
              body: {
                name: draft.name,
                timeout_s: Number(draft.timeoutS),
                enabled: draft.enabled,
                ...(http ? { url: draft.url } : { command: draft.command, args: parseArgs(draft.args), cwd: draft.cwd || null }),
                ...(env && !http ? { env } : {}),
                ...(headers && http ? { headers } : {}),
              },
            });
            setEditing(false);
            setTools(null);
            setTest(null);
            onChanged(changed);
          }}
        />
      )}
    </li>
  );
}

export function IntegrationsPage() {
  const list = usePaged<IntegrationPublic>((cursor) => api.get("/api/v1/integrations", { query: { cursor, limit: 20 } }), "");
  const { items, setItems, error } = list;
  const [adding, setAdding] = useState(false);

  return (
    <section className="page" aria-labelledby="integrations-title">
      <h1 id="integrations-title">Integrations</h1>
      <p className="muted">
        MCP servers your <code>mcp.tool</code> nodes and agents call by id. Test one to see whether it answers; list
        its tools to see what they take.
      </p>
      <button type="button" className="primary" aria-expanded={adding} onClick={() => setAdding((a) => !a)}>
        {adding ? "Close the form" : "Add an MCP server"}
      </button>
      {adding && (
        <IntegrationForm
          initial={EMPTY}
          onCancel={() => setAdding(false)}
          onSubmit={async (draft, env, headers) => {
            const http = draft.transport === "http";
            await api.post("/api/v1/integrations", {
              body: {
                name: draft.name,
                transport: draft.transport,
                timeout_s: Number(draft.timeoutS),
                enabled: draft.enabled,
                ...(http
                  ? { url: draft.url, headers: headers ?? {} }
                  : { command: draft.command, args: parseArgs(draft.args), cwd: draft.cwd || null, env: env ?? {} }),
              },
            });
            setAdding(false);
            forgetLookups();
            list.reload();
          }}
        />
      )}
      {error && <p className="error" role="alert">{error}</p>}
      <ul className="integrations" aria-label="Your MCP servers">
        {items.map((integration) => (
          <IntegrationCard
            key={integration.id}
            integration={integration}
            onChanged={(changed) => {
              forgetLookups();
              setItems((old) => old.map((i) => (i.id === changed.id ? changed : i)));
            }}
            onDeleted={() => {
              forgetLookups();
              setItems((old) => old.filter((i) => i.id !== integration.id));
            }}
          />
        ))}
      </ul>
      {items.length === 0 && !error && <p className="muted">No MCP servers yet.</p>}
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Load more</button>}
    </section>
  );
}
