import { useCallback, useEffect, useState } from "react";
import { useSearchParams } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { AdminOnly, AdminTabs } from "./AdminTabs";
import "./account.css";
import "./ops.css";

type Entry = components["schemas"]["InstanceAuditEntry"];

const KINDS: [string, string][] = [
  ["", "Everything"],
  ["admin.", "Admin changes"],
  ["auth.", "Sign-ins and passwords"],
  ["api_key.", "API keys"],
  ["billing.", "Plans (self-service)"],
  ["oauth.", "OAuth connections"],
  ["identity.", "Identity provider sync"],
  ["api.", "Other changes"],
  ["system.", "System (maintenance)"],
];

const FILTERS = ["action", "user_id", "object_id", "since", "until"] as const;

function plain(value: unknown): string {
  if (value === null || value === undefined) return "none";
  if (Array.isArray(value)) return value.map(plain).join(", ");
  if (typeof value === "object") {
    return Object.entries(value as Record<string, unknown>)
      .map(([key, inner]) => `${key.replace(/_/g, " ")} ${plain(inner)}`)
      .join(", ");
  }
  return String(value);
}

/** The entry's details as a line a person reads (never JSON). */
function describe(entry: Entry): string {
  const details = { ...entry.details };
  delete details.method;
  delete details.via;
  if ("values" in details) delete details.changed;
  return Object.entries(details)
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key.replace(/_/g, " ")}: ${plain(value)}`)
    .join(" · ");
}

/** Who an entry without an actor is: the system itself, or an account deleted since. */
function nobody(entry: Entry): string {
  return entry.action.startsWith("system.") || entry.action.startsWith("identity.") ? "system" : "deleted account";
}

function outcomeClass(entry: Entry): string {
  const outcome = entry.details.outcome;
  return outcome === "refused" ? "outcome-refused" : outcome === "failed" ? "outcome-failed" : "";
}

/** A date input's day as the start of that day in UTC (the API wants a time zone). */
function dayStart(day: string): string | undefined {
  return day ? `${day}T00:00:00Z` : undefined;
}

function dayAfter(day: string): string | undefined {
  if (!day) return undefined;
  const next = new Date(`${day}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString();
}

export function AdminAuditPage() {
  const me = useAuth((s) => s.user);
  const [params, setParams] = useSearchParams();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const filters = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) ?? ""])) as Record<(typeof FILTERS)[number], string>;
  const key = FILTERS.map((name) => filters[name]).join("|");

  const load = useCallback(
    async (after: string | null) => {
      setError(null);
      try {
        const page = await api.get("/api/v1/admin/audit-log", {
          query: {
            action: filters.action || undefined,
            user_id: filters.user_id || undefined,
            object_id: filters.object_id || undefined,
            since: dayStart(filters.since),
            until: dayAfter(filters.until),
            cursor: after ?? undefined,
            limit: 50,
          },
        });
        setEntries((old) => (after ? [...old, ...page.items] : page.items));
        setCursor(page.next_cursor ?? null);
      } catch (caught) {
        setError(errorMessage(caught));
      }
    },
    // The filters are read through `key`, which changes whenever one of them does.
    [key],
  );

  useEffect(() => {
    if (me?.role === "admin") void load(null);
  }, [load, me?.role]);

  function setFilter(name: (typeof FILTERS)[number], value: string) {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    setParams(next, { replace: true });
  }

  if (me && me.role !== "admin") return <AdminOnly title="Audit log" />;

  return (
    <section className="page" aria-labelledby="audit-title">
      <AdminTabs />
      <h1 id="audit-title">Audit log</h1>
      <p className="muted">Everything that changed data on this instance: who, what, which object, when and how it ended. Newest first.</p>
      <div className="filters" role="search" aria-label="Filter the audit log">
        <div className="filter">
          <label htmlFor="audit-kind">Kind</label>
          <select id="audit-kind" value={filters.action} onChange={(e) => setFilter("action", e.target.value)}>
            {KINDS.map(([value, label]) => <option key={value} value={value}>{label}</option>)}
          </select>
        </div>
        <div className="filter">
          <label htmlFor="audit-user">Actor (user id, or "system")</label>
          <input id="audit-user" value={filters.user_id} placeholder="usr_…" onChange={(e) => setFilter("user_id", e.target.value.trim())} />
        </div>
        <div className="filter">
          <label htmlFor="audit-object">Object id</label>
          <input id="audit-object" value={filters.object_id} placeholder="wf_…, usr_…" onChange={(e) => setFilter("object_id", e.target.value.trim())} />
        </div>
        <div className="filter">
          <label htmlFor="audit-since">From</label>
          <input id="audit-since" type="date" value={filters.since} onChange={(e) => setFilter("since", e.target.value)} />
        </div>
        <div className="filter">
          <label htmlFor="audit-until">To</label>
          <input id="audit-until" type="date" value={filters.until} onChange={(e) => setFilter("until", e.target.value)} />
        </div>
        {key.replace(/\|/g, "") && <button type="button" onClick={() => setParams(new URLSearchParams(), { replace: true })}>Clear filters</button>}
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <table className="list" aria-label="Audit entries">
        <thead>
          <tr><th>When</th><th>Who</th><th>What</th><th>Object</th><th>Details</th><th>From</th></tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.id}>
              <td>{new Date(entry.created_at).toLocaleString()}</td>
              <td className="email">
                {entry.user_email ?? <span className="muted">{entry.user_id ? "deleted account" : nobody(entry)}</span>}
                {entry.user_id && (
                  <div>
                    <button type="button" className="link-button" onClick={() => setFilter("user_id", entry.user_id ?? "")} aria-label={`Only entries of ${entry.user_email ?? entry.user_id}`}>
                      only theirs
                    </button>
                  </div>
                )}
              </td>
              <td><code>{entry.action}</code></td>
              <td>{entry.object_type ? <>{entry.object_type} <span className="muted">{entry.object_id}</span></> : "—"}</td>
              <td className={`details-cell ${outcomeClass(entry)}`}>{describe(entry)}</td>
              <td className="muted">{entry.ip ?? "—"}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {entries.length === 0 && !error && <p className="muted">No entry matches.</p>}
      {cursor && <button type="button" onClick={() => void load(cursor)}>Older entries</button>}
    </section>
  );
}
