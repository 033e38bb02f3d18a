/**
 * From a node type's config JSON Schema (pydantic's output) to the fields of its form, and from
 * what a person typed back to config values, with readable messages for what does not fit.
 */
import type { JsonSchema } from "../api/types";

export type FieldKind =
  | "string"
  | "text"
  | "number"
  | "integer"
  | "boolean"
  | "enum"
  | "string-list"
  | "object-list"
  | "key-value"
  | "object"
  | "any"
  | "const"
  | "json";

/** One shape of an item of a list of tagged objects (an agent's tool: `mcp`, `http`, ...). */
export interface VariantOption {
  /** The value of the tag property that picks this shape. */
  value: string;
  label: string;
  description: string;
  /** Its fields, the tag itself left out. */
  fields: FieldSpec[];
}

export interface FieldSpec {
  key: string;
  label: string;
  kind: FieldKind;
  description: string;
  required: boolean;
  /** The schema allows null: an empty input means null. */
  nullable: boolean;
  default: unknown;
  options: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** For object-list: the fields of one item; for object: its own fields. */
  itemFields?: FieldSpec[];
  /**
   * For a value that is one of several shapes (an id or an object written inline): the object
   * shape as a field of kind "object", for a form in place of JSON.
   */
  objectVariant?: FieldSpec;
  /**
   * The value is shown with escapes (`\n`, `\t`, `\\`): a separator that is a line break must
   * not look like an empty box.
   */
  escapes?: boolean;
  /** For kind "any": the value must be an object, or a list (otherwise any JSON value). */
  shape?: "object" | "list";
  /** For an object-list of tagged objects: the tag property and each shape. */
  variants?: { tag: string; options: VariantOption[] };
  /** The field names a model of this kind (the schema's `x-model-kind`). */
  modelKind?: string;
  /** The field holds the id of another of the user's objects (the schema's `x-refers-to`). */
  refersTo?: string;
}

// Fields whose value is often a line break or a tab.
const ESCAPED = /separator|delimiter/i;

/** `text` with line breaks, tabs and backslashes written as escapes. */
export function escapeText(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t");
}

/**
 * What a box holding only spaces holds, said in words ("1 space", "3 spaces"), or null: such a
 * value (a separator of one space) otherwise looks like an empty box, which means another thing.
 */
export function spacesOnly(text: string): string | null {
  if (text === "" || /[^ ]/.test(text)) return null;
  return text.length === 1 ? "1 space" : `${text.length} spaces`;
}

/** The inverse of `escapeText`; a backslash before any other character stays as written. */
export function unescapeText(text: string): string {
  return text.replace(/\\([\\nrt])/g, (_all, c: string) => (c === "n" ? "\n" : c === "r" ? "\r" : c === "t" ? "\t" : "\\"));
}

// Long texts get a text area: templates, prompts and messages are rarely one line.
const MULTILINE = /template|message|prompt|^text$|body|schema/i;

function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  let current = schema;
  for (let depth = 0; current.$ref && depth < 10; depth++) {
    const name = current.$ref.replace(/^#\/\$defs\//, "");
    const target = root.$defs?.[name];
    if (!target) break;
    const { $ref: _ignored, ...rest } = current;
    current = { ...target, ...rest };
  }
  if (current.allOf && current.allOf.length === 1) {
    const { allOf, ...rest } = current;
    current = { ...resolve(allOf[0], root), ...rest };
  }
  return current;
}

function typesOf(schema: JsonSchema): string[] {
  if (Array.isArray(schema.type)) return schema.type;
  return schema.type ? [schema.type] : [];
}

