/** The inputs a run asks for: the fields of the workflow's manual triggers. */
import { useState, type FormEvent } from "react";

import type { FieldSpec } from "./schemaForm";
import { AnyField } from "./StructuredFields";

export interface TriggerFieldDef {
  name: string;
  type?: string;
  default?: unknown;
  required?: boolean;
  description?: string;
}

// Lists, objects and values of any type are edited by type (ValueField), not typed as JSON.
const KIND: Record<string, Pick<FieldSpec, "kind" | "shape">> = {
  string: { kind: "string" },
  number: { kind: "number" },
  integer: { kind: "integer" },
  boolean: { kind: "boolean" },
  object: { kind: "any", shape: "object" },
  list: { kind: "any", shape: "list" },
  any: { kind: "any" },
};

export function fieldSpecOf(def: TriggerFieldDef): FieldSpec {
  return {
    key: def.name,
    label: def.name,
    ...(KIND[def.type ?? "string"] ?? { kind: "any" }),
    description: def.description ?? "",
    required: Boolean(def.required),
    nullable: false,
    default: def.default,
    options: [],
  };
}

export function RunInputsDialog({
  fields,
  onRun,
  onClose,
}: {
  fields: TriggerFieldDef[];
  onRun: (inputs: Record<string, unknown>) => void;
  onClose: () => void;
}) {
  const [values, setValues] = useState<Record<string, unknown>>(() =>
    Object.fromEntries(fields.filter((f) => f.default !== undefined && f.default !== null).map((f) => [f.name, f.default])),
  );
  const [error, setError] = useState<string | null>(null);

  function submit(event: FormEvent) {
    event.preventDefault();
    const missing = fields.filter((f) => f.required && (values[f.name] === undefined || values[f.name] === ""));
    if (missing.length) {
      setError(`Fill in ${missing.map((f) => f.name).join(", ")}.`);
      return;
    }
    onRun(values);
  }

  return (
    <div className="dialog-backdrop" onKeyDown={(e) => e.key === "Escape" && onClose()}>
      <form role="dialog" aria-modal="true" aria-labelledby="run-inputs-title" className="dialog" onSubmit={submit}>
        <h2 id="run-inputs-title">Run with inputs</h2>
        {fields.map((def) => (
          <AnyField
            key={def.name}
            field={fieldSpecOf(def)}
            idPrefix="run-input"
            value={values[def.name]}
            onChange={(value) => setValues((old) => ({ ...old, [def.name]: value }))}
          />
        ))}
        {error && <p className="error" role="alert">{error}</p>}
        <div className="button-row">
          <button type="submit" className="primary" autoFocus>Run</button>
          <button type="button" onClick={onClose}>Cancel</button>
        </div>
      </form>
    </div>
  );
}
