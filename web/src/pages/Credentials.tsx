/**
 * Credentials: secrets sealed on the server and used by nodes by name. The value is sent once
 * (create, or replace) and never shown again: this page never holds one after sending it.
 */
import { useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { CredentialKind, CredentialPublic } from "../api/types";
import { forgetLookups } from "../editor/lookups";

const KINDS: { kind: CredentialKind; label: string; hint: string }[] = [
  { kind: "api_key", label: "API key", hint: "A model provider's key (set the provider: openai, gemini, anthropic)." },
  { kind: "bearer_token", label: "Bearer token", hint: "Sent as Authorization: Bearer … by HTTP nodes." },
  { kind: "basic_auth", label: "Basic auth", hint: "user:password for HTTP basic authentication." },
  { kind: "header", label: "Header value", hint: "The value of a header such as X-Api-Key." },
  { kind: "secret", label: "Other secret", hint: "Any other secret string." },
];

function when(at: string | null | undefined): string {
  return at ? new Date(at).toLocaleString() : "never";
}

export function CredentialsPage() {
  const list = usePaged<CredentialPublic>((cursor) => api.get("/api/v1/credentials", { query: { cursor, limit: 50 } }), "");
  const { items, setItems } = list;
  const [actionError, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [kind, setKind] = useState<CredentialKind>("api_key");
  const [provider, setProvider] = useState("");
  const [value, setValue] = useState("");
  const [replacing, setReplacing] = useState<string | null>(null);
  const [newValue, setNewValue] = useState("");

  const error = actionError ?? list.error;

  async function create(event: FormEvent) {
    event.preventDefault();
    setError(null);
    setStatus(null);
    try {
      const made = await api.post("/api/v1/credentials", {
        body: { name: name.trim(), kind, value, provider: provider.trim() || null },
      });
      // The value leaves this page with the request: nothing keeps it.
      setValue("");
      setName("");
      setProvider("");
      forgetLookups();
      setStatus(`Saved "${made.name}". Its value is sealed: it will not be shown again.`);
      list.reload();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function replace(event: FormEvent, credential: CredentialPublic) {
    event.preventDefault();
    setError(null);
    try {
      await api.put("/api/v1/credentials/{credential_name}/value", {
        path: { credential_name: credential.name },
        body: { value: newValue },
      });
      setNewValue("");
      setReplacing(null);
      setStatus(`Replaced the value of "${credential.name}".`);
      list.reload();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function remove(credential: CredentialPublic) {
    if (!window.confirm(`Delete the credential "${credential.name}"? Nodes that name it will fail until you add it again.`)) return;
    setError(null);
    try {
      await api.delete("/api/v1/credentials/{credential_name}", { path: { credential_name: credential.name } });
      setItems((old) => old.filter((c) => c.id !== credential.id));
      forgetLookups();
      setStatus(`Deleted "${credential.name}".`);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  const hint = KINDS.find((k) => k.kind === kind)?.hint;
  return (
    <section className="page" aria-labelledby="credentials-title">
      <h1 id="credentials-title">Credentials</h1>
      <p className="muted">
        Secrets your nodes use by name (a node's <code>credential</code> setting). A value is sealed when you
        save it and never shown again; you can replace it.
      </p>
      <form onSubmit={create} className="card" aria-labelledby="new-credential">
        <h2 id="new-credential">New credential</h2>
        <label>
          Name
          <input required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} placeholder="openai-work" autoComplete="off" />
        </label>
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind(e.target.value as CredentialKind)} aria-describedby="kind-hint">
            {KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>{k.label}</option>
            ))}
          </select>
        </label>
        <span id="kind-hint" className="hint">{hint}</span>
        <label>
          Provider (optional)
          <input maxLength={64} value={provider} onChange={(e) => setProvider(e.target.value)} list="credential-providers" autoComplete="off" />
          <datalist id="credential-providers">
            <option value="openai" />
            <option value="gemini" />
            <option value="anthropic" />
          </datalist>
        </label>
        <label>
          Value
          <input required type="password" autoComplete="new-password" value={value} onChange={(e) => setValue(e.target.value)} />
        </label>
        <button type="submit" className="primary">Save credential</button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {status && <p className="status-line" role="status">{status}</p>}
      <table className="list" aria-label="Your credentials">
        <thead>
          <tr><th>Name</th><th>Kind</th><th>Provider</th><th>Updated</th><th>Last used</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {items.map((credential) => (
            <tr key={credential.id}>
              <td><code>{credential.name}</code></td>
              <td>{KINDS.find((k) => k.kind === credential.kind)?.label ?? credential.kind}</td>
              <td>{credential.provider ?? "—"}</td>
              <td>{when(credential.updated_at)}</td>
              <td>{when(credential.last_used_at)}</td>
              <td>
                {replacing === credential.id ? (
                  <form className="inline-form" onSubmit={(e) => void replace(e, credential)}>
                    <label>
                      <span className="sr-only">New value of {credential.name}</span>
                      <input required type="password" autoComplete="new-password" autoFocus value={newValue} onChange={(e) => setNewValue(e.target.value)} placeholder="New value" />
                    </label>
                    <button type="submit" className="primary">Replace</button>
                    <button type="button" onClick={() => { setReplacing(null); setNewValue(""); }}>Cancel</button>
                  </form>
                ) : (
                  <span className="actions-inline">
                    <button type="button" onClick={() => { setReplacing(credential.id); setNewValue(""); }} aria-label={`Replace the value of ${credential.name}`}>Replace value</button>
                    <button type="button" className="danger" onClick={() => void remove(credential)} aria-label={`Delete ${credential.name}`}>Delete</button>
                  </span>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {items.length === 0 && !error && <p className="muted">No credentials yet.</p>}
      {list.hasMore && <button type="button" disabled={list.loading} onClick={list.loadMore}>Load more</button>}
    </section>
  );
}
