/** The example workflows every account may start from: a card each, "Use" saves a copy. */
import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import "./ops.css";

type Template = components["schemas"]["TemplatePublic"];

/** The templates as last fetched: they change only with a release, so a gallery shown again
 * (the list reloading, a page visited twice) shows them at once and refreshes behind. */
let lastFetched: Template[] | null = null;

export function TemplateGallery({ heading }: { heading: string }) {
  const navigate = useNavigate();
  const [templates, setTemplates] = useState<Template[] | null>(lastFetched);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);

  useEffect(() => {
    api
      .get("/api/v1/workflows/templates")
      .then((answer) => {
        lastFetched = answer.items;
        setTemplates(answer.items);
      })
      .catch((caught) => setError(errorMessage(caught)));
  }, []);

  async function use(template: Template) {
    setBusy(template.id);
    try {
      const used = await api.post("/api/v1/workflows/templates/{template_id}", { path: { template_id: template.id } });
      navigate(`/workflows/${used.workflow.id}`);
    } catch (caught) {
      setError(errorMessage(caught));
      setBusy(null);
    }
  }

  return (
    <section aria-label="Templates">
      <h2>{heading}</h2>
      {error && <p className="error" role="alert">{error}</p>}
      {templates === null && !error && <p role="status">Loading templates…</p>}
      <div className="gallery">
        {(templates ?? []).map((template) => (
          <article key={template.id} aria-label={template.name}>
            <h3>{template.name}</h3>
            <p>{template.summary}</p>
            <p className="hint">
              {template.nodes} nodes: {template.node_types.join(", ")}
              {template.calls.length > 0 && ` · also saves ${template.calls.map((c) => c.replace(/_/g, " ")).join(", ")}`}
            </p>
            <div>
              <button type="button" className="primary" disabled={busy !== null} onClick={() => void use(template)} aria-label={`Use the ${template.name} template`}>
                {busy === template.id ? "Saving…" : "Use"}
              </button>
            </div>
          </article>
        ))}
      </div>
    </section>
  );
}
