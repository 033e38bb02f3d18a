import { useCallback, useEffect, useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { AdminOnly, AdminTabs } from "./AdminTabs";
import "./account.css";

type Settings = components["schemas"]["InstanceSettingsPublic"];
type Package = components["schemas"]["PackagePublic"];
type RetentionKey =
  | "retain_runs_days"
  | "retain_node_outputs_days"
  | "retain_usage_days"
  | "retain_audit_days"
  | "retain_generations_days"
  | "retain_validation_days";

const RETENTION: { key: RetentionKey; what: string; why: string; least: number }[] = [
  { key: "retain_runs_days", what: "Finished runs", why: "with their node results and images; runs still going or waiting always stay", least: 1 },
  { key: "retain_node_outputs_days", what: "Node inputs and outputs", why: "cleared from finished runs; statuses and timings stay", least: 1 },
  { key: "retain_usage_days", what: "Usage records", why: "at least 32 days, so this month's plan limits still count every call", least: 32 },
  { key: "retain_audit_days", what: "Audit log", why: "who did what, sign-ins, admin changes", least: 1 },
  { key: "retain_generations_days", what: "Workflow generation history", why: "the prompts and drafts of Describe", least: 1 },
  { key: "retain_validation_days", what: "Validation logs", why: "the checks of saved versions", least: 1 },
];

type Draft = Record<RetentionKey, string>;

function draftOf(settings: Settings): Draft {
  const draft = {} as Draft;
  for (const { key } of RETENTION) draft[key] = settings[key] === null || settings[key] === undefined ? "" : String(settings[key]);
  return draft;
}

export function AdminSettingsPage() {
  const me = useAuth((s) => s.user);
  const [settings, setSettings] = useState<Settings | null>(null);
  const [packages, setPackages] = useState<Package[]>([]);
  const [draft, setDraft] = useState<Draft | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const [current, page] = await Promise.all([api.get("/api/v1/admin/settings"), api.get("/api/v1/admin/packages")]);
      setSettings(current);
      setDraft(draftOf(current));
      setPackages(page.items);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    if (me?.role === "admin") void load();
  }, [load, me?.role]);

  async function save(body: components["schemas"]["InstanceSettingsUpdate"], said: string) {
    setError(null);
    setNotice(null);
    try {
      const current = await api.patch("/api/v1/admin/settings", { body });
      setSettings(current);
      setDraft(draftOf(current));
      setNotice(said);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function saveRetention(event: FormEvent) {
    event.preventDefault();
    if (!draft) return;
    const body: Partial<Record<RetentionKey, number | null>> = {};
    for (const { key, what, least } of RETENTION) {
      const text = draft[key].trim();
      if (text === "") {
        body[key] = null;
        continue;
      }
      const days = Number(text);
      if (!Number.isInteger(days) || days < least || days > 36500) {
        setError(`${what}: a whole number of days from ${least} to 36500, or empty to keep everything`);
        return;
      }
      body[key] = days;
    }
    await save(body, "Retention saved. The daily maintenance pass applies it.");
  }

  if (me && me.role !== "admin") return <AdminOnly title="Settings" />;

  return (
    <section className="page" aria-labelledby="settings-title">
      <AdminTabs />
      <h1 id="settings-title">Instance settings</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      {settings && draft && (
        <>
          <section className="account-section" aria-labelledby="accounts-settings-title">
            <h2 id="accounts-settings-title">Accounts</h2>
            <div className="inline-form">
              <label className="check">
                <input
                  type="checkbox"
                  checked={settings.registration_open}
                  onChange={(e) => void save({ registration_open: e.target.checked }, e.target.checked ? "People may sign up." : "Sign-up is closed; existing accounts still sign in.")}
                />
                Anyone may sign up with an email and a password
              </label>
              <label>
                Plan of users without a subscription
                <select
                  aria-label="Default plan"
                  value={settings.default_package ?? ""}
                  onChange={(e) => void save({ default_package: e.target.value || null }, e.target.value ? `New and unsubscribed users are on ${e.target.value}.` : "Users without a subscription have no limits.")}
                >
                  <option value="">none (no limits)</option>
                  {packages.filter((p) => p.active).map((p) => (
                    <option key={p.id} value={p.name}>{p.name}</option>
                  ))}
                </select>
              </label>
            </div>
          </section>
          <form className="account-section" noValidate onSubmit={saveRetention} aria-labelledby="retention-title">
            <h2 id="retention-title">Retention</h2>
            <p className="muted">How long this instance keeps what piles up. Empty keeps everything. A maintenance pass deletes older rows once a day, in small steps so running workflows never wait on it.</p>
            {RETENTION.map(({ key, what, why, least }) => (
              <div className="retention-row" key={key}>
                <div>
                  <div className="what">{what}</div>
                  <div className="why">{why}</div>
                </div>
                <input
                  type="number"
                  min={least}
                  max={36500}
                  step={1}
                  placeholder="keep all"
                  aria-label={`Days to keep: ${what}`}
                  value={draft[key]}
                  onChange={(e) => setDraft({ ...draft, [key]: e.target.value })}
                />
                <span className="muted">{draft[key].trim() ? `deleted after ${draft[key]} day(s)` : "kept forever"}</span>
              </div>
            ))}
            <div style={{ marginTop: 10 }}>
              <button type="submit" className="primary">Save retention</button>
            </div>
          </form>
        </>
      )}
    </section>
  );
}
