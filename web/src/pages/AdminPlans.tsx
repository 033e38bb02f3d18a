import { useCallback, useEffect, useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { formatCost } from "../components/format";
import { AdminOnly, AdminTabs } from "./AdminTabs";
import "./account.css";

type Package = components["schemas"]["PackagePublic"];
type PackageUpdate = components["schemas"]["PackageUpdate"];

/** A whole number or empty (unlimited); null when the text is neither. */
function parseLimit(text: string): number | null | "bad" {
  if (text.trim() === "") return null;
  const value = Number(text);
  return Number.isInteger(value) && value >= 0 ? value : "bad";
}

function NewPackageForm({ onCreated }: { onCreated: (created: Package) => void }) {
  const [name, setName] = useState("");
  const [price, setPrice] = useState("0");
  const [interval, setInterval] = useState<"month" | "year">("month");
  const [runs, setRuns] = useState("");
  const [tokens, setTokens] = useState("");
  const [offered, setOffered] = useState(true);
  const [description, setDescription] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    const maxRuns = parseLimit(runs);
    const maxTokens = parseLimit(tokens);
    if (maxRuns === "bad" || maxTokens === "bad") {
      setError("limits are whole numbers of 0 or more; leave one empty for unlimited");
      return;
    }
    try {
      const created = await api.post("/api/v1/admin/packages", {
        body: {
          name: name.trim(),
          price,
          interval,
          description: description.trim() || null,
          max_runs_per_month: maxRuns,
          max_tokens_per_month: maxTokens,
          public: offered,
          active: true,
          currency: "usd",
        },
      });
      onCreated(created);
      setName("");
      setPrice("0");
      setDescription("");
      setRuns("");
      setTokens("");
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <form className="account-section" style={{ marginTop: 16 }} onSubmit={submit} aria-labelledby="new-plan-title">
      <h2 id="new-plan-title">New plan</h2>
      <p className="muted">Limits count each calendar month (UTC). Leave a limit empty for unlimited.</p>
      <div className="inline-form">
        <label>
          Name
          <input required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label>
          Price
          <input type="number" min={0} step="0.01" required value={price} onChange={(e) => setPrice(e.target.value)} />
        </label>
        <label>
          Per
          <select value={interval} onChange={(e) => setInterval(e.target.value as "month" | "year")}>
            <option value="month">month</option>
            <option value="year">year</option>
          </select>
        </label>
        <label>
          Runs a month
          <input type="number" min={0} step={1} placeholder="unlimited" value={runs} onChange={(e) => setRuns(e.target.value)} />
        </label>
        <label>
          Tokens a month
          <input type="number" min={0} step={1} placeholder="unlimited" value={tokens} onChange={(e) => setTokens(e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" checked={offered} onChange={(e) => setOffered(e.target.checked)} />
          Offered to every user
        </label>
      </div>
      <div className="inline-form" style={{ marginTop: 10 }}>
        <label style={{ flex: 1 }}>
          Description (optional)
          <input maxLength={10000} value={description} onChange={(e) => setDescription(e.target.value)} />
        </label>
        <button type="submit" className="primary">Create plan</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

export function AdminPlansPage() {
  const me = useAuth((s) => s.user);
  const [packages, setPackages] = useState<Package[]>([]);
  const [defaultPackage, setDefaultPackage] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const [page, settings] = await Promise.all([
        api.get("/api/v1/admin/packages"),
        api.get("/api/v1/admin/settings"),
      ]);
      setPackages(page.items);
      setDefaultPackage(settings.default_package ?? null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    if (me?.role === "admin") void load();
  }, [load, me?.role]);

  async function change(pkg: Package, body: PackageUpdate, said: string) {
    setError(null);
    setNotice(null);
    try {
      const updated = await api.patch("/api/v1/admin/packages/{package_id}", { path: { package_id: pkg.id }, body });
      setPackages((old) => old.map((p) => (p.id === updated.id ? updated : p)));
      setNotice(said);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function editLimit(pkg: Package, field: "max_runs_per_month" | "max_tokens_per_month", text: string) {
    const value = parseLimit(text);
    if (value === "bad") {
      setError("limits are whole numbers of 0 or more; leave it empty for unlimited");
      return;
    }
    if (value === (pkg[field] ?? null)) return;
    await change(pkg, { [field]: value }, `${pkg.name}: limit saved.`);
  }

  async function remove(pkg: Package) {
    if (!window.confirm(`Delete the plan ${pkg.name}?`)) return;
    setError(null);
    try {
      await api.delete("/api/v1/admin/packages/{package_id}", { path: { package_id: pkg.id } });
      setPackages((old) => old.filter((p) => p.id !== pkg.id));
      setNotice(`${pkg.name} was deleted.`);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  if (me && me.role !== "admin") return <AdminOnly title="Plans" />;

  return (
    <section className="page" aria-labelledby="plans-title">
      <AdminTabs />
      <h1 id="plans-title">Plans</h1>
      <p className="muted">
        Plans set monthly limits. Users subscribe on their own to plans offered to everyone; give any plan on the Users tab.
        {defaultPackage ? <> Users without a subscription are on <strong>{defaultPackage}</strong>.</> : " Users without a subscription have no limits (choose a default plan in Settings)."}
      </p>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      <table className="list" aria-label="Plans">
        <thead>
          <tr><th>Plan</th><th>Price</th><th>Runs a month</th><th>Tokens a month</th><th>Subscribers</th><th>Offered to users</th><th>Active</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {packages.map((pkg) => (
            <tr key={pkg.id} data-testid={`plan-${pkg.name}`}>
              <td>
                <strong>{pkg.name}</strong>
                {pkg.name === defaultPackage && <span className="state-pill current" style={{ marginLeft: 6 }}>default</span>}
                {pkg.description && <div className="muted">{pkg.description}</div>}
              </td>
              <td>{formatCost(pkg.price)} / {pkg.interval}</td>
              <td>
                <input
                  className="cell-number"
                  type="number"
                  min={0}
                  placeholder="unlimited"
                  aria-label={`Runs a month of ${pkg.name}`}
                  defaultValue={pkg.max_runs_per_month ?? ""}
                  onBlur={(e) => void editLimit(pkg, "max_runs_per_month", e.target.value)}
                />
              </td>
              <td>
                <input
                  className="cell-number"
                  type="number"
                  min={0}
                  placeholder="unlimited"
                  aria-label={`Tokens a month of ${pkg.name}`}
                  defaultValue={pkg.max_tokens_per_month ?? ""}
                  onBlur={(e) => void editLimit(pkg, "max_tokens_per_month", e.target.value)}
                />
              </td>
              <td>{pkg.subscribers}</td>
              <td>
                <input
                  type="checkbox"
                  aria-label={`Offer ${pkg.name} to every user`}
                  checked={pkg.public}
                  onChange={(e) => void change(pkg, { public: e.target.checked }, e.target.checked ? `${pkg.name} is offered to every user.` : `${pkg.name} is no longer offered.`)}
                />
              </td>
              <td>
                <input
                  type="checkbox"
                  aria-label={`${pkg.name} is active`}
                  checked={pkg.active}
                  onChange={(e) => void change(pkg, { active: e.target.checked }, e.target.checked ? `${pkg.name} is active.` : `${pkg.name} takes no new subscribers.`)}
                />
              </td>
              <td>
                <div className="row-actions">
                  <button type="button" className="danger" disabled={pkg.subscribers > 0} title={pkg.subscribers > 0 ? "It has subscribers: deactivate it instead" : undefined} onClick={() => void remove(pkg)} aria-label={`Delete plan ${pkg.name}`}>
                    Delete
                  </button>
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {packages.length === 0 && !error && <p className="muted">No plans yet: every user is unlimited.</p>}
      <NewPackageForm
        onCreated={(created) => {
          setPackages((old) => [...old, created].sort((a, b) => a.name.localeCompare(b.name)));
          setNotice(`${created.name} was created.`);
        }}
      />
    </section>
  );
}
