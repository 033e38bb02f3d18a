import { useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { components } from "../api/schema.gen";
import type { ApiKeyCreated, ApiKeyPublic, ApiScope } from "../api/types";
import "./account.css";

type ApiKeyRotated = components["schemas"]["ApiKeyRotated"];

const SCOPES: { scope: ApiScope; label: string }[] = [
  { scope: "workflows:read", label: "Read workflows and runs" },
  { scope: "workflows:write", label: "Change workflows" },
  { scope: "runs:execute", label: "Start, cancel and answer runs" },
  { scope: "admin", label: "Everything, including keys" },
];

export function ApiKeysPage() {
  return (
    <section className="page" aria-labelledby="keys-title">
      <h1 id="keys-title">API keys</h1>
      <ApiKeysPanel />
    </section>
  );
}

/** Create, rotate and revoke the signed-in account's API keys (the Account page shows it too). */
export function ApiKeysPanel() {
  const list = usePaged<ApiKeyPublic>((cursor) => api.get("/api/v1/api-keys", { query: { cursor, limit: 20 } }), "");
  const keys = list.items;
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<ApiScope[]>(["workflows:read", "runs:execute"]);
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [rotated, setRotated] = useState<ApiKeyRotated | null>(null);
  const [actionError, setError] = useState<string | null>(null);
  const error = actionError ?? list.error;

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const key = await api.post("/api/v1/api-keys", { body: { name, scopes } });
      setRotated(null);
      setCreated(key);
      setName("");
      list.reload();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function rotate(key: ApiKeyPublic) {
    if (!window.confirm(`Rotate "${key.name}"? It gets a new secret; the old one keeps working for a while.`)) return;
    setError(null);
    try {
      const answer = await api.post("/api/v1/api-keys/{key_id}/rotate", { path: { key_id: key.id } });
      setCreated(null);
      setRotated(answer);
      list.reload();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function revoke(key: ApiKeyPublic) {
    if (!window.confirm(`Revoke "${key.name}"? Programs using it stop working at once.`)) return;
    try {
      const revoked = await api.delete("/api/v1/api-keys/{key_id}", { path: { key_id: key.id } });
      list.setItems((old) => old.map((k) => (k.id === key.id ? revoked : k)));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <div className="api-keys">
      <p className="muted">Programs send a key as <code>Authorization: Bearer flk_…</code>.</p>
      <form onSubmit={create} className="card">
        <label>
          Name
          <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <fieldset>
          <legend>Scopes</legend>
          {SCOPES.map(({ scope, label }) => (
            <label key={scope} className="check">
              <input
                type="checkbox"
                checked={scopes.includes(scope)}
                onChange={(e) => setScopes((old) => (e.target.checked ? [...old, scope] : old.filter((s) => s !== scope)))}
              />
              <code>{scope}</code> {label}
            </label>
          ))}
        </fieldset>
        <button type="submit" className="primary">Create key</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {created && (
        <div className="card secret" role="status">
          <p><strong>Copy this key now: it is shown only once.</strong></p>
          <code data-testid="new-key">{created.key}</code>
          <div>
            <button type="button" onClick={() => void navigator.clipboard?.writeText(created.key)}>Copy</button>
            <button type="button" onClick={() => setCreated(null)}>Done</button>
          </div>
        </div>
      )}
      {rotated && (
        <div className="secret-box" role="status" aria-label="Rotated key">
          <p><strong>New secret for “{rotated.name}”: copy it now, it is shown only once.</strong></p>
          <code data-testid="rotated-key">{rotated.key}</code>
          <p>
            {rotated.previous_valid_until
              ? `The old secret keeps working until ${new Date(rotated.previous_valid_until).toLocaleString()}; switch your programs before then.`
              : "The old secret stopped working now."}
          </p>
          <div>
            <button type="button" onClick={() => void navigator.clipboard?.writeText(rotated.key)}>Copy</button>
            <button type="button" onClick={() => setRotated(null)}>Done</button>
          </div>
        </div>
      )}
      <table className="list">
        <thead>
          <tr><th>Name</th><th>Prefix</th><th>Scopes</th><th>Last used</th><th>State</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {keys.map((key) => (
            <tr key={key.id}>
              <td>{key.name}</td>
              <td><code>{key.prefix}</code></td>
              <td>{key.scopes.join(", ")}</td>
              <td>{key.last_used_at ? new Date(key.last_used_at).toLocaleString() : "never"}</td>
              <td>{key.revoked_at ? "revoked" : key.active ? "active" : "inactive"}</td>
              <td>
                {!key.revoked_at && (
                  <div className="row-actions">
                    <button type="button" onClick={() => void rotate(key)} aria-label={`Rotate ${key.name}`}>Rotate</button>
                    <button type="button" className="danger" onClick={() => void revoke(key)} aria-label={`Revoke ${key.name}`}>Revoke</button>
                  </div>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Load more</button>}
    </div>
  );
}
