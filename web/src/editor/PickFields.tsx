/**
 * Fields whose value names something the user has, picked from a list rather than typed: a
 * model of the model table (any other name may still be written), another workflow, an MCP
 * server (an integration, or one written inline).
 */
import { useState, type ReactNode } from "react";
import { Link, useParams } from "react-router-dom";

import { RichText } from "../components/RichText";
import { Field } from "./ConfigPanel";
import { modelsFor, useIntegrations, useModels, useWorkflows, type ModelPublic } from "./lookups";
import { integrationIdOf, type FieldSpec } from "./schemaForm";
import { ObjectField } from "./StructuredFields";

export interface PickProps {
  field: FieldSpec;
  value: unknown;
  idPrefix: string;
  onChange: (value: unknown) => void;
  problems?: string[];
  /** The other settings of the same object (a model field reads its `provider`). */
  siblings?: Record<string, unknown>;
}

/** The option that reveals a box for a name the list does not have. */
const OTHER = "__another_model__";

function price(model: ModelPublic): string {
  if (model.price_per_image != null && Number(model.price_per_image) > 0) return `$${Number(model.price_per_image)} per image`;
  const input = Number(model.input_price_per_mtok);
  const output = Number(model.output_price_per_mtok);
  if (!input && !output) return "no price set";
  return `$${input} in / $${output} out per M tokens`;
}

function Help({ id, field, problems, children }: { id: string; field: FieldSpec; problems?: string[]; children?: ReactNode }) {
  return (
    <div id={id} className="help">
      {problems?.length ? <span className="error field-problem" data-testid="field-problem">{problems.join("; ")}</span> : null}
      {children}
      {!problems?.length && !children && field.description && <RichText text={field.description} />}
    </div>
  );
}

/** A model: one of the model table's (of the field's kind, at the chosen provider), or another
 * name written in. */
export function ModelField({ field, value, idPrefix, onChange, problems, siblings }: PickProps) {
  const id = `${idPrefix}-${field.key}`;
  const provider = typeof siblings?.provider === "string" ? siblings.provider : undefined;
  const { list, error, loading } = useModels();
  const models = modelsFor(list, field.modelKind, provider);
  const name = typeof value === "string" ? value : typeof field.default === "string" ? field.default : "";
  const known = models.find((m) => m.model === name);
  const [other, setOther] = useState(false);
  const writing = other || (!known && name !== "" && !loading);
  const availability = provider ? list?.providers.find((p) => p.name === provider) : undefined;
  return (
    <div className="field field-model" data-field={field.key}>
      <label htmlFor={id}>
        {field.label}
        {field.required && <span className="required-mark" aria-hidden="true" title="required"> *</span>}
      </label>
      <select
        id={id}
        value={writing ? OTHER : name}
        aria-invalid={problems?.length ? true : undefined}
        aria-describedby={`${id}-help`}
        onChange={(e) => {
          if (e.target.value === OTHER) {
            setOther(true);
          } else {
            setOther(false);
            onChange(e.target.value);
          }
        }}
      >
        {name === "" && !writing && <option value="">Choose a model…</option>}
        {models.map((m) => (
          <option key={`${m.provider}/${m.model}`} value={m.model}>
            {m.display_name}{m.display_name !== m.model ? ` (${m.model})` : ""}
          </option>
        ))}
        <option value={OTHER}>Another model (write its name)…</option>
      </select>
      {writing && (
        <input
          aria-label={`${field.label}: name at the provider`}
          className="model-other"
          value={name}
          placeholder="the model's name at the provider"
          autoFocus={other}
          onChange={(e) => onChange(e.target.value)}
        />
      )}
      <Help id={`${id}-help`} field={field} problems={problems}>
        {error ? (
          <span className="error">Could not list the models: {error}</span>
        ) : known ? (
          <span className="muted">{price(known)}{known.context_window ? ` · ${known.context_window.toLocaleString()} tokens of context` : ""}</span>
        ) : writing && name ? (
          <span className="muted">Not in this instance's model table{provider ? ` for ${provider}` : ""}: its calls are recorded at no price.</span>
        ) : models.length === 0 && !loading ? (
          <span className="muted">The model table has no {field.modelKind ? `${field.modelKind} ` : ""}model{provider ? ` for ${provider}` : ""}: write a name.</span>
        ) : null}
        {availability && !availability.configured && (
          <div className="warn">
            {provider} is not set up here: add a credential for it on the <Link to="/credentials">Credentials</Link> page.
          </div>
        )}
      </Help>
    </div>
  );
}

