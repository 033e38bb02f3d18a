import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import { usePaged } from "../components/usePaged";
import type { WorkflowSummary } from "../api/types";
import { ImportWorkflow } from "./ImportWorkflow";
import { TemplateGallery } from "./Templates";

const EMPTY_DEFINITION = { schema_version: 1, nodes: [], edges: [] };

export function WorkflowsPage() {
  const navigate = useNavigate();
  const [search, setSearch] = useState("");
  // The search waits for a pause in typing.
  const list = usePaged<WorkflowSummary>(
    (cursor) => api.get("/api/v1/workflows", { query: { search: search || undefined, cursor, limit: 20 } }),
    search,
    200,
  );
  const { items, setItems, loading } = list;
  const [actionError, setError] = useState<string | null>(null);
  const error = actionError ?? list.error;
  const [name, setName] = useState("");
  const [panel, setPanel] = useState<"import" | "templates" | null>(null);


  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      const made = await api.post("/api/v1/workflows", {
        body: { name: name.trim() || "Untitled workflow", definition: EMPTY_DEFINITION },
      });
      navigate(`/workflows/${made.id}`);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function duplicate(item: WorkflowSummary) {
    try {
      const full = await api.get("/api/v1/workflows/{workflow_id}", { path: { workflow_id: item.id } });
      await api.post("/api/v1/workflows", {
        body: { name: `${full.name} (copy)`, definition: full.definition, description: full.description },
      });
      list.reload();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function exportFile(item: WorkflowSummary) {
    try {
      const document = await api.get("/api/v1/workflows/{workflow_id}/export", { path: { workflow_id: item.id } });
      const blob = new Blob([JSON.stringify(document, null, 2)], { type: "application/json" });
      const link = window.document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `${item.name.replace(/[\\/:*?"<>|]+/g, "_")}.json`;
      link.click();
      window.setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function remove(item: WorkflowSummary) {
    if (!window.confirm(`Delete "${item.name}"? Its runs stay in the history.`)) return;
    try {
      await api.delete("/api/v1/workflows/{workflow_id}", { path: { workflow_id: item.id } });
      setItems((old) => old.filter((w) => w.id !== item.id));
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <section className="page" aria-labelledby="workflows-title">
      <h1 id="workflows-title">Workflows</h1>
      <div className="toolbar-row">
        <form onSubmit={create} className="inline-form">
          <label>
            New workflow
            <input placeholder="Name" value={name} onChange={(e) => setName(e.target.value)} />
          </label>
          <button type="submit" className="primary">Create</button>
        </form>
        <Link to="/generate" className="button-link">Describe a workflow…</Link>
        <button type="button" aria-expanded={panel === "import"} onClick={() => setPanel(panel === "import" ? null : "import")}>Import…</button>
        <button type="button" aria-expanded={panel === "templates"} onClick={() => setPanel(panel === "templates" ? null : "templates")}>Templates…</button>
        <label className="search">
          Search
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="Name or description" />
        </label>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {panel === "import" && <ImportWorkflow onClose={() => setPanel(null)} />}
      {panel === "templates" && <TemplateGallery heading="Start from a template" />}
      <table className="list">
        <thead>
          <tr><th>Name</th><th>Version</th><th>Valid</th><th>Updated</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {items.map((item) => (
            <tr key={item.id}>
              <td>
                <Link to={`/workflows/${item.id}`}>{item.name}</Link>
                {item.description && <div className="muted">{item.description}</div>}
              </td>
              <td>v{item.version}</td>
              <td>{item.valid ? "yes" : <span className="warn">draft with problems</span>}</td>
              <td>{new Date(item.updated_at).toLocaleString()}</td>
              <td className="actions">
                <button type="button" onClick={() => navigate(`/workflows/${item.id}/triggers`)} aria-label={`Triggers of ${item.name}`}>Triggers</button>
                <button type="button" onClick={() => void exportFile(item)} aria-label={`Export ${item.name}`}>Export</button>
                <button type="button" onClick={() => void duplicate(item)} aria-label={`Duplicate ${item.name}`}>Duplicate</button>
                <button type="button" className="danger" onClick={() => void remove(item)} aria-label={`Delete ${item.name}`}>Delete</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {!loading && items.length === 0 && <p className="muted">{search ? "No workflow matches." : "No workflows yet: create one above, or start from a template."}</p>}
      {list.loaded && items.length === 0 && !search && panel !== "templates" && <TemplateGallery heading="Templates" />}
      {loading && <p role="status">Loading…</p>}
      {list.hasMore && !loading && <button type="button" onClick={list.loadMore}>Load more</button>}
    </section>
  );
}
