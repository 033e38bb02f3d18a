/** The example workflows every account may start from: a card each, "Use" saves a copy. */
import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import type { NodeTypePublic } from "../api/types";
import NodeIcon from "../components/NodeIcon";
import "./ops.css";

type Template = components["schemas"]["TemplatePublic"];
type Kinds = Record<string, NodeTypePublic>;

/** The templates as last fetched: they change only with a release, so a gallery shown again
 * (the list reloading, a page visited twice) shows them at once and refreshes behind. */
let lastFetched: Template[] | null = null;
/** The node types, by type id, to name a template's kinds of node as the palette does. */
let kindsFetched: Kinds | null = null;

export function TemplateGallery({ heading }: { heading: string }) {
  const navigate = useNavigate();
  const [templates, setTemplates] = useState<Template[] | null>(lastFetched);
  const [kinds, setKinds] = useState<Kinds>(kindsFetched ?? {});
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
    // Without them the cards show the type ids: no error of their own.
    api
      .get("/api/v1/node-types")
      .then((answer) => {
        kindsFetched = Object.fromEntries(answer.items.map((spec) => [spec.type, spec]));
        setKinds(kindsFetched);
      })
      .catch(() => undefined);
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
              {template.nodes} nodes
              {template.calls.length > 0 && ` · also saves ${template.calls.map((c) => c.replace(/_/g, " ")).join(", ")}`}
            </p>
            <ul className="template-kinds" aria-label={`Kinds of node in ${template.name}`}>
              {template.node_types.map((type) => {
                const spec = kinds[type];
                return (
                  <li key={type} title={type} data-node-type={type}>
                    <NodeIcon icon={spec?.icon} category={spec?.category} color={spec?.color} size={12} />
                    {spec?.display_name ?? type}
                  </li>
                );
              })}
            </ul>
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