function humanize(key: string): string {
  // Units in names (timeout_s, duration_ms) read as units.
  const words = key.replace(/_(s|ms|px)$/, " ($1)").replace(/_/g, " ").replace(/\burl\b/gi, "URL").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function jsonField(key: string, schema: JsonSchema, required: boolean, nullable: boolean): FieldSpec {
  return {
    key,
    label: humanize(key),
    kind: "json",
    description: schema.description ?? "",
    required,
    nullable,
    default: schema.default,
    options: [],
  };
}

/** The one field that stands for `key` of an object schema. */
export function fieldFor(key: string, raw: JsonSchema, root: JsonSchema, required: boolean): FieldSpec {
  let schema = resolve(raw, root);
  let nullable = false;
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) {
    const resolved = variants.map((v) => resolve(v, root));
    const nonNull = resolved.filter((v) => !typesOf(v).includes("null"));
    nullable = nonNull.length < resolved.length;
    if (nonNull.length === 1) {
      const { anyOf: _a, oneOf: _o, ...outer } = schema;
      schema = { ...nonNull[0], ...outer };
    } else {
      const objects = nonNull.filter((v) => v.properties);
      const { anyOf: _a, oneOf: _o, ...outer } = schema;
      const variant = objects.length === 1 ? fieldFor(key, { ...objects[0], ...outer }, root, required) : undefined;
      schema = { ...schema, anyOf: undefined, oneOf: undefined, type: undefined };
      if (variant?.kind === "object") {
        return { ...jsonField(key, schema, required, nullable), objectVariant: variant };
      }
    }
  }
  const types = typesOf(schema).filter((t) => t !== "null");
  if (typesOf(schema).includes("null")) nullable = true;
  const base: FieldSpec = {
    key,
    label: humanize(key),
    kind: "json",
    description: schema.description ?? "",
    required,
    nullable,
    default: schema.default,
    options: [],
    minimum: schema.minimum,
    maximum: schema.maximum,
    exclusiveMinimum: schema.exclusiveMinimum,
    exclusiveMaximum: schema.exclusiveMaximum,
    minLength: schema.minLength,
    maxLength: schema.maxLength,
    pattern: schema.pattern,
    modelKind: schema["x-model-kind"],
    refersTo: schema["x-refers-to"],
  };
  if (schema.const !== undefined) return { ...base, kind: "const", default: schema.const };
  if (schema.enum) return { ...base, kind: "enum", options: schema.enum };
  // No type at all (or several): any JSON value, edited by its own kind.
  if (types.length === 0) return { ...base, kind: "any" };
  const type = types.length === 1 ? types[0] : undefined;
  switch (type) {
    case "string":
      if (ESCAPED.test(key)) return { ...base, kind: "string", escapes: true };
      return { ...base, kind: MULTILINE.test(key) ? "text" : "string" };
    case "number":
      return { ...base, kind: "number" };
    case "integer":
      return { ...base, kind: "integer" };
    case "boolean":
      return { ...base, kind: "boolean" };
    case "array": {
      const items = schema.items ? resolve(schema.items, root) : {};
      if (typesOf(items).includes("string") && !items.enum) return { ...base, kind: "string-list" };
      if (items.properties) {
        const itemRequired = new Set(items.required ?? []);
        const itemFields = Object.entries(items.properties).map(([k, s]) =>
          fieldFor(k, s, root, itemRequired.has(k)),
        );
        return { ...base, kind: "object-list", itemFields };
      }
      const variants = variantsOf(items, root);
      if (variants) return { ...base, kind: "object-list", variants };
      if (typesOf(items).length === 0 && !items.anyOf && !items.oneOf) return { ...base, kind: "any", shape: "list" };
      return base;
    }
    case "object": {
      // An object of known fields: a small form of its own.
      if (schema.properties) {
        const inner = new Set(schema.required ?? []);
        const itemFields = Object.entries(schema.properties).map(([k, s]) => fieldFor(k, s, root, inner.has(k)));
        return { ...base, kind: "object", itemFields };
      }
      // A map of text to text (headers, a mapping): a table of names and values.
      const values = schema.additionalProperties;
      if (!schema.properties && typeof values === "object" && typesOf(resolve(values, root)).includes("string")) {
        return { ...base, kind: "key-value" };
      }
      // A map of anything (a tool's arguments, a JSON Schema): an object of typed values.
      return { ...base, kind: "any", shape: "object" };
    }
    default:
      return base;
  }
}

