/** The form of the selected node, generated from its type's config JSON Schema. */
import { useEffect, useMemo, useState, type ReactNode } from "react";
import { Link } from "react-router-dom";

import { imagesIn } from "../api/images";
import type { JsonSchema, RunScope } from "../api/types";
import { ImageThumb } from "../components/ImageThumb";
import { ImageUpload } from "../components/ImageUpload";
import NodeIcon from "../components/NodeIcon";
import { RichText } from "../components/RichText";
import { useCredentials, useMcpTools } from "./lookups";
import { fieldsFor, fromInput, integrationIdOf, lookupFor, spacesOnly, toInput, type FieldSpec } from "./schemaForm";
import { ServerField } from "./PickFields";
import { AnyField } from "./StructuredFields";
import { isAnnotation } from "./annotations";
import { AnnotationPanel } from "./AnnotationViews";
import { portsFor } from "./ports";
import { api, errorMessage } from "../api/client";
import { presetsChanged } from "./Palette";
import { editorStore, useEditor } from "./store";

/** Values a text field offers (a datalist: the person may still type another). */
export interface Suggestion {
  value: string;
  label?: string;
}

interface FieldProps {
  field: FieldSpec;
  value: unknown;
  idPrefix: string;
  onChange: (value: unknown) => void;
  suggestions?: Suggestion[];
  /** Shown under the field, after its description. */
  note?: ReactNode;
  /** What the server's validation says of this field. */
  problems?: string[];
}

/** One input; it keeps what was typed until it parses, and says what is wrong meanwhile. */
export function Field({ field, value, idPrefix, onChange, suggestions, note, problems }: FieldProps) {
  const shown = toInput(field, value);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  // A change from outside (undo, another node) replaces what is in the box; what was typed and
  // still means the same value stays as typed.
  useEffect(() => {
    setText((typed) => {
      const parsed = fromInput(field, typed);
      return parsed.ok && JSON.stringify(parsed.value) === JSON.stringify(value) ? typed : shown;
    });
    setError(null);
    // Only a new value from outside resets the box; `field` and `value` come with it.
  }, [shown]);
  const id = `${idPrefix}-${field.key}`;
  const problem = !error && problems?.length ? problems.join("; ") : null;
  const invalid = Boolean(error || problem);
  const described = field.description || error || note || problem || field.escapes ? `${id}-help` : undefined;

  const commit = (raw: string | boolean) => {
    const parsed = fromInput(field, raw);
    if (parsed.ok) {
      setError(null);
      onChange(parsed.value);
    } else {
      setError(`${field.label} ${parsed.error}`);
    }
  };

  let control;
  switch (field.kind) {
    case "boolean":
      control = (
        <input id={id} type="checkbox" checked={Boolean(value ?? field.default)} onChange={(e) => commit(e.target.checked)} aria-describedby={described} />
      );
      break;
    case "enum":
      control = (
        <select id={id} value={(value ?? field.default) == null ? "" : JSON.stringify(value ?? field.default)} onChange={(e) => commit(e.target.value)} aria-describedby={described}>
          {(field.nullable || (value ?? field.default) === undefined) && <option value="">—</option>}
          {field.options.map((option) => (
            <option key={JSON.stringify(option)} value={JSON.stringify(option)}>{String(option)}</option>
          ))}
          {/* A saved value that is not one of the choices shows as itself, not as the first choice. */}
          {value != null && !field.options.some((o) => JSON.stringify(o) === JSON.stringify(value)) && (
            <option value={JSON.stringify(value)}>{String(value)} (not allowed)</option>
          )}
        </select>
      );
      break;
    case "text":
    case "json":
    case "object-list":
      control = (
        <textarea
          id={id}
          rows={field.kind === "text" ? 4 : 3}
          value={text}
          spellCheck={field.kind === "text"}
          aria-invalid={invalid ? true : undefined}
          aria-describedby={described}
          onChange={(e) => {
            setText(e.target.value);
            if (field.kind === "text") commit(e.target.value);
          }}
          onBlur={() => field.kind !== "text" && commit(text)}
        />
      );
      break;
    default:
      control = (
        <input
          id={id}
          type="text"
          inputMode={field.kind === "number" || field.kind === "integer" ? "decimal" : undefined}
          list={suggestions ? `${id}-options` : undefined}
          autoComplete={suggestions ? "off" : undefined}
          value={text}
          aria-invalid={invalid ? true : undefined}
          aria-required={field.required || undefined}
          aria-describedby={described}
          onChange={(e) => {
            setText(e.target.value);
            commit(e.target.value);
          }}
        />
      );
  }
  return (
    <div className={`field field-${field.kind}`}>
      <label htmlFor={id}>
        {field.label}
        {field.required && <span className="required-mark" aria-hidden="true" title="required"> *</span>}
      </label>
      {control}
      {suggestions && (
        <datalist id={`${id}-options`}>
          {suggestions.map((s) => (
            <option key={s.value} value={s.value}>{s.label}</option>
          ))}
        </datalist>
      )}
      {(field.description || error || note || problem || field.escapes) && (
        <div id={`${id}-help`} className="help">
          {error && <span className="error" role="alert">{error}</span>}
          {problem && <span className="error field-problem" data-testid="field-problem">{problem}</span>}
          {field.description && !error && !problem && <RichText text={field.description} />}
          {field.escapes && !error && <div>Write <code>\n</code> for a line break, <code>\t</code> for a tab.</div>}
          {field.escapes && !error && spacesOnly(text) && <div className="holds" data-testid="field-holds">Holds {spacesOnly(text)}.</div>}
          {note && <div>{note}</div>}
        </div>
      )}
      {field.kind === "object-list" && field.itemFields && (
        <div className="help">Each item: {field.itemFields.map((f) => `${f.key}${f.required ? "*" : ""}: ${f.kind === "enum" ? f.options.join("|") : f.kind}`).join(", ")}</div>
      )}
    </div>
  );
}

