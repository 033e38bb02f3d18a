/**
 * Values of any JSON type (a condition's operand, a request body, a tool's arguments), edited
 * by their kind rather than typed as JSON: what kind a value is, what it becomes when its kind
 * is changed (keeping what can be kept), and the rows of an object being edited.
 */

export type ValueKind = "text" | "number" | "boolean" | "list" | "object" | "null";

export const VALUE_KINDS: { kind: ValueKind; label: string }[] = [
  { kind: "text", label: "Text" },
  { kind: "number", label: "Number" },
  { kind: "boolean", label: "Yes / no" },
  { kind: "list", label: "List" },
  { kind: "object", label: "Object" },
  { kind: "null", label: "Empty" },
];

/** How deep the editor nests lists and objects before it shows the rest as JSON. */
export const MAX_DEPTH = 4;

export function kindOf(value: unknown): ValueKind {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return "text";
  if (typeof value === "number") return "number";
  if (typeof value === "boolean") return "boolean";
  if (Array.isArray(value)) return "list";
  return "object";
}

/** The value `value` becomes as a `kind`: text "3" as a number is 3, a value in a list is its
 * one item, a list as text is its items joined; what cannot be kept starts empty. */
export function convert(value: unknown, kind: ValueKind): unknown {
  const from = kindOf(value);
  if (from === kind) return value;
  switch (kind) {
    case "text":
      if (from === "null") return "";
      if (from === "list") return (value as unknown[]).map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ");
      if (from === "object") return JSON.stringify(value);
      return String(value);
    case "number": {
      if (from === "boolean") return value ? 1 : 0;
      const n = parseNumber(typeof value === "string" ? value : "");
      return n ?? 0;
    }
    case "boolean":
      if (from === "text") return ["true", "yes", "1", "on"].includes((value as string).trim().toLowerCase());
      if (from === "number") return value !== 0;
      return false;
    case "list":
      if (from === "null" || value === "") return [];
      if (from === "object") return Object.values(value as object);
      return [value];
    case "object":
      if (from === "list") return Object.fromEntries((value as unknown[]).map((v, i) => [String(i + 1), v]));
      if (from === "null" || value === "") return {};
      return { value };
    case "null":
      return null;
  }
}

/** A number typed as text (`1e3`, ` 2.5 `), or null when it is not one. */
export function parseNumber(text: string): number | null {
  if (text.trim() === "") return null;
  const n = Number(text.trim());
  return Number.isFinite(n) ? n : null;
}

/** One row of an object being edited: names may be empty or repeated while being typed. */
export interface Entry {
  key: string;
  value: unknown;
}

export function entriesOf(value: unknown): Entry[] {
  if (kindOf(value) !== "object") return [];
  return Object.entries(value as Record<string, unknown>).map(([key, v]) => ({ key, value: v }));
}

/** The object the rows stand for: rows without a name are left out, a later name wins. */
export function objectOfEntries(entries: Entry[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of entries) if (key.trim() !== "") out[key.trim()] = value;
  return out;
}

/** The names that more than one row holds (the later row wins: worth a word to the person). */
export function repeatedKeys(entries: Entry[]): Set<string> {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const { key } of entries) {
    const name = key.trim();
    if (!name) continue;
    if (seen.has(name)) repeated.add(name);
    seen.add(name);
  }
  return repeated;
}

/** A name for a new row that no row has yet: `key`, `key_2`, ... */
export function freshKey(entries: Entry[], stem = "key"): string {
  const taken = new Set(entries.map((e) => e.key.trim()));
  if (!taken.has(stem)) return stem;
  for (let i = 2; ; i++) if (!taken.has(`${stem}_${i}`)) return `${stem}_${i}`;
}

/** What JSON text means, or why it means nothing (for the "as JSON" view). */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, error: `is not valid JSON (${(error as Error).message})` };
  }
}

/** A one-line summary of a value for a folded row: `3 items`, `{city, days}`, `"rivers"`. */
export function summary(value: unknown, chars = 40): string {
  const kind = kindOf(value);
  if (kind === "list") {
    const n = (value as unknown[]).length;
    return `${n} item${n === 1 ? "" : "s"}`;
  }
  if (kind === "object") {
    const keys = Object.keys(value as object);
    const text = `{${keys.join(", ")}}`;
    return text.length > chars ? `{${keys.length} entries}` : text;
  }
  const text = kind === "null" ? "empty" : JSON.stringify(value);
  return text.length > chars ? `${text.slice(0, chars - 1)}…` : text;
}
