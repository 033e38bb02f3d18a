/**
 * A value of any JSON type edited by its kind: a type to pick (text, number, yes/no, list,
 * object, empty) and the editor that kind calls for, nesting for lists and objects. A "JSON"
 * view stays one click away for pasting a whole value.
 */
import { useEffect, useRef, useState } from "react";

import { RichText } from "../components/RichText";
import "./values.css";
import {
  convert,
  entriesOf,
  freshKey,
  kindOf,
  MAX_DEPTH,
  objectOfEntries,
  parseJson,
  parseNumber,
  repeatedKeys,
  VALUE_KINDS,
  type Entry,
  type ValueKind,
} from "./anyValue";
import type { FieldSpec } from "./schemaForm";

interface EditorProps {
  value: unknown;
  onChange: (value: unknown) => void;
  /** What the controls are called for a screen reader ("Operand", "Arguments › city"). */
  label: string;
  idPrefix: string;
  depth?: number;
  /** The value must be of this kind: no type to pick. */
  fixed?: "object" | "list";
}

function TextEditor({ value, onChange, label, idPrefix }: EditorProps) {
  const text = typeof value === "string" ? value : "";
  if (text.includes("\n") || text.length > 80) {
    return <textarea id={idPrefix} aria-label={label} rows={3} value={text} onChange={(e) => onChange(e.target.value)} />;
  }
  return <input id={idPrefix} aria-label={label} value={text} onChange={(e) => onChange(e.target.value)} />;
}

function NumberEditor({ value, onChange, label, idPrefix }: EditorProps) {
  const shown = typeof value === "number" ? String(value) : "";
  const [text, setText] = useState(shown);
  useEffect(() => setText((typed) => (parseNumber(typed) === value ? typed : shown)), [shown, value]);
  const bad = parseNumber(text) === null;
  return (
    <span className="value-number">
      <input
        id={idPrefix}
        aria-label={label}
        inputMode="decimal"
        value={text}
        aria-invalid={bad || undefined}
        onChange={(e) => {
          setText(e.target.value);
          const n = parseNumber(e.target.value);
          if (n !== null) onChange(n);
        }}
      />
      {bad && <span className="error" role="alert">not a number</span>}
    </span>
  );
}

function BooleanEditor({ value, onChange, label, idPrefix }: EditorProps) {
  return (
    <select id={idPrefix} aria-label={label} value={value === true ? "true" : "false"} onChange={(e) => onChange(e.target.value === "true")}>
      <option value="true">yes</option>
      <option value="false">no</option>
    </select>
  );
}

function ListEditor({ value, onChange, label, idPrefix, depth = 0 }: EditorProps) {
  const items = Array.isArray(value) ? value : [];
  const last = items.length > 0 ? items[items.length - 1] : "";
  return (
    <div className="value-list">
      {items.length > 0 && (
        <ol className="value-items">
          {items.map((item, i) => (
            <li key={i}>
              <ValueEditor
                value={item}
                label={`${label} › item ${i + 1}`}
                idPrefix={`${idPrefix}-${i}`}
                depth={depth + 1}
                onChange={(v) => onChange(items.map((old, j) => (j === i ? v : old)))}
              />
              <button type="button" className="icon-button value-remove" aria-label={`Remove ${label} › item ${i + 1}`} onClick={() => onChange(items.filter((_, j) => j !== i))}>
                ×
              </button>
            </li>
          ))}
        </ol>
      )}
      {/* A new item is of the kind of the last one: a list is usually of one kind. */}
      <button type="button" className="add-row" onClick={() => onChange([...items, convert(null, kindOf(last) === "null" ? "text" : kindOf(last))])}>
        + Add item
      </button>
    </div>
  );
}