interface ConfigFieldProps {
  nodeType: string;
  problems?: string[];
  field: FieldSpec;
  config: Record<string, unknown>;
  idPrefix: string;
  onChange: (value: unknown) => void;
}

/** A field of a node's form, with what it may name offered (credentials, integrations, tools). */
function ConfigField(props: ConfigFieldProps) {
  switch (lookupFor(props.nodeType, props.field)) {
    case "credentials":
      return <CredentialField {...props} />;
    case "integrations":
      return <ServerField field={props.field} value={props.config[props.field.key]} idPrefix={props.idPrefix} onChange={props.onChange} />;
    case "mcp-tools":
      return <ToolField {...props} />;
    default:
      return (
        <AnyField field={props.field} value={props.config[props.field.key]} idPrefix={props.idPrefix} onChange={props.onChange} problems={props.problems} siblings={props.config} />
      );
  }
}

function CredentialField({ field, config, idPrefix, onChange }: ConfigFieldProps) {
  const { items, error } = useCredentials();
  const suggestions = items.map((c) => ({ value: c.name, label: c.provider ? `${c.kind} · ${c.provider}` : c.kind }));
  const value = config[field.key];
  const unknown = typeof value === "string" && value !== "" && items.length > 0 && !items.some((c) => c.name === value);
  const note = error ? (
    <span className="error">Could not list your credentials: {error}</span>
  ) : items.length === 0 ? (
    <>You have no credentials yet: add one on the <Link to="/credentials">Credentials</Link> page.</>
  ) : unknown ? (
    <span className="warn">You have no credential named “{value}”.</span>
  ) : (
    <>One of your {items.length} credential{items.length > 1 ? "s" : ""} (type to filter).</>
  );
  return <Field field={field} value={value} idPrefix={idPrefix} onChange={onChange} suggestions={suggestions} note={note} />;
}

/** mcp.tool's tool: offers the chosen integration's tools, and says what the chosen one takes. */
function ToolField({ field, config, idPrefix, onChange }: ConfigFieldProps) {
  const integrationId = integrationIdOf(config.server);
  const { items, error, loading } = useMcpTools(integrationId);
  const value = config[field.key];
  const tool = items.find((t) => t.name === value);
  const note = !integrationId ? null : error ? (
    <span className="error">Could not list the server's tools: {error}</span>
  ) : loading ? (
    "Asking the server for its tools…"
  ) : tool ? (
    <details className="tool-info">
      <summary>{tool.description || "No description."}</summary>
      <pre className="json">{JSON.stringify(tool.input_schema, null, 2)}</pre>
    </details>
  ) : (
    `The server has ${items.length} tool${items.length === 1 ? "" : "s"}: ${items.map((t) => t.name).join(", ")}`
  );
  const suggestions = integrationId ? items.map((t) => ({ value: t.name, label: t.description.slice(0, 80) })) : undefined;
  return <Field field={field} value={value} idPrefix={idPrefix} onChange={onChange} suggestions={suggestions} note={note} />;
}

