/** A workflow's triggers: webhooks (address and secret token shown once, on/off, last calls)
 * and schedules (cron in words, time zone, next five fire times, on/off, last firings). */
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router-dom";

import { ApiError, api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import type { RunPublic } from "../api/types";
import { StatusBadge } from "./Runs";
import "./ops.css";

type Trigger = components["schemas"]["TriggerPublic"];
type TriggerCreated = components["schemas"]["TriggerCreated"];
type Preview = components["schemas"]["SchedulePreview"];
type TriggerEvent = components["schemas"]["TriggerEvent"];

/** One input of the workflow's manual trigger (what a webhook call's JSON body fills). */
interface InputField {
  name: string;
  type?: string;
  description?: string;
}

/** The fields of every trigger.manual node of a definition. */
export function inputFields(definition: unknown): InputField[] {
  const nodes = (definition as { nodes?: unknown[] } | null)?.nodes;
  const fields: InputField[] = [];
  for (const node of Array.isArray(nodes) ? nodes : []) {
    const n = node as { type?: string; data?: { config?: { fields?: unknown } } };
    if (n.type !== "trigger.manual" || !Array.isArray(n.data?.config?.fields)) continue;
    for (const f of n.data.config.fields) {
      if (f && typeof f === "object" && typeof (f as InputField).name === "string") fields.push(f as InputField);
    }
  }
  return fields;
}

const PRESETS: [string, string][] = [
  ["Every 15 minutes", "*/15 * * * *"],
  ["Every hour", "0 * * * *"],
  ["Every day at 09:00", "0 9 * * *"],
  ["Weekdays at 09:00", "0 9 * * 1-5"],
  ["Mondays at 08:00", "0 8 * * 1"],
  ["First day of the month at 06:00", "0 6 1 * *"],
];

function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** A time as the schedule's own clock shows it, e.g. "Mon, Dec 7, 09:30". */
function inZone(iso: string, zone: string): string {
  try {
    return new Intl.DateTimeFormat(undefined, {
      weekday: "short",
      month: "short",
      day: "numeric",
      year: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZone: zone,
    }).format(new Date(iso));
  } catch {
    return new Date(iso).toLocaleString();
  }
}

export function hookAddress(path: string): string {
  return new URL(path, window.location.origin).toString();
}

/** Copies ``text``; says so on the button for a moment. */
function CopyButton({ text, what }: { text: string; what: string }) {
  const [done, setDone] = useState(false);
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without the asynchronous clipboard (an insecure origin): the old way.
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    setDone(true);
    window.setTimeout(() => setDone(false), 1500);
  }
  return (
    <button type="button" onClick={() => void copy()} aria-label={`Copy the ${what}`}>
      {done ? "Copied" : "Copy"}
    </button>
  );
}

