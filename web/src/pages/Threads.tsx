/**
 * Threads: conversations with an agent or a model. The list on the left (newest first, paged);
 * the chat on the right: its history a page at a time (older pages above), and a reply that
 * streams in as it is written, with each tool the agent calls shown as a step.
 */
import { useCallback, useEffect, useRef, useState, type FormEvent, type KeyboardEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import { postEventStream } from "../api/sse";
import type { AgentPublic, MessagePublic, Provider, ThreadPublic } from "../api/types";
import { applyEvent, startTurn, storedMessages, toolSteps, type ToolStep, type Turn } from "../threads/turn";

const PAGE = 20;

function short(value: unknown, max = 400): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text && text.length > max ? `${text.slice(0, max)}…` : (text ?? "");
}

function Steps({ steps }: { steps: ToolStep[] }) {
  if (steps.length === 0) return null;
  return (
    <ol className="tool-steps" aria-label="Tool calls">
      {steps.map((step, i) => (
        <li key={i} className={step.is_error ? "tool-step failed" : "tool-step"} data-testid="tool-step">
          <details>
            <summary>
              <span aria-hidden="true">{step.is_error ? "✗" : "⚙"}</span> called <code>{step.tool}</code>
              {step.is_error && <span className="error"> (failed)</span>}
            </summary>
            <div className="step-io">
              <div><span className="muted">arguments</span> <code>{short(step.arguments)}</code></div>
              <div><span className="muted">result</span> <code>{short(step.result)}</code></div>
            </div>
          </details>
        </li>
      ))}
    </ol>
  );
}

function Bubble({ role, children, testId }: { role: string; children: ReactNode; testId?: string }) {
  return (
    <li className={`bubble bubble-${role}`} data-testid={testId}>
      <div className="bubble-who">{role === "user" ? "You" : role === "assistant" ? "Assistant" : role}</div>
      {children}
    </li>
  );
}

function Chat({ thread, agents }: { thread: ThreadPublic; agents: AgentPublic[] }) {
  const [messages, setMessages] = useState<MessagePublic[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [turn, setTurn] = useState<Turn | null>(null);
  const [draft, setDraft] = useState("");
  const bottom = useRef<HTMLDivElement>(null);
  const abort = useRef<AbortController | null>(null);

  const load = useCallback(
    async (after: string | null) => {
      try {
        const page = await api.get("/api/v1/threads/{thread_id}/messages", {
          path: { thread_id: thread.id },
          query: { order: "newest", cursor: after ?? undefined, limit: PAGE },
        });
        // Newest first from the server; the chat reads oldest first.
        const older = [...page.items].reverse();
        setMessages((old) => (after ? [...older, ...old] : older));
        setCursor(page.next_cursor ?? null);
        setError(null);
        if (!after) window.requestAnimationFrame(() => bottom.current?.scrollIntoView({ block: "end" }));
      } catch (caught) {
        setError(errorMessage(caught));
      }
    },
    [thread.id],
  );

  useEffect(() => {
    setMessages([]);
    setTurn(null);
    void load(null);
    return () => abort.current?.abort();
  }, [load]);

  useEffect(() => {
    if (turn) bottom.current?.scrollIntoView({ block: "end" });
  }, [turn]);

  async function send(event?: FormEvent) {
    event?.preventDefault();
    const content = draft.trim();
    if (!content || turn?.state === "streaming") return;
    setDraft("");
    let current = startTurn(content);
    setTurn(current);
    const controller = new AbortController();
    abort.current = controller;
    try {
      await postEventStream(
        `/api/v1/threads/${encodeURIComponent(thread.id)}/messages?stream=true`,
        { content },
        (sse) => {
          current = applyEvent(current, sse);
          setTurn(current);
        },
        controller.signal,
      );
      if (current.state === "streaming") {
        current = { ...current, state: "failed", error: "the stream ended before the reply was whole" };
      }
    } catch (caught) {
      if (controller.signal.aborted) return;
      current = { ...current, state: "failed", error: errorMessage(caught) };
    }
    if (current.state === "done") {
      setMessages((old) => [...old, ...storedMessages(current)]);
      setTurn(null);
    } else {
      // Nothing was stored: give the text back to try again.
      setTurn(current);
      setDraft(content);
    }
  }

  function onKey(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void send();
    }
  }

  const agent = agents.find((a) => a.id === thread.agent_id);
  const streaming = turn?.state === "streaming";
  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className="chat-head">
        <h2 id="chat-title">{thread.name}</h2>
        <span className="muted">
          {agent ? <>with the agent <Link to="/agents">{agent.name}</Link> ({agent.provider}/{agent.model})</> : thread.agent_id ? "with an agent" : `${thread.provider}/${thread.model}`}
        </span>
      </header>
      {error && <p className="error" role="alert">{error}</p>}
      <div className="chat-log" role="log" aria-label="Messages" aria-live="polite">
        {cursor && (
          <button type="button" className="older" onClick={() => void load(cursor)}>Load older messages</button>
        )}
        {messages.length === 0 && !turn && !error && <p className="muted">No messages yet: say something below.</p>}
        <ol className="messages">
          {messages.map((m) => (
            <Bubble key={m.id} role={m.role} testId={`message-${m.role}`}>
              <Steps steps={toolSteps(m.tool_calls)} />
              <div className="bubble-text">{m.content}</div>
            </Bubble>
          ))}
          {turn && (
            <>
              <Bubble role="user" testId="pending-user">
                <div className="bubble-text">{turn.content}</div>
              </Bubble>
              <Bubble role="assistant" testId="streaming-reply">
                <Steps steps={turn.steps} />
                <div className="bubble-text" aria-busy={streaming}>
                  {turn.text}
                  {streaming && <span className="caret" aria-label="writing" />}
                </div>
                {turn.state === "failed" && <p className="error" role="alert">Not sent: {turn.error}</p>}
              </Bubble>
            </>
          )}
        </ol>
        <div ref={bottom} />
      </div>
      <form className="composer" onSubmit={(e) => void send(e)}>
        <label htmlFor="composer-text" className="sr-only">Message</label>
        <textarea
          id="composer-text"
          rows={2}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onKey}
          placeholder="Write a message (Enter sends, Shift+Enter for a new line)"
          disabled={streaming}
        />
        <button type="submit" className="primary" disabled={streaming || !draft.trim()}>{streaming ? "Replying…" : "Send"}</button>
        {streaming && <button type="button" onClick={() => abort.current?.abort()}>Stop</button>}
      </form>
    </section>
  );
}