async function saveAsPreset(nodeType: string, config: Record<string, unknown>, label: string): Promise<void> {
  const name = window.prompt("Name of the preset (shown in the palette):", label);
  if (!name?.trim()) return;
  try {
    await api.post("/api/v1/node-templates", { body: { name: name.trim(), node_type: nodeType, config } });
    presetsChanged();
    editorStore.getState().notify("info", `Saved the preset "${name.trim()}": it is in the palette.`);
  } catch (error) {
    editorStore.getState().notify("error", `Preset not saved: ${errorMessage(error)}`);
  }
}

/** The image outputs of the shown run, as thumbnails that open full size. */
function OutputImages({ outputs, testId = "run-images" }: { outputs: Record<string, unknown>; testId?: string }) {
  const shown = Object.entries(outputs).flatMap(([name, value]) => {
    const images = imagesIn(value);
    return images.map((image, i) => ({ image, name: images.length > 1 ? `${name}[${i}]` : name }));
  });
  if (shown.length === 0) return null;
  return (
    <div className="thumbs run-images" data-testid={testId}>
      {shown.map(({ image, name }) => (
        <figure key={name}>
          <ImageThumb image={image} name={name} size={120} />
          <figcaption>{name}</figcaption>
        </figure>
      ))}
    </div>
  );
}

interface ConfigPanelProps {
  /** Run `scope` about `nodeId`; with `usePinned`, pinned outputs stand in for their nodes. */
  onRun: (scope: RunScope, nodeId: string, usePinned: boolean) => void;
  canRun: boolean;
}

/** A node's values (inputs received, outputs given, or pinned) as a titled block. */
function Values({ title, values, testId, imagesTestId, children }: { title: string; values: Record<string, unknown>; testId: string; imagesTestId?: string; children?: ReactNode }) {
  return (
    <details open data-testid={testId} className="node-values">
      <summary>{title}</summary>
      {children}
      <OutputImages outputs={values} testId={imagesTestId ?? `${testId}-images`} />
      <pre className="json">{JSON.stringify(values, null, 2)}</pre>
    </details>
  );
}

