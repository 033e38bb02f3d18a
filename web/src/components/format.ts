/** How numbers the API sends as decimal text read on screen. */

/**
 * A cost in dollars from the API's decimal text ("0E-9", "0.000123000", "1.5"): cents for a
 * cent or more, else two significant digits; no exponent, no trailing zeros past the cents.
 */
export function formatCost(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (n === 0) return "$0.00";
  const abs = Math.abs(n);
  const decimals = abs >= 0.01 ? 2 : Math.min(12, 1 - Math.floor(Math.log10(abs)));
  let text = abs.toFixed(decimals);
  if (decimals > 2) text = text.replace(/0+$/, "");
  return `${n < 0 ? "-" : ""}$${text}`;
}
