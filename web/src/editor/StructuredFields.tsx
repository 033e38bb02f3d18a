/**
 * Editors for settings with structure, in place of JSON: a table of names and values (HTTP
 * headers, an input mapping) and a list of items, each with its own small form (a trigger's
 * fields, a switch's cases), with rows to add and remove.
 */
import { useEffect, useRef, useState } from "react";

import { RichText } from "../components/RichText";
import { Field } from "./ConfigPanel";
import { ModelField, ServerField, WorkflowField } from "./PickFields";
import { objectOf, pairsOf, rowsEditable, singular, type FieldSpec, type Pair, type VariantOption } from "./schemaForm";
import { ValueField } from "./ValueField";

interface StructuredProps {
  field: FieldSpec;
  value: unknown;
  idPrefix: string;
  onChange: (value: unknown) => void;
  problems?: string[];
  /** The other values of the object this field belongs to. */
  siblings?: Record<string, unknown>;
}

/** A new item of a list of objects: each field's default, and the tag of its shape. */
function blankItem(fields: FieldSpec[], tag?: { key: string; value: string }): Record<string, unknown> {
  const item: Record<string, unknown> = tag ? { [tag.key]: tag.value } : {};
  for (const f of fields) if (f.default !== undefined && f.default !== null) item[f.key] = structuredClone(f.default);
  return item;
}

/** The shape of a tagged item, by its tag. */
function variantOf(field: FieldSpec, item: Record<string, unknown>): VariantOption | undefined {
  return field.variants?.options.find((o) => o.value === item[field.variants!.tag]);
}

function Help({ id, field, problems }: { id: string; field: FieldSpec; problems?: string[] }) {
  if (!field.description && !problems?.length) return null;
  return (
    <div id={id} className="help">
      {problems?.length ? (
        <span className="error field-problem" data-testid="field-problem">{problems.join("; ")}</span>
      ) : (
        <RichText text={field.description} />
      )}
    </div>
  );
}

