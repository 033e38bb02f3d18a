import { NavLink } from "react-router-dom";

import "./admin.css";

const TABS: [string, string][] = [
  ["/admin/users", "Users"],
  ["/admin/plans", "Plans"],
  ["/admin/usage", "Usage"],
  ["/admin/models", "Models"],
  ["/admin/settings", "Settings"],
  ["/admin/audit", "Audit log"],
  ["/admin/health", "Health"],
];

/** The admin area's tabs, above every admin page. */
export function AdminTabs() {
  return (
    <nav className="admin-tabs" aria-label="Administration">
      {TABS.map(([to, label]) => (
        <NavLink key={to} to={to}>{label}</NavLink>
      ))}
    </nav>
  );
}

/** What a non-admin sees on an admin page. */
export function AdminOnly({ title }: { title: string }) {
  return (
    <section className="page">
      <h1>{title}</h1>
      <p>Only administrators of this instance see this page.</p>
    </section>
  );
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
