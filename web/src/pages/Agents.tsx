/**
 * Agents: instructions, context, a model and tools, reused by threads. Tools are the shapes of
 * `ai.agent` (edited as JSON, with the user's integrations one click away); secrets inside
 * them come back as ******** and are kept when sent back unchanged.
 */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { AgentPublic, Provider } from "../api/types";
import { useIntegrations } from "../editor/lookups";

interface Draft {
  name: string;
  instructions: string;
  context: string;
  provider: Provider;
  model: string;
  tools: string;
}

const EMPTY: Draft = { name: "", instructions: "", context: "", provider: "openai", model: "", tools: "[]" };

function draftOf(agent: AgentPublic): Draft {
  return {
    name: agent.name,
    instructions: agent.instructions,
    context: agent.context ?? "",
    provider: (agent.provider ?? "openai") as Provider,
    model: agent.model ?? "",
    tools: JSON.stringify(agent.tools, null, 2),
  };
}

/** The tools box as a list, or why it is not one. */
export function parseTools(text: string): { ok: true; value: unknown[] } | { ok: false; error: string } {
  if (text.trim() === "") return { ok: true, value: [] };
  try {
    const value: unknown = JSON.parse(text);
    if (!Array.isArray(value)) return { ok: false, error: "must be a JSON list of tools" };
    const bad = value.findIndex((t) => typeof t !== "object" || t === null || typeof (t as { kind?: unknown }).kind !== "string");
    if (bad >= 0) return { ok: false, error: `tool ${bad + 1} needs a "kind": "mcp", "http" or "workflow"` };
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error: `is not valid JSON (${(error as Error).message})` };
  }
}

