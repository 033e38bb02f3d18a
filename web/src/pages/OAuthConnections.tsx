import { useCallback, useEffect, useState } from "react";
import { Link, useSearchParams } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import "./admin.css";

type Connection = components["schemas"]["OAuthConnectionPublic"];

/**
 * The account's OAuth connections: connect (off to the provider, back to this page with the
 * outcome in the address), and disconnect, which revokes the tokens at the provider where it
 * supports revocation and says so.
 */
export function OAuthConnectionsSection() {
  const [params, setParams] = useSearchParams();
  const [connections, setConnections] = useState<Connection[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setConnections((await api.get("/api/v1/oauth/connections", { query: { limit: 100 } })).items);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  // Back from the provider: say how it went, once, then tidy the address.
  useEffect(() => {
    const outcome = params.get("oauth");
    if (!outcome) return;
    if (outcome === "connected") {
      const id = params.get("connection");
      const name = connections.find((c) => c.id === id)?.name;
      if (id && !name && connections.length === 0) return; // wait for the list to name it
      setNotice(`Connected${name ? ` ${name}` : ""}: workflows can use it now.`);
    } else {
      setError(`The connection was not made: ${params.get("message") ?? "the provider did not authorize it"}`);
    }
    // The section is below the fold: bring the outcome into view.
    window.setTimeout(() => document.getElementById("oauth-title")?.scrollIntoView({ block: "start" }), 0);
    const next = new URLSearchParams(params);
    for (const key of ["oauth", "connection", "message"]) next.delete(key);
    setParams(next, { replace: true });
  }, [params, setParams, connections]);

  async function connect(connection: Connection) {
    setError(null);
    setBusy(connection.id);
    try {
      const started = await api.post("/api/v1/oauth/connections/{connection_id}/authorize", {
        path: { connection_id: connection.id },
      });
      window.location.assign(started.authorization_url);
    } catch (caught) {
      setError(errorMessage(caught));
      setBusy(null);
    }
  }

  async function disconnect(connection: Connection) {
    if (!window.confirm(`Disconnect ${connection.name}? Workflows using it stop working.`)) return;
    setError(null);
    setNotice(null);
    setBusy(connection.id);
    try {
      const answer = await api.delete("/api/v1/oauth/connections/{connection_id}", {
        path: { connection_id: connection.id },
      });
      setConnections((old) => old.filter((c) => c.id !== connection.id));
      const how = {
        revoked: "its tokens were revoked at the provider",
        not_supported: "the provider offers no revocation, so its tokens were only forgotten here",
        no_tokens: "it held no tokens",
        failed: `the provider did not confirm the revocation (${answer.detail ?? "no answer"}); the tokens were forgotten here`,
      }[answer.revocation];
      setNotice(`Disconnected ${connection.name}: ${how}.`);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(null);
    }
  }

  return (
    <section className="account-section" aria-labelledby="oauth-title">
      <h2 id="oauth-title">Connected services</h2>
      <p className="muted">
        OAuth connections your workflows call services with (HTTP nodes). Register a new one on the <Link to="/integrations">Integrations</Link> page.
      </p>
      {error && <p className="banner-error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      {connections.length === 0 ? (
        <p className="muted">No connections yet.</p>
      ) : (
        <table className="list" aria-label="Connected services">
          <thead><tr><th>Name</th><th>Provider</th><th>State</th><th>Scopes</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {connections.map((c) => (
              <tr key={c.id} data-testid={`oauth-${c.name}`}>
                <td>{c.name}</td>
                <td>{c.provider}</td>
                <td>
                  {c.connected ? (
                    <span className="state-pill active">connected {c.token ? new Date(c.token.connected_at).toLocaleDateString() : ""}</span>
                  ) : (
                    <span className="state-pill disabled">not connected</span>
                  )}
                </td>
                <td>{c.scopes.join(" ") || "—"}</td>
                <td>
                  <div className="row-actions">
                    <button type="button" className="primary" disabled={busy === c.id} onClick={() => void connect(c)} aria-label={`${c.connected ? "Reconnect" : "Connect"} ${c.name}`}>
                      {c.connected ? "Reconnect" : "Connect"}
                    </button>
                    <button type="button" className="danger" disabled={busy === c.id} onClick={() => void disconnect(c)} aria-label={`Disconnect ${c.name}`}>
                      Disconnect
                    </button>
                  </div>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