function NewThread({ agents, onCreated }: { agents: AgentPublic[]; onCreated: (t: ThreadPublic) => void }) {
  const [agentId, setAgentId] = useState("");
  const [provider, setProvider] = useState<Provider>("openai");
  const [model, setModel] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const body = agentId
        ? { name: name.trim() || "New thread", agent_id: agentId }
        : { name: name.trim() || "New thread", provider, model: model.trim() };
      onCreated(await api.post("/api/v1/threads", { body }));
      setName("");
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <form className="new-thread" onSubmit={create} aria-label="New thread">
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder="New thread" maxLength={200} />
      </label>
      <label>
        Talk to
        <select value={agentId} onChange={(e) => setAgentId(e.target.value)}>
          <option value="">A model (no agent)</option>
          {agents.map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
        </select>
      </label>
      {!agentId && (
        <>
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
            <input required value={model} onChange={(e) => setModel(e.target.value)} placeholder="gpt-4o-mini" />
          </label>
        </>
      )}
      {error && <p className="error" role="alert">{error}</p>}
      <button type="submit" className="primary">Start the thread</button>
    </form>
  );
}

export function ThreadsPage() {
  const { threadId } = useParams();
  const navigate = useNavigate();
  const list = usePaged<ThreadPublic>((cursor) => api.get("/api/v1/threads", { query: { cursor, limit: PAGE } }), "");
  const { items: threads, setItems: setThreads } = list;
  const [agents, setAgents] = useState<AgentPublic[]>([]);
  const [actionError, setError] = useState<string | null>(null);
  const error = actionError ?? list.error;
  const [opened, setOpened] = useState<ThreadPublic | null>(null);

  useEffect(() => {
    api.get("/api/v1/agents", { query: { limit: 100 } }).then((page) => setAgents(page.items), (caught) => setError(errorMessage(caught)));
  }, []);

  useEffect(() => {
    if (!threadId) {
      setOpened(null);
      return;
    }
    const known = threads.find((t) => t.id === threadId);
    if (known) {
      setOpened(known);
      return;
    }
    api.get("/api/v1/threads/{thread_id}", { path: { thread_id: threadId } }).then(setOpened, (caught) => setError(errorMessage(caught)));
  }, [threadId, threads]);

  async function remove(thread: ThreadPublic) {
    if (!window.confirm(`Delete the thread "${thread.name}" and its messages?`)) return;
    try {
      await api.delete("/api/v1/threads/{thread_id}", { path: { thread_id: thread.id } });
      setThreads((old) => old.filter((t) => t.id !== thread.id));
      if (thread.id === threadId) navigate("/threads");
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <div className="threads-page">
      <aside className="thread-list" aria-label="Threads">
        <h1>Threads</h1>
        <NewThread
          agents={agents}
          onCreated={(thread) => {
            setThreads((old) => [thread, ...old]);
            navigate(`/threads/${thread.id}`);
          }}
        />
        {error && <p className="error" role="alert">{error}</p>}
        <ul className="threads" aria-label="Your threads, newest first">
          {threads.map((thread) => (
            <li key={thread.id} className={thread.id === threadId ? "current" : undefined}>
              <Link to={`/threads/${thread.id}`} aria-current={thread.id === threadId ? "page" : undefined}>{thread.name}</Link>
              <span className="muted">{new Date(thread.updated_at).toLocaleString()}</span>
              <button type="button" className="danger small" onClick={() => void remove(thread)} aria-label={`Delete the thread ${thread.name}`}>×</button>
            </li>
          ))}
        </ul>
        {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Older threads</button>}
      </aside>
      {opened ? <Chat key={opened.id} thread={opened} agents={agents} /> : <p className="muted chat-empty">Start a thread, or open one from the list.</p>}
    </div>
  );
}