function LastCalls({ trigger, version }: { trigger: Trigger; version: number }) {
  const [runs, setRuns] = useState<RunPublic[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api
      .get("/api/v1/triggers/{trigger_id}/calls", { path: { trigger_id: trigger.id }, query: { limit: 5 } })
      .then((page) => setRuns(page.items))
      .catch((caught) => setError(errorMessage(caught)));
  }, [trigger.id, version]);
  const title = trigger.kind === "webhook" ? "Last calls" : "Last firings";
  return (
    <div>
      <strong>{title}</strong>
      {error && <p className="error">{error}</p>}
      {runs && runs.length === 0 && <p className="muted">None yet.</p>}
      {runs && runs.length > 0 && (
        <ul className="fire-times" aria-label={`${title} of ${trigger.id}`}>
          {runs.map((run) => (
            <li key={run.id}>
              <Link to={`/runs/${run.id}`}>{new Date(run.created_at).toLocaleString()}</Link>{" "}
              <StatusBadge status={run.status} />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Events({ trigger, version }: { trigger: Trigger; version: number }) {
  const [events, setEvents] = useState<TriggerEvent[]>([]);
  useEffect(() => {
    api
      .get("/api/v1/triggers/{trigger_id}/events", { path: { trigger_id: trigger.id }, query: { limit: 5 } })
      .then((page) => setEvents(page.items))
      .catch(() => setEvents([]));
  }, [trigger.id, version]);
  if (events.length === 0) return null;
  const zone = trigger.timezone ?? "UTC";
  const title = trigger.kind === "webhook" ? "Refused calls" : "Missed fire times";
  return (
    <div>
      <strong>{title}</strong>
      <ul className="fire-times" aria-label={`${title} of ${trigger.id}`}>
        {events.map((event) => (
          <li key={event.id}>
            {event.kind === "missed"
              ? `${event.count_is_lower_bound ? "at least " : ""}${event.missed} fire time${event.missed === 1 ? "" : "s"} from ${inZone(event.first_missed_at ?? event.at, zone)} to ${inZone(event.last_missed_at ?? event.at, zone)}, while the server was down`
              : `${new Date(event.at).toLocaleString()}: ${event.reason ?? "refused"}${event.ip ? ` (from ${event.ip})` : ""}`}
          </li>
        ))}
      </ul>
    </div>
  );
}

function TestCall({ trigger, fields, onSent }: { trigger: Trigger; fields: InputField[]; onSent: () => void }) {
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [started, setStarted] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  async function send(event: FormEvent) {
    event.preventDefault();
    const inputs: Record<string, unknown> = {};
    for (const field of fields) {
      const value = values[field.name];
      if (value === undefined || value === "") continue;
      inputs[field.name] = field.type === "number" || field.type === "integer" ? Number(value) : value;
    }
    try {
      const answer = await api.post("/api/v1/triggers/{trigger_id}/test", { path: { trigger_id: trigger.id }, body: { inputs } });
      setStarted(answer.run_id);
      setError(null);
      window.setTimeout(onSent, 800);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }
  return (
    <form className="test-call" onSubmit={send} aria-label={`Test call of ${trigger.id}`}>
      <strong>Test call</strong>
      {fields.length === 0 && <p className="hint">The workflow takes no inputs: the call sends an empty body.</p>}
      {fields.map((field) => (
        <label key={field.name} className={field.type === "boolean" ? "check" : undefined}>
          {field.type === "boolean" ? (
            <input type="checkbox" checked={values[field.name] === true} onChange={(e) => setValues({ ...values, [field.name]: e.target.checked })} />
          ) : null}
          {field.name}
          {field.type !== "boolean" && (
            <input
              type={field.type === "number" || field.type === "integer" ? "number" : "text"}
              value={String(values[field.name] ?? "")}
              onChange={(e) => setValues({ ...values, [field.name]: e.target.value })}
              placeholder={field.description ?? ""}
            />
          )}
        </label>
      ))}
      <div>
        <button type="submit" disabled={!trigger.enabled}>Send a test call</button>
        {!trigger.enabled && <span className="hint"> Switch it on to test it.</span>}
      </div>
      {started && <p role="status">Started <Link to={`/runs/${started}`}>the run</Link>.</p>}
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

function SecretOnce({ created, onDone }: { created: TriggerCreated; onDone: () => void }) {
  const address = hookAddress(created.url ?? "");
  const token = created.token ?? "";
  return (
    <div className="secret-once" role="status" aria-label="New webhook secret">
      <strong>Copy the token now: it is shown this once.</strong>
      <div className="copy-row">
        <span>Address</span>
        <code data-testid="hook-url">{address}</code>
        <CopyButton text={address} what="webhook address" />
      </div>
      <div className="copy-row">
        <span>Token</span>
        <code data-testid="hook-token">{token}</code>
        <CopyButton text={token} what="webhook token" />
      </div>
      <p className="hint">
        Call it with <code>POST</code> and the header <code>X-Flowloom-Token</code>; the JSON body becomes the run's inputs.
      </p>
      <div className="copy-row">
        <code>{`curl -X POST '${address}' -H 'X-Flowloom-Token: ${token}' -H 'Content-Type: application/json' -d '{}'`}</code>
      </div>
      <div><button type="button" onClick={onDone}>I have stored it</button></div>
    </div>
  );
}

function WebhookCard({ trigger, fields, onChange }: { trigger: Trigger; fields: InputField[]; onChange: (t: Trigger | null) => void }) {
  const [secret, setSecret] = useState<TriggerCreated | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [version, setVersion] = useState(0);
  async function act(action: () => Promise<void>) {
    try {
      await action();
      setError(null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }
  const address = hookAddress(trigger.url ?? "");
  return (
    <article className="trigger-card" aria-label={`Webhook ${trigger.id}`} data-trigger-id={trigger.id}>
      <header>
        <h3>Webhook</h3>
        <span className={trigger.enabled ? "pill on" : "pill"}>{trigger.enabled ? "On" : "Off"}</span>
      </header>
      <div className="button-row card-actions">
        <button type="button" onClick={() => setVersion((v) => v + 1)}>Refresh</button>
        <button
          type="button"
          onClick={() =>
            void act(async () => {
              onChange(await api.patch("/api/v1/triggers/{trigger_id}", { path: { trigger_id: trigger.id }, body: { enabled: !trigger.enabled } }));
            })
          }
        >
          {trigger.enabled ? "Switch off" : "Switch on"}
        </button>
        <button
          type="button"
          onClick={() =>
            void act(async () => {
              if (!window.confirm("Make a new token? The old one stops working at once.")) return;
              setSecret(await api.post("/api/v1/triggers/{trigger_id}/token", { path: { trigger_id: trigger.id } }));
            })
          }
        >
          New token
        </button>
        <button
          type="button"
          className="danger"
          onClick={() =>
            void act(async () => {
              if (!window.confirm("Delete this webhook? Calls to its address will be refused.")) return;
              await api.delete("/api/v1/triggers/{trigger_id}", { path: { trigger_id: trigger.id } });
              onChange(null);
            })
          }
        >
          Delete
        </button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {secret && <SecretOnce created={secret} onDone={() => setSecret(null)} />}
      <div className="copy-row">
        <code>{address}</code>
        <CopyButton text={address} what="webhook address" />
      </div>
      <p className="muted">
        {trigger.respond === "output"
          ? `Answers with the run's outputs (waits up to ${trigger.timeout_s ?? 30} s).`
          : "Answers at once with the id of the run it started."}
      </p>
      <TestCall trigger={trigger} fields={fields} onSent={() => setVersion((v) => v + 1)} />
      <LastCalls trigger={trigger} version={version} />
      <Events trigger={trigger} version={version} />
    </article>
  );
}

function ScheduleCard({ trigger, onChange }: { trigger: Trigger; onChange: (t: Trigger | null) => void }) {
  const [error, setError] = useState<string | null>(null);
  const zone = trigger.timezone ?? "UTC";
  async function act(action: () => Promise<void>) {
    try {
      await action();
      setError(null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }
  return (
    <article className="trigger-card" aria-label={`Schedule ${trigger.id}`} data-trigger-id={trigger.id}>
      <header>
        <h3>{trigger.description ?? trigger.cron}</h3>
        <span className={trigger.enabled ? "pill on" : "pill"}>{trigger.enabled ? "On" : "Off"}</span>
      </header>
      <div className="button-row card-actions">
        <button
          type="button"
          onClick={() =>
            void act(async () => {
              onChange(await api.patch("/api/v1/triggers/{trigger_id}", { path: { trigger_id: trigger.id }, body: { enabled: !trigger.enabled } }));
            })
          }
        >
          {trigger.enabled ? "Switch off" : "Switch on"}
        </button>
        <button
          type="button"
          className="danger"
          onClick={() =>
            void act(async () => {
              if (!window.confirm("Delete this schedule?")) return;
              await api.delete("/api/v1/triggers/{trigger_id}", { path: { trigger_id: trigger.id } });
              onChange(null);
            })
          }
        >
          Delete
        </button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      <p className="muted">
        <code>{trigger.cron}</code> in {zone}
        {trigger.last_fired_at ? ` · last fired ${inZone(trigger.last_fired_at, zone)}` : " · has not fired yet"}
      </p>
      {trigger.enabled ? (
        <div>
          <strong>Next five fire times ({zone})</strong>
          <ol className="fire-times" aria-label={`Next fire times of ${trigger.id}`}>
            {trigger.upcoming.map((time) => <li key={time}>{inZone(time, zone)}</li>)}
          </ol>
        </div>
      ) : (
        <p className="muted">Switched off: it fires again from the next time after it is switched on.</p>
      )}
      <LastCalls trigger={trigger} version={0} />
      <Events trigger={trigger} version={0} />
    </article>
  );
}

function NewSchedule({ workflowId, zones, onMade }: { workflowId: string; zones: string[]; onMade: (t: Trigger) => void }) {
  const [cron, setCron] = useState("0 9 * * 1-5");
  const [zone, setZone] = useState(() => browserZone());
  const [preview, setPreview] = useState<Preview | null>(null);
  const [problem, setProblem] = useState<{ field: string | null; message: string } | null>(null);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    if (zones.length && !zones.includes(zone)) setZone("UTC");
  }, [zones, zone]);

  useEffect(() => {
    if (!cron.trim()) {
      setPreview(null);
      setProblem({ field: "cron", message: "a schedule needs a cron expression" });
      return;
    }
    let live = true;
    const timer = window.setTimeout(() => {
      api
        .get("/api/v1/schedule-preview", { query: { cron, timezone: zone } })
        .then((answer) => {
          if (!live) return;
          setPreview(answer);
          setProblem(null);
        })
        .catch((caught) => {
          if (!live) return;
          setPreview(null);
          const first = caught instanceof ApiError ? caught.errors[0] : undefined;
          setProblem({ field: first?.field ?? null, message: first?.message ?? errorMessage(caught) });
        });
    }, 250);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [cron, zone]);

  async function save(event: FormEvent) {
    event.preventDefault();
    setSaving(true);
    try {
      onMade(await createTrigger(workflowId, { kind: "schedule", enabled: true, cron, timezone: zone }));
    } catch (caught) {
      const first = caught instanceof ApiError ? caught.errors[0] : undefined;
      setProblem({ field: first?.field ?? null, message: first?.message ?? errorMessage(caught) });
    } finally {
      setSaving(false);
    }
  }

  return (
    <form className="card" onSubmit={save} aria-label="New schedule">
      <h3>New schedule</h3>
      <label>
        Starting point
        <select value="" onChange={(e) => e.target.value && setCron(e.target.value)}>
          <option value="">Pick a common schedule…</option>
          {PRESETS.map(([name, value]) => <option key={value} value={value}>{name}</option>)}
        </select>
      </label>
      <label>
        Cron expression
        <input
          value={cron}
          onChange={(e) => setCron(e.target.value)}
          aria-invalid={problem?.field === "cron" ? "true" : undefined}
          spellCheck={false}
        />
        <span className="hint">minute hour day-of-month month day-of-week, e.g. */15 9-17 * * 1-5</span>
      </label>
      <label>
        Time zone
        <select value={zone} onChange={(e) => setZone(e.target.value)} aria-invalid={problem?.field === "timezone" ? "true" : undefined}>
          {(zones.length ? zones : [zone]).map((name) => <option key={name} value={name}>{name.replace(/_/g, " ")}</option>)}
        </select>
      </label>
      {problem && <p className="error" role="alert">{problem.field ? `${problem.field}: ` : ""}{problem.message}</p>}
      {preview && (
        <div aria-label="Schedule preview">
          <p className="cron-text" data-testid="cron-words">{preview.description}</p>
          <strong>Next five fire times ({preview.timezone})</strong>
          <ol className="fire-times">
            {preview.upcoming.map((time) => <li key={time}>{inZone(time, preview.timezone)}</li>)}
          </ol>
        </div>
      )}
      <div><button type="submit" className="primary" disabled={saving || !preview}>Add schedule</button></div>
    </form>
  );
}

function createTrigger(workflowId: string, body: components["schemas"]["TriggerCreate"]): Promise<TriggerCreated> {
  return api.post("/api/v1/workflows/{workflow_id}/triggers", { path: { workflow_id: workflowId }, body });
}

export function TriggersPage() {
  const { workflowId = "" } = useParams();
  const [name, setName] = useState<string | null>(null);
  const [fields, setFields] = useState<InputField[]>([]);
  const [triggers, setTriggers] = useState<Trigger[] | null>(null);
  const [zones, setZones] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [secret, setSecret] = useState<TriggerCreated | null>(null);
  const [respond, setRespond] = useState<"run" | "output">("run");

  const load = useCallback(async () => {
    try {
      const [workflow, page] = await Promise.all([
        api.get("/api/v1/workflows/{workflow_id}", { path: { workflow_id: workflowId } }),
        api.get("/api/v1/workflows/{workflow_id}/triggers", { path: { workflow_id: workflowId }, query: { limit: 100 } }),
      ]);
      setName(workflow.name);
      setFields(inputFields(workflow.definition));
      setTriggers(page.items);
      setError(null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, [workflowId]);

  useEffect(() => {
    void load();
    api.get("/api/v1/timezones").then((answer) => setZones(answer.items)).catch(() => undefined);
  }, [load]);

  function replace(id: string, changed: Trigger | null) {
    setTriggers((old) => (old ?? []).flatMap((t) => (t.id !== id ? [t] : changed ? [changed] : [])));
  }

  async function addWebhook() {
    try {
      const made = await createTrigger(workflowId, { kind: "webhook", enabled: true, respond });
      setSecret(made);
      setTriggers((old) => [made, ...(old ?? [])]);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  const hooks = (triggers ?? []).filter((t) => t.kind === "webhook");
  const schedules = (triggers ?? []).filter((t) => t.kind === "schedule");
  return (
    <section className="page" aria-labelledby="triggers-title">
      <div className="page-head">
        <h1 id="triggers-title">Triggers{name ? ` of ${name}` : ""}</h1>
        <Link className="button-link" to={`/workflows/${workflowId}`}>Open the canvas</Link>
        <Link className="button-link" to={`/runs?workflow=${encodeURIComponent(workflowId)}`}>Its runs</Link>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {triggers === null && !error && <p role="status">Loading…</p>}
      {triggers !== null && (
        <div className="two-col">
          <div>
            <h2>Webhooks</h2>
            <p className="muted">An address that starts a run when something posts to it.</p>
            <div className="card">
              <label>
                The call is answered with
                <select value={respond} onChange={(e) => setRespond(e.target.value as "run" | "output")}>
                  <option value="run">the id of the run, at once</option>
                  <option value="output">the run's outputs, once it has finished</option>
                </select>
              </label>
              <div><button type="button" className="primary" onClick={() => void addWebhook()}>Add a webhook</button></div>
            </div>
            {secret && <SecretOnce created={secret} onDone={() => setSecret(null)} />}
            {hooks.length === 0 && <p className="muted">No webhook yet.</p>}
            {hooks.map((t) => <WebhookCard key={t.id} trigger={t} fields={fields} onChange={(changed) => replace(t.id, changed)} />)}
          </div>
          <div>
            <h2>Schedules</h2>
            <p className="muted">Runs started by the clock.</p>
            <NewSchedule workflowId={workflowId} zones={zones} onMade={(made) => setTriggers((old) => [made, ...(old ?? [])])} />
            {schedules.length === 0 && <p className="muted">No schedule yet.</p>}
            {schedules.map((t) => <ScheduleCard key={t.id} trigger={t} onChange={(changed) => replace(t.id, changed)} />)}
          </div>
        </div>
      )}
    </section>
  );
}
