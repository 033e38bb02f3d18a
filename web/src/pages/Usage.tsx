import { useEffect, useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { formatCost } from "../components/format";

type Summary = components["schemas"]["UsageSummary"];
type Report = components["schemas"]["UsageReport"];
type Group = components["schemas"]["UsageGroup"];

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function limit(use: { used: number; allowed?: number | null }): string {
  return use.allowed == null ? `${use.used.toLocaleString()} (no limit)` : `${use.used.toLocaleString()} of ${use.allowed.toLocaleString()}`;
}

/** Bars of tokens per day; the cost of each day in its title. */
function DayChart({ groups }: { groups: Group[] }) {
  const days = groups.filter((g) => g.day);
  if (days.length === 0) return null;
  const most = Math.max(1, ...days.map((g) => g.tokens_total));
  const width = 720;
  const height = 160;
  const bar = Math.max(2, Math.min(40, width / days.length - 4));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height + 20}`} role="img" aria-label="Tokens per day">
        {days.map((g, i) => {
          const h = (g.tokens_total / most) * height;
          const x = i * (width / days.length) + 2;
          return (
            <g key={g.day}>
              <rect x={x} y={height - h} width={bar} height={h} fill="#1d4ed8">
                <title>{`${g.day}: ${g.tokens_total.toLocaleString()} tokens, ${g.calls} calls, cost ${formatCost(g.cost)}`}</title>
              </rect>
              {days.length <= 31 && (
                <text x={x + bar / 2} y={height + 14} fontSize="10" textAnchor="middle">{String(g.day).slice(8)}</text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption className="muted">Tokens per day (UTC); hover a bar for its calls and cost.</figcaption>
    </figure>
  );
}

export function UsagePage() {
  const today = new Date();
  const [from, setFrom] = useState(isoDay(new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1))));
  const [to, setTo] = useState(isoDay(today));
  const [summary, setSummary] = useState<Summary | null>(null);
  const [byDay, setByDay] = useState<Report | null>(null);
  const [byModel, setByModel] = useState<Report | null>(null);
  const [error, setError] = useState<string | null>(null);

  async function load() {
    setError(null);
    try {
      const [s, d, m] = await Promise.all([
        api.get("/api/v1/usage/summary"),
        api.get("/api/v1/usage", { query: { from, to, group_by: "day" } }),
        api.get("/api/v1/usage", { query: { from, to, group_by: "model" } }),
      ]);
      setSummary(s);
      setByDay(d);
      setByModel(m);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  useEffect(() => {
    void load();
    // Only on the first visit; later ranges load on submit.
  }, []);

  function submit(event: FormEvent) {
    event.preventDefault();
    void load();
  }

  return (
    <section className="page" aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {summary && (
        <dl className="summary" aria-label="This month">
          <div><dt>Plan</dt><dd>{summary.package ? summary.package.name : "none (no limits)"}</dd></div>
          <div><dt>Runs this month</dt><dd data-testid="runs-used">{limit(summary.runs)}</dd></div>
          <div><dt>Tokens this month</dt><dd>{limit(summary.tokens)}</dd></div>
          <div><dt>Cost this month</dt><dd>{formatCost(summary.cost)}</dd></div>
          <div><dt>Credits</dt><dd>{summary.credits}</dd></div>
          <div><dt>Resets</dt><dd>{new Date(summary.resets_at).toLocaleDateString()}</dd></div>
        </dl>
      )}
      <form className="inline-form" onSubmit={submit}>
        <label>From<input type="date" value={from} onChange={(e) => setFrom(e.target.value)} required /></label>
        <label>To<input type="date" value={to} onChange={(e) => setTo(e.target.value)} required /></label>
        <button type="submit">Show</button>
      </form>
      {byDay && (
        <>
          <p>
            {byDay.totals.calls.toLocaleString()} model calls, {byDay.totals.tokens_total.toLocaleString()} tokens,
            cost {formatCost(byDay.totals.cost)} from {byDay.from} to {byDay.to}.
          </p>
          {byDay.groups.length === 0 ? <p className="muted">No model calls in this range.</p> : <DayChart groups={byDay.groups} />}
        </>
      )}
      {byModel && byModel.groups.length > 0 && (
        <table className="list">
          <caption className="sr-only">By model</caption>
          <thead><tr><th>Provider</th><th>Model</th><th>Calls</th><th>Tokens in</th><th>Tokens out</th><th>Cost</th></tr></thead>
          <tbody>
            {byModel.groups.map((g) => (
              <tr key={`${g.provider}/${g.model}`}>
                <td>{g.provider}</td><td>{g.model}</td><td>{g.calls}</td>
                <td>{g.tokens_in.toLocaleString()}</td><td>{g.tokens_out.toLocaleString()}</td><td>{formatCost(g.cost)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
