/**
 * Agents: instructions, context, a model and tools, reused by threads. Tools are the shapes of
 * `ai.agent`, edited with the same forms as that node's (one per tool, of its kind), the model
 * picked from the model table; secrets inside tools come back as ******** and are kept when
 * sent back unchanged.
 */
import { useEffect, useMemo, useState, type FormEvent } from "react";
import { useNavigate } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { AgentPublic, JsonSchema, NodeTypePublic, Provider } from "../api/types";
import { useIntegrations } from "../editor/lookups";
import { ModelField } from "../editor/PickFields";
import { fieldsFor, type FieldSpec } from "../editor/schemaForm";
import { AnyField } from "../editor/StructuredFields";

interface Draft {
  name: string;
  instructions: string;
  context: string;
  provider: Provider;
  model: string;
  tools: unknown[];
}

const EMPTY: Draft = { name: "", instructions: "", context: "", provider: "openai", model: "", tools: [] };

const MODEL_FIELD: FieldSpec = {
  key: "model",
  label: "Model",
  kind: "string",
  description: "",
  // The API refuses an agent without one, naming the field.
  required: false,
  nullable: false,
  default: "",
  options: [],
  modelKind: "chat",
};

/** The form of an agent's tools: the `tools` field of the ai.agent node type. */
function useToolsField(): { field: FieldSpec | null; error: string | null } {
  const [spec, setSpec] = useState<NodeTypePublic | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api
      .get("/api/v1/node-types/{type_name}", { path: { type_name: "ai.agent" } })
      .then(setSpec, (caught: unknown) => setError(errorMessage(caught)));
  }, []);
  const field = useMemo(() => fieldsFor(spec?.config_schema as JsonSchema | undefined).find((f) => f.key === "tools") ?? null, [spec]);
  return { field, error };
}

function draftOf(agent: AgentPublic): Draft {
  return {
    name: agent.name,
    instructions: agent.instructions,
    context: agent.context ?? "",
    provider: (agent.provider ?? "openai") as Provider,
    model: agent.model ?? "",
    tools: agent.tools as unknown[],
  };
}

function AgentForm({ initial, editing, onSaved, onCancel }: { initial: Draft; editing?: AgentPublic; onSaved: (a: AgentPublic) => void; onCancel?: () => void }) {
  const [draft, setDraft] = useState(initial);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const { items: integrations } = useIntegrations();
  const tools = useToolsField();
  const set = <K extends keyof Draft>(key: K, value: Draft[K]) => setDraft((d) => ({ ...d, [key]: value }));
  const prefix = editing ? `agent-${editing.id}` : "agent-new";

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setBusy(true);
    const body = {
      name: draft.name.trim(),
      instructions: draft.instructions,
      context: draft.context.trim() ? draft.context : null,
      provider: draft.provider,
      model: draft.model.trim(),
      // The API checks each tool's shape and answers which one is wrong.
      tools: draft.tools as never,
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
    set("tools", [...draft.tools, { kind: "mcp", server: id }]);
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
        <ModelField field={MODEL_FIELD} value={draft.model} idPrefix={prefix} onChange={(v) => set("model", typeof v === "string" ? v : "")} siblings={{ provider: draft.provider }} />
      </div>
      {tools.field ? (
        <AnyField field={{ ...tools.field, description: "" }} value={draft.tools} idPrefix={prefix} onChange={(v) => set("tools", Array.isArray(v) ? v : [])} />
      ) : (
        <p className={tools.error ? "error" : "muted"}>{tools.error ? `Could not load the tools' form: ${tools.error}` : "Loading the tools' form…"}</p>
      )}
      <span className="hint">Tool calling needs openai or an OpenAI-compatible server.</span>
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
  const list = usePaged<AgentPublic>((cursor) => api.get("/api/v1/agents", { query: { cursor, limit: 20 } }), "");
  const { items: agents, setItems: setAgents } = list;
  const [actionError, setError] = useState<string | null>(null);
  const error = actionError ?? list.error;
  const [editing, setEditing] = useState<string | null>(null);
  const [adding, setAdding] = useState(false);


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
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Load more</button>}
    </section>
  );
}