function AgentForm({ initial, editing, onSaved, onCancel }: { initial: Draft; editing?: AgentPublic; onSaved: (a: AgentPublic) => void; onCancel?: () => void }) {
  const [draft, setDraft] = useState(initial);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { items: integrations } = useIntegrations();
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const prefix = editing ? `agent-${editing.id}` : "agent-new";

  async function submit(event: FormEvent) {
    event.preventDefault();
    const tools = parseTools(draft.tools);
    if (!tools.ok) return setError(`Tools ${tools.error}`);
    setError(null);
    setBusy(true);
    const body = {
      name: draft.name.trim(),
      instructions: draft.instructions,
      context: draft.context.trim() ? draft.context : null,
      provider: draft.provider,
      model: draft.model.trim(),
      // The API checks each tool's shape and answers which one is wrong.
      tools: tools.value as never,
    };
    try {
      const saved = editing
        ? await api.patch("/api/v1/agents/{agent_id}", { path: { agent_id: editing.id }, body })
        : await api.post("/api/v1/agents", { body });
      onSaved(saved);
      if (!editing) setDraft(EMPTY);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  function addIntegration(id: string) {
    const tools = parseTools(draft.tools);
    if (!tools.ok) return setError(`Tools ${tools.error}`);
    set("tools", JSON.stringify([...tools.value, { kind: "mcp", server: id }], null, 2));
  }

  return (
    <form className="card agent-form" onSubmit={submit} aria-label={editing ? `Edit ${editing.name}` : "New agent"}>
      <label>
        Name
        <input required maxLength={200} value={draft.name} onChange={(e) => set("name", e.target.value)} />
      </label>
      <label>
        Instructions
        <textarea rows={4} value={draft.instructions} onChange={(e) => set("instructions", e.target.value)} placeholder="What the agent is for and how it behaves." />
      </label>
      <label>
        Context (optional)
        <textarea rows={2} value={draft.context} onChange={(e) => set("context", e.target.value)} placeholder="Knowledge the agent always has." />
      </label>
      <div className="row">
        <label>
          Provider
          <select value={draft.provider} onChange={(e) => set("provider", e.target.value as Provider)}>
            <option value="openai">openai</option>
            <option value="gemini">gemini</option>
            <option value="anthropic">anthropic</option>
          </select>
        </label>
        <label>
          Model
          <input required maxLength={200} value={draft.model} onChange={(e) => set("model", e.target.value)} placeholder="gpt-4o-mini" />
        </label>
      </div>
      <label htmlFor={`${prefix}-tools`}>Tools (JSON list)</label>
      <textarea
        id={`${prefix}-tools`}
        rows={5}
        className="code"
        spellCheck={false}
        value={draft.tools}
        onChange={(e) => set("tools", e.target.value)}
        aria-describedby={`${prefix}-tools-help`}
      />
      <span id={`${prefix}-tools-help`} className="hint">
        {'{"kind": "mcp", "server": "intg_…"}'}, {'{"kind": "http", "name", "url", …}'} or {'{"kind": "workflow", "name", "workflow_id"}'}; tool calling needs openai or an OpenAI-compatible server.
      </span>
      {integrations.length > 0 && (
        <label>
          Add the tools of an integration
          <select value="" onChange={(e) => e.target.value && addIntegration(e.target.value)}>
            <option value="">Choose an MCP server…</option>
            {integrations.map((i) => <option key={i.id} value={i.id}>{i.name}</option>)}
          </select>
        </label>
      )}
      {error && <p className="error" role="alert">{error}</p>}
      <div className="button-row">
        <button type="submit" className="primary" disabled={busy}>{editing ? "Save the agent" : "Create the agent"}</button>
        {onCancel && <button type="button" onClick={onCancel}>Cancel</button>}
      </div>
    </form>
  );
}

export function AgentsPage() {
  const navigate = useNavigate();
  const [agents, setAgents] = useState<AgentPublic[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);

  const load = useCallback(async (after: string | null) => {
    try {
      const page = await api.get("/api/v1/agents", { query: { cursor: after ?? undefined, limit: 20 } });
      setAgents((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void load(null);
  }, [load]);

  async function remove(agent: AgentPublic) {
    if (!window.confirm(`Delete the agent "${agent.name}"? Its threads are deleted with it.`)) return;
    try {
      await api.delete("/api/v1/agents/{agent_id}", { path: { agent_id: agent.id } });
      setAgents((old) => old.filter((a) => a.id !== agent.id));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function chat(agent: AgentPublic) {
    try {
      const thread = await api.post("/api/v1/threads", { body: { name: `Chat with ${agent.name}`, agent_id: agent.id } });
      navigate(`/threads/${thread.id}`);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <section className="page" aria-labelledby="agents-title">
      <h1 id="agents-title">Agents</h1>
      <p className="muted">An agent is instructions, a model and tools; talk to one in a thread.</p>
      <button type="button" className="primary" aria-expanded={adding} onClick={() => setAdding((a) => !a)}>
        {adding ? "Close the form" : "New agent"}
      </button>
      {adding && (
        <AgentForm
          initial={EMPTY}
          onCancel={() => setAdding(false)}
          onSaved={(agent) => {
            setAdding(false);
            setAgents((old) => [agent, ...old]);
          }}
        />
      )}
      {error && <p className="error" role="alert">{error}</p>}
      <ul className="agents" aria-label="Your agents">
        {agents.map((agent) => (
          <li key={agent.id} className="card" aria-labelledby={`agent-${agent.id}-name`}>
            <div className="panel-title">
              <h2 id={`agent-${agent.id}-name`}>{agent.name}</h2>
              <span className="muted">{agent.provider}/{agent.model} · {agent.tools.length} tool{agent.tools.length === 1 ? "" : "s"}</span>
            </div>
            {agent.instructions && <p className="instructions">{agent.instructions}</p>}
            <div className="button-row">
              <button type="button" className="primary" onClick={() => void chat(agent)} aria-label={`Chat with ${agent.name}`}>Chat</button>
              <button type="button" onClick={() => setEditing(editing === agent.id ? null : agent.id)} aria-expanded={editing === agent.id} aria-label={`Edit ${agent.name}`}>Edit</button>
              <button type="button" className="danger" onClick={() => void remove(agent)} aria-label={`Delete ${agent.name}`}>Delete</button>
            </div>
            {editing === agent.id && (
              <AgentForm
                initial={draftOf(agent)}
                editing={agent}
                onCancel={() => setEditing(null)}
                onSaved={(saved) => {
                  setEditing(null);
                  setAgents((old) => old.map((a) => (a.id === saved.id ? saved : a)));
                }}
              />
            )}
          </li>
        ))}
      </ul>
      {agents.length === 0 && !error && <p className="muted">No agents yet.</p>}
      {cursor && <button type="button" onClick={() => void load(cursor)}>Load more</button>}
    </section>
  );
}
