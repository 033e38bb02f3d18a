/** The form of the selected node, generated from its type's config JSON Schema. */
import { useEffect, useMemo, useState } from "react";

import type { RunScope } from "../api/types";
import { fieldsFor, fromInput, toInput, type FieldSpec } from "./schemaForm";
import { portsFor } from "./ports";
import { api, errorMessage } from "../api/client";
import { presetsChanged } from "./Palette";
import { editorStore, useEditor } from "./store";

interface FieldProps {
  field: FieldSpec;
  value: unknown;
  idPrefix: string;
  onChange: (value: unknown) => void;
}

/** One input; it keeps what was typed until it parses, and says what is wrong meanwhile. */
export function Field({ field, value, idPrefix, onChange }: FieldProps) {
  const shown = toInput(field, value);
  const [text, setText] = useState(shown);
  const [error, setError] = useState<string | null>(null);
  // A change from outside (undo, another node) replaces what is in the box.
  useEffect(() => {
    setText(shown);
    setError(null);
  }, [shown]);
  const id = `${idPrefix}-${field.key}`;
  const described = field.description || error ? `${id}-help` : undefined;

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
        <select id={id} value={value === undefined || value === null ? "" : JSON.stringify(value)} onChange={(e) => commit(e.target.value)} aria-describedby={described}>
          {(field.nullable || value === undefined) && <option value="">—</option>}
          {field.options.map((option) => (
            <option key={JSON.stringify(option)} value={JSON.stringify(option)}>{String(option)}</option>
          ))}
        </select>
      );
      break;
    case "text":
    case "json":
    case "object-list":
      control = (
        <textarea
          id={id}
          rows={field.kind === "text" ? 4 : 5}
          value={text}
          spellCheck={field.kind === "text"}
          aria-invalid={error ? true : undefined}
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
          value={text}
          aria-invalid={error ? true : undefined}
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
        {field.required && <span aria-label="required"> *</span>}
      </label>
      {control}
      {(field.description || error) && (
        <div id={`${id}-help`} className="help">
          {error && <span className="error" role="alert">{error}</span>}
          {field.description && !error && field.description}
        </div>
      )}
      {field.kind === "object-list" && field.itemFields && (
        <div className="help">Each item: {field.itemFields.map((f) => `${f.key}${f.required ? "*" : ""}: ${f.kind === "enum" ? f.options.join("|") : f.kind}`).join(", ")}</div>
      )}
    </div>
  );
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

interface ConfigPanelProps {
  onRun: (scope: RunScope, nodeId: string) => void;
  canRun: boolean;
}

export function ConfigPanel({ onRun, canRun }: ConfigPanelProps) {
  const selectedIds = useEditor((s) => s.nodes.filter((n) => n.selected).map((n) => n.id).join(","));
  const node = useEditor((s) => (selectedIds && !selectedIds.includes(",") ? s.nodes.find((n) => n.id === selectedIds) : undefined));
  const spec = useEditor((s) => (node ? s.nodeTypes[node.type!] : undefined));
  const problems = useEditor((s) => (node ? s.problems[node.id] : undefined));
  const view = useEditor((s) => (node ? s.runStates[node.id] : undefined));
  const updateConfig = useEditor((s) => s.updateConfig);
  const updateLabel = useEditor((s) => s.updateLabel);
  const breakpoint = useEditor((s) => (node ? s.breakpoints[node.id] === true : false));
  const fields = useMemo(() => fieldsFor(spec?.config_schema), [spec]);

  if (!selectedIds) return <p className="muted panel-hint">Select a node to edit its settings.</p>;
  if (!node) return <p className="muted panel-hint">{selectedIds.split(",").length} nodes selected.</p>;
  const ports = portsFor(spec, node.data.config);
  return (
    <div className="config-panel" aria-label={`Settings of ${node.id}`}>
      <h2>{node.data.label || node.id}</h2>
      <p className="muted">
        <code>{node.type}</code> · id <code>{node.id}</code>
      </p>
      {spec && <p className="muted">{spec.description.replace(/``/g, "`")}</p>}
      <div className="field">
        <label htmlFor="node-label">Label</label>
        <input id="node-label" value={node.data.label ?? ""} onChange={(e) => updateLabel(node.id, e.target.value)} />
      </div>
      {fields.map((field) => (
        <Field
          key={`${node.id}/${field.key}`}
          field={field}
          idPrefix={`cfg-${node.id}`}
          value={node.data.config[field.key]}
          onChange={(value) => updateConfig(node.id, field.key, value)}
        />
      ))}
      {ports.inputs.length > 0 && (
        <p className="muted">Inputs: {ports.inputs.map((p) => `${p.name} (${p.type}${p.is_list ? "[]" : ""}${p.required ? "" : ", optional"})`).join(", ")}</p>
      )}
      {problems?.length ? (
        <ul className="problems" aria-label="Problems">
          {problems.map((p) => <li key={p}>{p}</li>)}
        </ul>
      ) : null}
      <div className="button-row">
        <button type="button" disabled={!canRun} onClick={() => onRun("NODE", node.id)}>Run this node</button>
        <button type="button" disabled={!canRun} onClick={() => onRun("UPSTREAM", node.id)}>Run up to here</button>
        <button type="button" onClick={() => void saveAsPreset(node.type!, node.data.config, node.data.label || node.id)}>
          Save as preset
        </button>
        <button type="button" aria-pressed={breakpoint} onClick={() => editorStore.getState().toggleBreakpoint(node.id)} title="B">
          {breakpoint ? "Remove breakpoint" : "Add breakpoint"}
        </button>
      </div>
      {view?.outputs && (
        <details open>
          <summary>Outputs of the shown run</summary>
          <pre className="json">{JSON.stringify(view.outputs, null, 2)}</pre>
        </details>
      )}
      {view?.error && (
        <details open>
          <summary>Error</summary>
          <pre className="json">{JSON.stringify(view.error, null, 2)}</pre>
        </details>
      )}
    </div>
  );
}
