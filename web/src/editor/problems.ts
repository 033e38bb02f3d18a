/**
 * Validation problems as a person reads them: the field named by its label ("Separator"),
 * pydantic's wording turned into plain words ("must not be empty"), and filed where the form
 * shows them (under the node, and at the field of its settings).
 */
import type { ProblemPublic } from "../api/types";

function humanize(key: string): string {
  // Units in names (timeout_s, duration_ms) read as units.
  const words = key.replace(/_(s|ms|px)$/, " ($1)").replace(/_/g, " ").replace(/\burl\b/gi, "URL").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** "fields.0.name" -> "Fields › item 1 › name". */
export function fieldLabel(path: string): string {
  const [first, ...rest] = path.split(".");
  const tail = rest.map((part) => (/^\d+$/.test(part) ? `item ${Number(part) + 1}` : part.replace(/_/g, " ")));
  return [humanize(first), ...tail].join(" › ");
}

const WORDING: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/^Field required$/i, () => "is required"],
  [/^String should have at least 1 character$/i, () => "must not be empty"],
  [/^String should have at least (\d+) characters$/i, (m) => `needs at least ${m[1]} characters`],
  [/^String should have at most (\d+) characters?$/i, (m) => `must be at most ${m[1]} characters`],
  [/^Input should be greater than or equal to (.+)$/i, (m) => `must be at least ${m[1]}`],
  [/^Input should be less than or equal to (.+)$/i, (m) => `must be at most ${m[1]}`],
  [/^Input should be greater than (.+)$/i, (m) => `must be more than ${m[1]}`],
  [/^Input should be less than (.+)$/i, (m) => `must be less than ${m[1]}`],
  [/^Input should be a valid (\w+).*$/i, (m) => `must be a ${m[1]}`],
  [/^Extra inputs are not permitted$/i, () => "is not a setting of this node"],
  [/^Value error, (.+)$/i, (m) => m[1]],
  [/^Input should be (.+)$/i, (m) => `must be ${m[1]}`],
];

/** pydantic's message in plain words (unknown messages pass through). */
export function plainMessage(message: string): string {
  for (const [pattern, say] of WORDING) {
    const match = message.match(pattern);
    if (match) return say(match);
  }
  return message;
}

/** What the node's list and the problems list say of one problem. */
export function problemText(p: ProblemPublic): string {
  if (p.field) return `${fieldLabel(p.field)}: ${plainMessage(p.message)}`;
  if (p.port) return `${p.port}: ${p.message}`;
  return p.message;
}

/** The top-level config key a problem is about, for the form to show it at that field. */
export function problemField(p: ProblemPublic): string | null {
  return p.field ? p.field.split(".")[0] : null;
}