export function ConfigPanel({ onRun, canRun }: ConfigPanelProps) {
  const selectedIds = useEditor((s) => s.nodes.filter((n) => n.selected).map((n) => n.id).join(","));
  const node = useEditor((s) => (selectedIds && !selectedIds.includes(",") ? s.nodes.find((n) => n.id === selectedIds) : undefined));
  const spec = useEditor((s) => (node ? s.nodeTypes[node.type!] : undefined));
  const problems = useEditor((s) => (node ? s.problems[node.id] : undefined));
  const fieldProblems = useEditor((s) => (node ? s.fieldProblems[node.id] : undefined));
  const view = useEditor((s) => (node ? s.runStates[node.id] : undefined));
  const updateConfig = useEditor((s) => s.updateConfig);
  const updateLabel = useEditor((s) => s.updateLabel);
  const breakpoint = useEditor((s) => (node ? s.breakpoints[node.id] === true : false));
  const pinnedCount = useEditor((s) => s.nodes.reduce((n, other) => n + (other.data.pinned ? 1 : 0), 0));
  const fields = useMemo(() => fieldsFor(spec?.config_schema as JsonSchema | undefined), [spec]);

  if (!selectedIds) return <p className="muted panel-hint">Select a node to edit its settings.</p>;
  if (!node) return <p className="muted panel-hint">{selectedIds.split(",").length} nodes selected.</p>;
  if (isAnnotation(node)) return <AnnotationPanel nodeId={node.id} />;
  const ports = portsFor(spec, node.data.config);
  const shownAtField = new Set(fields.flatMap((f) => fieldProblems?.[f.key] ?? []));
  return (
    <div className="config-panel" aria-label={`Settings of ${node.id}`}>
      <div className="panel-head">
        <NodeIcon icon={spec?.icon} category={spec?.category} color={spec?.color ?? "#64748b"} size={18} />
        <div>
          <h2>{node.data.label || node.id}</h2>
          <div className="muted small">
            {!spec ? "Unknown node type · " : spec.display_name !== node.data.label ? `${spec.display_name} · ` : ""}
            <code>{node.type}</code> · id <code>{node.id}</code>
          </div>
        </div>
      </div>
      {spec && <p className="muted node-description"><RichText text={spec.description} /></p>}
      <div className="field">
        <label htmlFor="node-label">Label</label>
        <input id="node-label" value={node.data.label ?? ""} onChange={(e) => updateLabel(node.id, e.target.value)} />
      </div>
      {fields.map((field) => (
        <ConfigField
          key={`${node.id}/${field.key}`}
          nodeType={node.type!}
          field={field}
          config={node.data.config}
          idPrefix={`cfg-${node.id}`}
          problems={fieldProblems?.[field.key]}
          onChange={(value) => updateConfig(node.id, field.key, value)}
        />
      ))}
      {node.type === "image.load" && (
        <ImageUpload
          sha256={typeof node.data.config.sha256 === "string" ? node.data.config.sha256 : undefined}
          onUploaded={(blob) => {
            // One source at a time: the uploaded image replaces a URL or pasted data.
            updateConfig(node.id, "url", undefined);
            updateConfig(node.id, "base64", undefined);
            updateConfig(node.id, "sha256", blob.sha256);
          }}
        />
      )}
      {ports.inputs.length > 0 && (
        <p className="muted">Inputs: {ports.inputs.map((p) => `${p.name} (${p.type}${p.is_list ? "[]" : ""}${p.required ? "" : ", optional"})`).join(", ")}</p>
      )}
      {/* Problems shown at their field are not repeated here. */}
      {problems?.some((p) => !shownAtField.has(p)) ? (
        <ul className="problems" aria-label="Problems">
          {problems.filter((p) => !shownAtField.has(p)).map((p) => <li key={p}>{p}</li>)}
        </ul>
      ) : null}
      <div className="button-row">
        <button type="button" disabled={!canRun} onClick={() => onRun("NODE", node.id, pinnedCount > 0)}>Run this node</button>
        <button type="button" disabled={!canRun} onClick={() => onRun("UPSTREAM", node.id, pinnedCount > 0)}>Run up to here</button>
        <button type="button" onClick={() => void saveAsPreset(node.type!, node.data.config, node.data.label || node.id)}>
          Save as preset
        </button>
        <button type="button" aria-pressed={breakpoint} onClick={() => editorStore.getState().toggleBreakpoint(node.id)} title="B">
          {breakpoint ? "Remove breakpoint" : "Add breakpoint"}
        </button>
      </div>
      {pinnedCount > 0 && (
        <p className="muted small pinned-hint">
          {pinnedCount === 1 ? "One node has" : `${pinnedCount} nodes have`} pinned outputs: “Run this node” and “Run up to here” use them instead of running those nodes.
        </p>
      )}
      {node.data.pinned && (
        <Values title="Pinned outputs (test data)" values={node.data.pinned} testId="pinned-outputs">
          <p className="muted small">Runs that use pinned data take these instead of running this node.</p>
          <div className="button-row">
            <button type="button" className="primary" disabled={!canRun} onClick={() => onRun("FULL", node.id, true)} title="Run the nodes after the pinned ones, fed with the pinned outputs">
              Run what follows
            </button>
            <button type="button" onClick={() => editorStore.getState().pin(node.id, null)}>Unpin</button>
          </div>
        </Values>
      )}
      {/* What the node received beside what it gave, in the shown run. */}
      <div className="io-pair">
        {view?.inputs && Object.keys(view.inputs).length > 0 && <Values title="Inputs it received" values={view.inputs} testId="inputs-received" imagesTestId="input-images" />}
        {view?.outputs && (
          <Values title="Outputs of the shown run" values={view.outputs} testId="outputs-given" imagesTestId="run-images">
            <div className="button-row">
              <button type="button" className="small-button" onClick={() => editorStore.getState().openViewer(node.id)}>Open in the viewer</button>
              <button
                type="button"
                className="small-button"
                onClick={() => editorStore.getState().pin(node.id, view.outputs)}
                title="Keep these outputs as test data: runs that use pinned data skip this node and take them"
              >
                {node.data.pinned ? "Pin these instead" : "Pin these outputs"}
              </button>
            </div>
          </Values>
        )}
      </div>
      {view?.error && (
        <details open>
          <summary>Error</summary>
          <pre className="json">{JSON.stringify(view.error, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