/** Another of the user's workflows, by id. */
export function WorkflowField({ field, value, idPrefix, onChange, problems }: PickProps) {
  const id = `${idPrefix}-${field.key}`;
  const { items, error, loading } = useWorkflows();
  const { workflowId } = useParams();
  const chosen = typeof value === "string" ? value : "";
  const unknown = chosen !== "" && !loading && !items.some((w) => w.id === chosen);
  const sorted = [...items].sort((a, b) => a.name.localeCompare(b.name));
  return (
    <div className="field field-workflow" data-field={field.key}>
      <label htmlFor={id}>
        {field.label.replace(/ id$/i, "")}
        {field.required && <span className="required-mark" aria-hidden="true" title="required"> *</span>}
      </label>
      <select
        id={id}
        value={chosen}
        aria-invalid={problems?.length || unknown ? true : undefined}
        aria-describedby={`${id}-help`}
        onChange={(e) => onChange(e.target.value === "" ? (field.nullable ? null : undefined) : e.target.value)}
      >
        <option value="">{loading ? "Loading your workflows…" : "Choose a workflow…"}</option>
        {sorted.map((w) => (
          <option key={w.id} value={w.id}>
            {w.name}{w.id === workflowId ? " (this workflow)" : ""}{w.valid ? "" : " (has problems)"}
          </option>
        ))}
        {unknown && <option value={chosen}>{chosen} (not one of yours)</option>}
      </select>
      <Help id={`${id}-help`} field={field} problems={problems}>
        {error ? <span className="error">Could not list your workflows: {error}</span> : null}
        {chosen && !unknown && (
          <Link to={`/workflows/${chosen}`} target="_blank" rel="noreferrer">Open it in a new tab</Link>
        )}
        {!chosen && field.description && <RichText text={field.description} />}
      </Help>
    </div>
  );
}

const INLINE = "";

/** An MCP server: one of the user's integrations, or a server written inline (a form). */
export function ServerField({ field, value, idPrefix, onChange }: PickProps) {
  const { items, error, loading } = useIntegrations();
  const chosen = integrationIdOf(value);
  const id = `${idPrefix}-${field.key}-integration`;
  return (
    <div className="field-group">
      <div className="field">
        <label htmlFor={id}>Server (integration)</label>
        <select
          id={id}
          value={chosen ?? INLINE}
          onChange={(e) => onChange(e.target.value === INLINE ? undefined : e.target.value)}
          aria-describedby={`${id}-help`}
        >
          <option value={INLINE}>Written inline (below)</option>
          {items.map((integration) => (
            <option key={integration.id} value={integration.id}>
              {integration.name} ({integration.transport}{integration.enabled ? "" : ", disabled"})
            </option>
          ))}
          {chosen && !items.some((i) => i.id === chosen) && <option value={chosen}>{loading ? chosen : `${chosen} (not one of yours)`}</option>}
        </select>
        <div id={`${id}-help`} className="help">
          {error ? (
            <span className="error">Could not list your integrations: {error}</span>
          ) : items.length === 0 && !loading ? (
            <>Register MCP servers on the <Link to="/integrations">Integrations</Link> page, or write one inline.</>
          ) : (
            "One of your MCP servers (Integrations page), or a server written inline."
          )}
        </div>
      </div>
      {!chosen &&
        (field.objectVariant ? (
          <ObjectField field={{ ...field.objectVariant, label: "Server written inline", nullable: false, required: true }} value={value} idPrefix={idPrefix} onChange={onChange} />
        ) : (
          <Field field={field} value={value} idPrefix={idPrefix} onChange={onChange} />
        ))}
    </div>
  );
}
