import { useCallback, useEffect, useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { AdminOnly, AdminTabs } from "./AdminTabs";
import "./account.css";

type AdminUser = components["schemas"]["AdminUserPublic"];
type Role = components["schemas"]["RoleUpdate"]["role"];
type Package = components["schemas"]["PackagePublic"];

function CreditForm({ user, onDone, onCancel }: { user: AdminUser; onDone: (credits: number) => void; onCancel: () => void }) {
  const [amount, setAmount] = useState("10");
  const [reason, setReason] = useState("");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    const value = Number(amount);
    if (!Number.isInteger(value) || value === 0) {
      setError("the amount must be a whole number other than 0 (negative takes credits back)");
      return;
    }
    try {
      const answer = await api.post("/api/v1/admin/users/{user_id}/credits", {
        path: { user_id: user.id },
        body: { amount: value, reason: reason || null },
      });
      onDone(answer.credits);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <form className="account-section credit-form" onSubmit={submit} aria-label={`Grant credits to ${user.email}`}>
      <strong>Credits for {user.email}</strong>
      <span className="muted">holds {user.credits}; each buys one run past the plan's monthly limit</span>
      <label>
        Amount
        <input type="number" step={1} required value={amount} onChange={(e) => setAmount(e.target.value)} />
      </label>
      <label>
        Reason (optional)
        <input maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
      </label>
      <button type="submit" className="primary">Grant</button>
      <button type="button" onClick={onCancel}>Cancel</button>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

export function AdminUsersPage() {
  const me = useAuth((s) => s.user);
  const [users, setUsers] = useState<AdminUser[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [query, setQuery] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [granting, setGranting] = useState<AdminUser | null>(null);
  const [packages, setPackages] = useState<Package[]>([]);

  useEffect(() => {
    if (me?.role !== "admin") return;
    api.get("/api/v1/admin/packages").then((page) => setPackages(page.items), () => undefined);
  }, [me?.role]);

  const load = useCallback(async (after: string | null, email: string) => {
    setError(null);
    try {
      const page = await api.get("/api/v1/admin/users", {
        query: { cursor: after ?? undefined, limit: 25, email: email || undefined },
      });
      setUsers((old) => (after ? [...old, ...page.items] : page.items));
      setCursor(page.next_cursor ?? null);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void load(null, query);
  }, [load, query]);

  function replace(updated: AdminUser) {
    setUsers((old) => old.map((u) => (u.id === updated.id ? { ...u, ...updated } : u)));
  }

  async function setActive(user: AdminUser, active: boolean) {
    setError(null);
    setNotice(null);
    if (!active && !window.confirm(`Disable ${user.email}? Their sessions and API keys end now.`)) return;
    try {
      if (active) {
        replace(await api.post("/api/v1/admin/users/{user_id}/enable", { path: { user_id: user.id } }));
        setNotice(`${user.email} may sign in again.`);
      } else {
        const answer = await api.post("/api/v1/admin/users/{user_id}/disable", { path: { user_id: user.id } });
        replace(answer);
        setNotice(
          `${user.email} is disabled: ${answer.sessions_ended} session(s) and ${answer.api_keys_revoked} API key(s) ended.`,
        );
      }
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function setRole(user: AdminUser, role: Role) {
    setError(null);
    setNotice(null);
    const question =
      role === "admin"
        ? `Make ${user.email} an admin? Admins manage every account and the instance.`
        : `Make ${user.email} a plain user? They lose access to the admin pages.`;
    if (!window.confirm(question)) {
      await load(null, query);
      return;
    }
    try {
      replace(await api.patch("/api/v1/admin/users/{user_id}", { path: { user_id: user.id }, body: { role } }));
      setNotice(`${user.email} is now ${role === "admin" ? "an admin" : "a user"}.`);
    } catch (caught) {
      setError(errorMessage(caught));
      await load(null, query);
    }
  }

  async function setPlan(user: AdminUser, packageId: string) {
    setError(null);
    setNotice(null);
    try {
      if (packageId === "") {
        await api.delete("/api/v1/admin/users/{user_id}/subscription", { path: { user_id: user.id } });
        replace({ ...user, package: null });
        setNotice(`${user.email} is back on the default plan.`);
      } else {
        const given = await api.put("/api/v1/admin/users/{user_id}/subscription", {
          path: { user_id: user.id },
          body: { package_id: packageId },
        });
        replace({ ...user, package: given.package });
        setNotice(`${user.email} is now on ${given.package.name}.`);
      }
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function remove(user: AdminUser) {
    setError(null);
    setNotice(null);
    const typed = window.prompt(
      `Delete ${user.email} and everything they own (workflows, runs, usage, threads, keys)? This cannot be undone. Type the email to confirm.`,
    );
    if (typed === null) return;
    if (typed.trim().toLowerCase() !== user.email.toLowerCase()) {
      setError("the email typed does not match; nothing was deleted");
      return;
    }
    try {
      const answer = await api.delete("/api/v1/admin/users/{user_id}", { path: { user_id: user.id } });
      setUsers((old) => old.filter((u) => u.id !== user.id));
      const runs = answer.deleted.workflow_runs ?? 0;
      setNotice(`${answer.email} was deleted with ${runs} run(s)${answer.runs_cancelled ? `, ${answer.runs_cancelled} cancelled first` : ""}.`);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  if (me && me.role !== "admin") return <AdminOnly title="Users" />;

  return (
    <section className="page" aria-labelledby="admin-users-title">
      <AdminTabs />
      <div className="page-head">
        <h1 id="admin-users-title">Users</h1>
      </div>
      <p className="muted">Every account of this instance. Disabling one ends its sessions and API keys at once.</p>
      <form
        className="search-row"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          setQuery(search.trim());
        }}
      >
        <input type="search" aria-label="Search by email" placeholder="Search by email" value={search} onChange={(e) => setSearch(e.target.value)} />
        <button type="submit">Search</button>
        {query && (
          <button type="button" onClick={() => { setSearch(""); setQuery(""); }}>Clear</button>
        )}
      </form>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      {granting && (
        <CreditForm
          user={granting}
          onCancel={() => setGranting(null)}
          onDone={(credits) => {
            replace({ ...granting, credits });
            setNotice(`${granting.email} now holds ${credits} credit(s).`);
            setGranting(null);
          }}
        />
      )}
      <table className="list" aria-label="Users">
        <thead>
          <tr><th>Email</th><th>Role</th><th>State</th><th>Plan</th><th>Credits</th><th>Last sign-in</th><th><span className="sr-only">Actions</span></th></tr>
        </thead>
        <tbody>
          {users.map((user) => {
            const self = user.id === me?.id;
            return (
              <tr key={user.id} data-testid={`user-${user.email}`}>
                <td className="email">
                  {user.email}
                  {self && <span className="muted"> (you)</span>}
                </td>
                <td>
                  <select
                    className="role-select"
                    aria-label={`Role of ${user.email}`}
                    value={user.role}
                    onChange={(e) => void setRole(user, e.target.value as Role)}
                  >
                    <option value="user">user</option>
                    <option value="admin">admin</option>
                  </select>
                </td>
                <td>
                  <span className={`state-pill ${user.is_active ? "active" : "disabled"}`}>{user.is_active ? "active" : "disabled"}</span>
                </td>
                <td>
                  <select
                    aria-label={`Plan of ${user.email}`}
                    value={user.package?.id ?? ""}
                    onChange={(e) => void setPlan(user, e.target.value)}
                  >
                    <option value="">default</option>
                    {packages.filter((p) => p.active || p.id === user.package?.id).map((p) => (
                      <option key={p.id} value={p.id}>{p.name}</option>
                    ))}
                  </select>
                </td>
                <td>{user.credits}</td>
                <td>{user.last_login_at ? new Date(user.last_login_at).toLocaleString() : "never"}</td>
                <td>
                  <div className="row-actions">
                    <button type="button" onClick={() => setGranting(user)} aria-label={`Grant credits to ${user.email}`}>Credits…</button>
                    {user.is_active ? (
                      <button
                        type="button"
                        className="danger"
                        disabled={self}
                        title={self ? "You cannot disable your own account" : undefined}
                        onClick={() => void setActive(user, false)}
                        aria-label={`Disable ${user.email}`}
                      >
                        Disable
                      </button>
                    ) : (
                      <button type="button" onClick={() => void setActive(user, true)} aria-label={`Enable ${user.email}`}>Enable</button>
                    )}
                    <button
                      type="button"
                      className="danger"
                      disabled={self}
                      title={self ? "You cannot delete your own account" : "Delete the account and all its data"}
                      onClick={() => void remove(user)}
                      aria-label={`Delete ${user.email}`}
                    >
                      Delete
                    </button>
                  </div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {users.length === 0 && !error && <p className="muted">No account matches.</p>}
      {cursor && <button type="button" onClick={() => void load(cursor, query)}>Load more</button>}
    </section>
  );
}