/** A map of text to text as a table; a row without a name is kept on screen but not saved. */
export function KeyValueField({ field, value, idPrefix, onChange, problems }: StructuredProps) {
  const id = `${idPrefix}-${field.key}`;
  const [rows, setRows] = useState<Pair[]>(() => pairsOf(value ?? field.default));
  const sent = useRef<string>(JSON.stringify(objectOf(rows)));
  // A change from outside (undo, another node) replaces the rows; our own change does not.
  useEffect(() => {
    const now = JSON.stringify(value ?? field.default ?? {});
    if (now !== sent.current) {
      sent.current = now;
      setRows(pairsOf(value ?? field.default));
    }
  }, [value, field.default]);

  const update = (next: Pair[]) => {
    setRows(next);
    const object = objectOf(next);
    sent.current = JSON.stringify(object);
    onChange(object);
  };
  const one = singular(field.label);
  return (
    <div className="field field-structured">
      <span className="field-title" id={`${id}-title`}>{field.label}</span>
      <table className="kv-table" aria-labelledby={`${id}-title`} aria-describedby={`${id}-help`}>
        {rows.length > 0 && (
          <thead>
            <tr><th scope="col">Name</th><th scope="col">Value</th><th><span className="sr-only">Remove</span></th></tr>
          </thead>
        )}
        <tbody>
          {rows.map((row, i) => (
            <tr key={i}>
              <td>
                <input
                  aria-label={`${field.label}: name ${i + 1}`}
                  value={row.key}
                  onChange={(e) => update(rows.map((r, j) => (j === i ? { ...r, key: e.target.value } : r)))}
                  aria-invalid={row.key.trim() === "" && row.value !== "" ? true : undefined}
                />
              </td>
              <td>
                <input
                  aria-label={`${field.label}: value ${i + 1}`}
                  value={row.value}
                  onChange={(e) => update(rows.map((r, j) => (j === i ? { ...r, value: e.target.value } : r)))}
                />
              </td>
              <td>
                <button type="button" className="icon-button" aria-label={`Remove ${one} ${i + 1}`} onClick={() => update(rows.filter((_, j) => j !== i))}>
                  ×
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button type="button" className="add-row" onClick={() => setRows([...rows, { key: "", value: "" }])}>
        + Add {one}
      </button>
      <Help id={`${id}-help`} field={field} problems={problems} />
    </div>
  );
}

/** A list of objects as one small form per item. */
export function ObjectListField({ field, value, idPrefix, onChange, problems }: StructuredProps) {
  const id = `${idPrefix}-${field.key}`;
  const items = Array.isArray(value) ? (value as Record<string, unknown>[]) : Array.isArray(field.default) ? (field.default as Record<string, unknown>[]) : [];
  const one = singular(field.label);
  const [adding, setAdding] = useState(field.variants?.options[0]?.value ?? "");
  const set = (i: number, key: string, v: unknown) =>
    onChange(
      items.map((item, j) => {
        if (j !== i) return item;
        const next = { ...item };
        if (v === undefined) delete next[key];
        else next[key] = v;
        return next;
      }),
    );
  const move = (i: number, by: number) => {
    const next = [...items];
    const [taken] = next.splice(i, 1);
    next.splice(i + by, 0, taken);
    onChange(next);
  };
  return (
    <div className="field field-structured">
      <span className="field-title" id={`${id}-title`}>{field.label}</span>
      <ol className="item-list" aria-labelledby={`${id}-title`}>
        {items.map((item, i) => (
          <li key={i}>
            <fieldset className="item-form">
              <legend>{one.charAt(0).toUpperCase() + one.slice(1)} {i + 1}</legend>
              <span className="item-actions">
                  <button type="button" className="icon-button" aria-label={`Move ${one} ${i + 1} up`} disabled={i === 0} onClick={() => move(i, -1)}>↑</button>
                  <button type="button" className="icon-button" aria-label={`Move ${one} ${i + 1} down`} disabled={i === items.length - 1} onClick={() => move(i, 1)}>↓</button>
                <button type="button" className="icon-button" aria-label={`Remove ${one} ${i + 1}`} onClick={() => onChange(items.filter((_, j) => j !== i))}>×</button>
              </span>
              {field.variants && (
                <div className="muted small item-kind">
                  {variantOf(field, item)?.label ?? `unknown kind “${String(item[field.variants.tag])}”`}
                  {variantOf(field, item)?.description ? ` · ${variantOf(field, item)!.description}` : ""}
                </div>
              )}
              {(field.variants ? (variantOf(field, item)?.fields ?? []) : (field.itemFields ?? [])).map((sub) => (
                <AnyField key={sub.key} field={sub} value={item[sub.key]} idPrefix={`${id}-${i}`} onChange={(v) => set(i, sub.key, v)} siblings={item} />
              ))}
            </fieldset>
          </li>
        ))}
      </ol>
      {field.variants ? (
        <div className="add-variant">
          <label className="sr-only" htmlFor={`${id}-new-kind`}>Kind of the new {one}</label>
          <select id={`${id}-new-kind`} value={adding} onChange={(e) => setAdding(e.target.value)}>
            {field.variants.options.map((o) => (
              <option key={o.value} value={o.value}>{o.label}</option>
            ))}
          </select>
          <button
            type="button"
            className="add-row"
            onClick={() => {
              const option = field.variants!.options.find((o) => o.value === adding)!;
              onChange([...items, blankItem(option.fields, { key: field.variants!.tag, value: option.value })]);
            }}
          >
            + Add {one}
          </button>
        </div>
      ) : (
        <button type="button" className="add-row" onClick={() => onChange([...items, blankItem(field.itemFields ?? [])])}>
          + Add {one}
        </button>
      )}
      <Help id={`${id}-help`} field={field} problems={problems} />
    </div>
  );
}

/** An object of known fields as a group of fields; an optional one can be left out entirely. */
export function ObjectField({ field, value, idPrefix, onChange, problems }: StructuredProps) {
  const id = `${idPrefix}-${field.key}`;
  const object = typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  const optional = field.nullable || !field.required;
  const set = (key: string, v: unknown) => {
    const next = { ...(object ?? {}) };
    if (v === undefined) delete next[key];
    else next[key] = v;
    onChange(next);
  };
  if (!object && optional) {
    return (
      <div className="field field-structured">
        <span className="field-title">{field.label}</span>
        <button type="button" className="add-row" onClick={() => onChange({})}>
          + Set {field.label.toLowerCase()}
        </button>
        <Help id={`${id}-help`} field={field} problems={problems} />
      </div>
    );
  }
  return (
    <fieldset className="item-form object-form">
      <legend>{field.label}</legend>
      {optional && (
        <span className="item-actions">
          <button type="button" className="icon-button" aria-label={`Remove ${field.label.toLowerCase()}`} onClick={() => onChange(field.nullable ? null : undefined)}>
            ×
          </button>
        </span>
      )}
      {(field.itemFields ?? []).map((sub) => (
        <AnyField key={sub.key} field={sub} value={object?.[sub.key]} idPrefix={id} onChange={(v) => set(sub.key, v)} siblings={object ?? {}} />
      ))}
      <Help id={`${id}-help`} field={field} problems={problems} />
    </fieldset>
  );
}

/** The editor a field's kind calls for: a table, a list of forms, a group, or one input. */
export function AnyField(props: StructuredProps) {
  const { field } = props;
  // A tag fixed by the shape: set when the item is made, nothing to edit.
  if (field.kind === "const") return null;
  if (field.modelKind || (field.key === "model" && field.kind === "string")) return <ModelField {...props} />;
  if (field.refersTo === "workflow" && field.kind === "string") return <WorkflowField {...props} />;
  if (field.key === "server" && field.objectVariant) return <ServerField {...props} />;
  if (field.kind === "any") return <ValueField {...props} />;
  if (props.field.kind === "key-value") return <KeyValueField {...props} />;
  if (rowsEditable(props.field)) return <ObjectListField {...props} />;
  if (props.field.kind === "object" && props.field.itemFields?.length) return <ObjectField {...props} />;
  return <Field field={props.field} value={props.value} idPrefix={props.idPrefix} onChange={props.onChange} problems={props.problems} />;
}