/** A tag as a name: short ones are acronyms (`mcp` -> MCP), others capitalized. */
function tagLabel(value: string): string {
  return value.length <= 4 ? value.toUpperCase() : value.charAt(0).toUpperCase() + value.slice(1).replace(/_/g, " ");
}

/**
 * The shapes of a union of objects told apart by one property (pydantic's discriminator, or a
 * property every shape holds as a constant), or null when the schema is no such union.
 */
function variantsOf(schema: JsonSchema, root: JsonSchema): FieldSpec["variants"] | null {
  const union = schema.oneOf ?? schema.anyOf;
  if (!union || union.length < 2) return null;
  const shapes = union.map((v) => resolve(v, root));
  if (!shapes.every((v) => v.properties)) return null;
  const tag =
    schema.discriminator?.propertyName ??
    Object.keys(shapes[0].properties!).find((key) => shapes.every((v) => v.properties![key]?.const !== undefined));
  if (!tag) return null;
  const options: VariantOption[] = [];
  for (const shape of shapes) {
    const value = shape.properties![tag]?.const;
    if (typeof value !== "string") return null;
    const required = new Set(shape.required ?? []);
    const fields = Object.entries(shape.properties!)
      .filter(([key]) => key !== tag)
      .map(([key, s]) => fieldFor(key, s, root, required.has(key)));
    const description = (shape.description ?? "").split("\n\n")[0].replace(/\s+/g, " ").trim();
    options.push({ value, label: tagLabel(value), description, fields });
  }
  return { tag, options };
}

/** Every field of an object schema, in the schema's order. */
export function fieldsFor(schema: JsonSchema | undefined): FieldSpec[] {
  if (!schema?.properties) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([key, s]) => fieldFor(key, s, schema, required.has(key)));
}

/** A config holding every field's default (what a new node starts with). */
export function defaultsFor(fields: FieldSpec[]): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  for (const field of fields) {
    if (field.default !== undefined) config[field.key] = structuredClone(field.default);
  }
  return config;
}

/** How a value shows in its input box. */
export function toInput(field: FieldSpec, value: unknown): string {
  // An unset field holds its default: show it, rather than an empty box that means something.
  if (value === undefined && field.default !== undefined && field.default !== null) return toInput(field, field.default);
  if (value === undefined || value === null) return "";
  if (field.escapes && typeof value === "string") return escapeText(value);
  switch (field.kind) {
    case "string-list":
      return Array.isArray(value) ? value.join(", ") : String(value);
    case "json":
    case "object-list":
    case "key-value":
    case "object":
    case "any":
    case "const":
      return JSON.stringify(value, null, 2);
    case "enum":
      return JSON.stringify(value);
    default:
      return String(value);
  }
}

export type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

function fail(error: string): Parsed {
  return { ok: false, error };
}

function checkNumber(field: FieldSpec, n: number): Parsed {
  if (field.minimum !== undefined && n < field.minimum) return fail(`must be at least ${field.minimum}`);
  if (field.maximum !== undefined && n > field.maximum) return fail(`must be at most ${field.maximum}`);
  if (field.exclusiveMinimum !== undefined && n <= field.exclusiveMinimum)
    return fail(`must be more than ${field.exclusiveMinimum}`);
  if (field.exclusiveMaximum !== undefined && n >= field.exclusiveMaximum)
    return fail(`must be less than ${field.exclusiveMaximum}`);
  return { ok: true, value: n };
}

/**
 * The config value for what was typed into `field`'s input, or why it does not fit.
 * Empty input: null when the field is nullable, "unset" (undefined) when it is optional.
 */