function ObjectEditor({ value, onChange, label, idPrefix, depth = 0 }: EditorProps) {
  const [rows, setRows] = useState<Entry[]>(() => entriesOf(value));
  const sent = useRef(JSON.stringify(objectOfEntries(rows)));
  // A change from outside (undo, another node) replaces the rows; our own change does not.
  useEffect(() => {
    const now = JSON.stringify(value ?? {});
    if (now !== sent.current) {
      sent.current = now;
      setRows(entriesOf(value));
    }
  }, [value]);
  const update = (next: Entry[]) => {
    setRows(next);
    const object = objectOfEntries(next);
    sent.current = JSON.stringify(object);
    onChange(object);
  };
  const repeated = repeatedKeys(rows);
  return (
    <div className="value-object">
      {rows.length > 0 && (
        <ul className="value-entries">
          {rows.map((row, i) => (
            <li key={i}>
              <input
                className="value-key"
                aria-label={`${label}: name ${i + 1}`}
                value={row.key}
                placeholder="name"
                aria-invalid={(row.key.trim() === "" || repeated.has(row.key.trim())) || undefined}
                title={repeated.has(row.key.trim()) ? "This name is used twice: the later one is kept" : undefined}
                onChange={(e) => update(rows.map((r, j) => (j === i ? { ...r, key: e.target.value } : r)))}
              />
              <ValueEditor
                value={row.value}
                label={`${label} › ${row.key || `entry ${i + 1}`}`}
                idPrefix={`${idPrefix}-${i}`}
                depth={depth + 1}
                onChange={(v) => update(rows.map((r, j) => (j === i ? { ...r, value: v } : r)))}
              />
              <button type="button" className="icon-button value-remove" aria-label={`Remove ${label}: entry ${i + 1}`} onClick={() => update(rows.filter((_, j) => j !== i))}>
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <button type="button" className="add-row" onClick={() => update([...rows, { key: freshKey(rows), value: "" }])}>
        + Add entry
      </button>
    </div>
  );
}

/** The value as JSON text, applied when it parses (on leaving the box). */
function JsonEditor({ value, onChange, label, idPrefix }: EditorProps) {
  const [text, setText] = useState(() => JSON.stringify(value ?? null, null, 2));
  const [error, setError] = useState<string | null>(null);
  return (
    <div className="value-json">
      <textarea
        id={idPrefix}
        aria-label={`${label} as JSON`}
        rows={4}
        spellCheck={false}
        value={text}
        aria-invalid={error ? true : undefined}
        onChange={(e) => setText(e.target.value)}
        onBlur={() => {
          const parsed = parseJson(text);
          if (parsed.ok) {
            setError(null);
            onChange(parsed.value);
          } else setError(`${label} ${parsed.error}`);
        }}
      />
      {error && <span className="error" role="alert">{error}</span>}
    </div>
  );
}

/** A value with its type picker and the editor of its kind. */
export function ValueEditor(props: EditorProps) {
  const { value, onChange, label, depth = 0, fixed } = props;
  const kind = fixed ?? kindOf(value);
  const [asJson, setAsJson] = useState(false);
  const deep = depth >= MAX_DEPTH && (kind === "list" || kind === "object");
  let editor;
  if (asJson || deep) editor = <JsonEditor {...props} />;
  else if (kind === "text") editor = <TextEditor {...props} />;
  else if (kind === "number") editor = <NumberEditor {...props} />;
  else if (kind === "boolean") editor = <BooleanEditor {...props} />;
  else if (kind === "list") editor = <ListEditor {...props} />;
  else if (kind === "object") editor = <ObjectEditor {...props} />;
  else editor = <span className="muted value-empty">empty (null)</span>;
  return (
    <div className={`value-editor value-${kind}`} data-depth={depth}>
      <div className="value-head">
        {!fixed && (
          <select
            className="value-kind"
            aria-label={`${label}: type`}
            value={kind}
            onChange={(e) => onChange(convert(value, e.target.value as ValueKind))}
          >
            {VALUE_KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>{k.label}</option>
            ))}
          </select>
        )}
        {!asJson && !deep && kind !== "list" && kind !== "object" && editor}
        {depth === 0 && (
          <button
            type="button"
            className="small-button value-json-toggle"
            aria-pressed={asJson}
            aria-label={`Edit ${label} as JSON`}
            title={asJson ? "Back to the form" : "Edit (or paste) the whole value as JSON"}
            onClick={() => setAsJson(!asJson)}
          >
            {asJson ? "Form" : "JSON"}
          </button>
        )}
      </div>
      {(asJson || deep || kind === "list" || kind === "object") && <div className="value-body">{editor}</div>}
    </div>
  );
}

interface ValueFieldProps {
  field: FieldSpec;
  value: unknown;
  idPrefix: string;
  onChange: (value: unknown) => void;
  problems?: string[];
}

/** A setting that holds any value (or any object, or any list), with its label and help. */
export function ValueField({ field, value, idPrefix, onChange, problems }: ValueFieldProps) {
  const id = `${idPrefix}-${field.key}`;
  const current = value === undefined ? field.default : value;
  const unset = field.shape && (current === undefined || current === null);
  const help = (
    <div id={`${id}-help`} className="help">
      {problems?.length ? (
        <span className="error field-problem" data-testid="field-problem">{problems.join("; ")}</span>
      ) : (
        field.description && <RichText text={field.description} />
      )}
    </div>
  );
  return (
    <div className="field field-structured field-any" data-field={field.key}>
      <span className="field-title" id={`${id}-title`}>
        {field.label}
        {field.required && <span className="required-mark" aria-hidden="true" title="required"> *</span>}
        {field.shape && !unset && !field.required && (
          <button
            type="button"
            className="icon-button field-clear"
            aria-label={`Clear ${field.label.toLowerCase()}`}
            onClick={() => onChange(field.nullable ? null : undefined)}
          >
            ×
          </button>
        )}
      </span>
      {unset ? (
        <button type="button" className="add-row" onClick={() => onChange(field.shape === "list" ? [] : {})}>
          + Set {field.label.toLowerCase()}
        </button>
      ) : (
        <ValueEditor value={current ?? null} onChange={onChange} label={field.label} idPrefix={id} fixed={field.shape} />
      )}
      {help}
    </div>
  );
}
