import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { ApiKeysPanel } from "./ApiKeys";
import { OAuthConnectionsSection } from "./OAuthConnections";
import "./account.css";

type SessionPublic = components["schemas"]["SessionPublic"];

function describeSession(session: SessionPublic): string {
  const agent = session.user_agent ?? "a program";
  const browser = /Firefox\//.test(agent)
    ? "Firefox"
    : /Edg\//.test(agent)
      ? "Edge"
      : /Chrome\//.test(agent)
        ? "Chrome"
        : /Safari\//.test(agent)
          ? "Safari"
          : agent.slice(0, 40);
  return session.method.startsWith("external:") ? `${browser} (via ${session.method.slice(9)})` : browser;
}

function PasswordSection() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setDone(false);
    if (next !== repeat) {
      setError("the two new passwords differ");
      return;
    }
    try {
      await api.post("/api/v1/auth/password", { body: { current_password: current, new_password: next } });
      setDone(true);
      setCurrent("");
      setNext("");
      setRepeat("");
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <section className="account-section" aria-labelledby="password-title">
      <h2 id="password-title">Password</h2>
      <p className="muted">Changing it signs out every other browser and program session.</p>
      <form className="stack-form" onSubmit={submit}>
        <label>
          Current password
          <input type="password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        </label>
        <label>
          New password
          <input type="password" autoComplete="new-password" required minLength={8} value={next} onChange={(e) => setNext(e.target.value)} />
        </label>
        <label>
          New password again
          <input type="password" autoComplete="new-password" required minLength={8} value={repeat} onChange={(e) => setRepeat(e.target.value)} />
        </label>
        <div>
          <button type="submit" className="primary">Change password</button>
        </div>
        {error && <p className="error" role="alert">{error}</p>}
        {done && <p className="notice-ok" role="status">Password changed. Your other sessions were signed out.</p>}
      </form>
    </section>
  );
}

function SessionsSection() {
  const [sessions, setSessions] = useState<SessionPublic[]>([]);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const page = await api.get("/api/v1/auth/sessions", { query: { limit: 100 } });
      // This browser first, then the others newest first.
      setSessions([...page.items].sort((a, b) => Number(b.current) - Number(a.current)));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function end(session: SessionPublic) {
    setError(null);
    try {
      await api.delete("/api/v1/auth/sessions/{session_id}", { path: { session_id: session.id } });
      await load();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <section className="account-section" aria-labelledby="sessions-title">
      <h2 id="sessions-title">Signed-in sessions</h2>
      <p className="muted">Browsers and programs signed in to your account. End any you do not recognise.</p>
      {error && <p className="error" role="alert">{error}</p>}
      <table className="list" aria-label="Sessions">
        <thead>
          <tr><th>Where</th><th>Address</th><th>Signed in</th><th>Last seen</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {sessions.map((session) => (
            <tr key={session.id}>
              <td>
                {describeSession(session)}{" "}
                {session.current && <span className="state-pill current">this browser</span>}
              </td>
              <td>{session.ip ?? "unknown"}</td>
              <td>{new Date(session.created_at).toLocaleString()}</td>
              <td>{new Date(session.last_seen_at).toLocaleString()}</td>
              <td>
                {!session.current && (
                  <div className="row-actions">
                    <button type="button" className="danger" onClick={() => void end(session)} aria-label={`End session ${describeSession(session)} from ${session.ip ?? "unknown"}`}>
                      End
                    </button>
                  </div>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <p className="muted">To end this browser's session, use Sign out at the top of the page.</p>
    </section>
  );
}

export function AccountPage() {
  const user = useAuth((s) => s.user);
  return (
    <section className="page" aria-labelledby="account-title">
      <h1 id="account-title">Account</h1>
      {user && (
        <p className="muted">
          Signed in as <strong>{user.email}</strong>{user.role === "admin" ? " (administrator)" : ""}.
        </p>
      )}
      <div className="account-section link-card">
        <div>
          <h2>Plan and usage</h2>
          <span className="muted">Your plan, this month's runs and tokens against its limits, credits.</span>
        </div>
        <Link to="/plan">See your plan</Link>
      </div>
      <div className="account-grid">
        <PasswordSection />
        <SessionsSection />
      </div>
      <OAuthConnectionsSection />
      <div className="account-section link-card">
        <div>
          <h2>Workflow memory</h2>
          <span className="muted">What your workflows remember between runs; inspect and forget it.</span>
        </div>
        <Link to="/memory">Open memory</Link>
      </div>
      <section className="account-section" aria-labelledby="account-keys-title">
        <h2 id="account-keys-title">API keys</h2>
        <ApiKeysPanel />
      </section>
    </section>
  );
}