export function fromInput(field: FieldSpec, input: string | boolean): Parsed {
  if (field.kind === "boolean") return { ok: true, value: Boolean(input) };
  const text = field.escapes ? unescapeText(String(input)) : String(input);
  if (text.trim() === "" && field.kind !== "string" && field.kind !== "text") {
    if (field.nullable) return { ok: true, value: null };
    if (field.required) return fail("is required");
    return { ok: true, value: undefined };
  }
  switch (field.kind) {
    case "string":
    case "text": {
      if (text === "" && field.nullable && field.minLength) return { ok: true, value: null };
      if (field.minLength !== undefined && text.length < field.minLength)
        return fail(field.minLength === 1 ? "must not be empty" : `needs at least ${field.minLength} characters`);
      if (field.maxLength !== undefined && text.length > field.maxLength)
        return fail(`must be at most ${field.maxLength} characters`);
      if (field.pattern && !new RegExp(field.pattern).test(text)) return fail(`must match ${field.pattern}`);
      return { ok: true, value: text };
    }
    case "number":
    case "integer": {
      const n = Number(text.trim());
      if (!Number.isFinite(n)) return fail("must be a number");
      if (field.kind === "integer" && !Number.isInteger(n)) return fail("must be a whole number");
      return checkNumber(field, n);
    }
    case "enum": {
      const found = field.options.find((o) => JSON.stringify(o) === text || String(o) === text);
      return found === undefined ? fail(`must be one of ${field.options.join(", ")}`) : { ok: true, value: found };
    }
    case "string-list":
      return {
        ok: true,
        value: text.split(",").map((s) => s.trim()).filter((s) => s !== ""),
      };
    case "object-list":
    case "key-value":
    case "object":
    case "any":
    case "const":
    case "json": {
      try {
        const value: unknown = JSON.parse(text);
        if (field.kind === "object-list" && !Array.isArray(value)) return fail("must be a JSON list");
        return { ok: true, value };
      } catch (error) {
        return fail(`is not valid JSON (${(error as Error).message})`);
      }
    }
  }
}

/** Where a field's suggestions come from: the user's credentials, integrations, or the tools of
 * the MCP server a node names. */
export type Lookup = "credentials" | "integrations" | "mcp-tools";

/**
 * The suggestions a field of `nodeType`'s form offers, if any: a field named `credential` (or
 * `..._credential`) holding text names one of the user's credentials; `mcp.tool`'s `server`
 * names an integration and its `tool` one of that server's tools.
 */
export function lookupFor(nodeType: string, field: FieldSpec): Lookup | null {
  if ((field.key === "credential" || field.key.endsWith("_credential")) && (field.kind === "string" || field.kind === "enum")) {
    return field.kind === "string" ? "credentials" : null;
  }
  if (nodeType === "mcp.tool" && field.key === "server") return "integrations";
  if (nodeType === "mcp.tool" && field.key === "tool" && field.kind === "string") return "mcp-tools";
  return null;
}

/** An integration id (`intg_...`) when `server` names one rather than a server written inline. */
export function integrationIdOf(server: unknown): string | null {
  return typeof server === "string" && server.trim() !== "" ? server.trim() : null;
}

/** Whether an object-list gets a form per item: every item field is one a row can edit. */
export function rowsEditable(field: FieldSpec): boolean {
  return field.kind === "object-list" && (!!field.itemFields?.length || !!field.variants);
}

/** "fields" -> "field": what one item of a list is called. */
export function singular(label: string): string {
  const lower = label.toLowerCase();
  if (lower.endsWith("ies")) return lower.slice(0, -3) + "y";
  if (lower.endsWith("ses") && !lower.endsWith("cases")) return lower.slice(0, -2);
  return lower.endsWith("s") ? lower.slice(0, -1) : lower;
}

export interface Pair {
  key: string;
  value: string;
}

/** The rows of a key/value table for `value` (an object of text). */
export function pairsOf(value: unknown): Pair[] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return [];
  return Object.entries(value).map(([key, v]) => ({ key, value: typeof v === "string" ? v : JSON.stringify(v) }));
}

/** The object a key/value table stands for: rows without a name are left out, a later row wins. */
export function objectOf(pairs: Pair[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { key, value } of pairs) if (key.trim() !== "") out[key.trim()] = value;
  return out;
}
