/** From the integration form's text boxes to the API's shapes, with readable complaints. */

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Lines of `NAME=value` (env) or `Name: value` (headers) to a map; blank lines and `#` comments
 * are skipped. A line without the separator, or a name used twice, is an error naming its line.
 */
export function parsePairs(text: string, separator: "=" | ":"): Parsed<Record<string, string>> {
  const pairs: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const at = line.indexOf(separator);
    if (at <= 0) return { ok: false, error: `line ${i + 1}: write it as name${separator === "=" ? "=" : ": "}value` };
    const name = line.slice(0, at).trim();
    const value = line.slice(at + 1).trim();
    if (/\s/.test(name)) return { ok: false, error: `line ${i + 1}: the name "${name}" has a space in it` };
    if (name in pairs) return { ok: false, error: `line ${i + 1}: "${name}" is given twice` };
    pairs[name] = value;
  }
  return { ok: true, value: pairs };
}

/** A command's arguments, one per line (so an argument may hold spaces). */
export function parseArgs(text: string): string[] {
  return text.split(/\r?\n/).map((a) => a.trim()).filter((a) => a !== "");
}
