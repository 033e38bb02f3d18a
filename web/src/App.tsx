import { lazy, Suspense, useEffect, type ComponentType, type ReactNode } from "react";
import { Link, Navigate, NavLink, Route, Routes, useLocation, useNavigate } from "react-router-dom";

import { setUnauthenticatedHandler } from "./api/client";
import { useAuth } from "./auth";
import { mayLeave } from "./editor/backGuard";
import { ThemeToggle } from "./components/ThemeToggle";
import { AuthPage } from "./pages/Auth";
import { EditorPage } from "./pages/Editor";
import { WorkflowsPage } from "./pages/Workflows";

/** A page loaded when first visited: the editor and the workflow list load with the app, the
 * rest as their own chunks, so opening a workflow parses less. */
function page<M extends Record<string, unknown>>(load: () => Promise<M>, name: keyof M) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return lazy(async () => ({ default: (await load())[name] as ComponentType<any> }));
}

const AccountPage = page(() => import("./pages/Account"), "AccountPage");
const AdminAuditPage = page(() => import("./pages/AdminAudit"), "AdminAuditPage");
const AdminHealthPage = page(() => import("./pages/AdminHealth"), "AdminHealthPage");
const AdminModelsPage = page(() => import("./pages/AdminModels"), "AdminModelsPage");
const AdminPlansPage = page(() => import("./pages/AdminPlans"), "AdminPlansPage");
const AdminSettingsPage = page(() => import("./pages/AdminSettings"), "AdminSettingsPage");
const AdminUsagePage = page(() => import("./pages/AdminUsage"), "AdminUsagePage");
const AdminUsersPage = page(() => import("./pages/AdminUsers"), "AdminUsersPage");
const AgentsPage = page(() => import("./pages/Agents"), "AgentsPage");
const ApiKeysPage = page(() => import("./pages/ApiKeys"), "ApiKeysPage");
const CredentialsPage = page(() => import("./pages/Credentials"), "CredentialsPage");
const GeneratePage = page(() => import("./pages/Generate"), "GeneratePage");
const IntegrationsPage = page(() => import("./pages/Integrations"), "IntegrationsPage");
const MemoryPage = page(() => import("./pages/Memory"), "MemoryPage");
const PlanPage = page(() => import("./pages/Plan"), "PlanPage");
const RunPage = page(() => import("./pages/RunPage"), "RunPage");
const RunsPage = page(() => import("./pages/Runs"), "RunsPage");
const TriggersPage = page(() => import("./pages/Triggers"), "TriggersPage");
const ThreadsPage = page(() => import("./pages/Threads"), "ThreadsPage");
const UsagePage = page(() => import("./pages/Usage"), "UsagePage");

function RequireUser({ children }: { children: ReactNode }) {
  const { user, known } = useAuth();
  const location = useLocation();
  if (!known) return <p className="loading" role="status">Loading…</p>;
  if (!user) return <Navigate to="/signin" replace state={{ from: location.pathname }} />;
  return <>{children}</>;
}

function Header() {
  const user = useAuth((s) => s.user);
  const signOut = useAuth((s) => s.signOut);
  const navigate = useNavigate();
  return (
    <header className="app-header">
      <Link to="/" className="brand">flowloom</Link>
      {user && (
        <nav aria-label="Main">
          <NavLink to="/" end>Workflows</NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/generate">Describe</NavLink>
          <NavLink to="/agents">Agents</NavLink>
          <NavLink to="/threads">Threads</NavLink>
          <NavLink to="/integrations">Integrations</NavLink>
          <NavLink to="/credentials">Credentials</NavLink>
          <NavLink to="/usage">Usage</NavLink>
          <NavLink to="/api-keys">API keys</NavLink>
          {user.role === "admin" && <NavLink to="/admin/users">Admin</NavLink>}
        </nav>
      )}
      <span className="spacer" />
      <ThemeToggle />
      {user && (
        <>
          <NavLink to="/account" className="who" title={`Account: password, sessions and API keys of ${user.email}`}>
            Account · {user.username ?? user.email}
          </NavLink>
          <button
            type="button"
            onClick={async () => {
              // An editor with unsaved changes asks first.
              if (!(await mayLeave())) return;
              await signOut().catch(() => undefined);
              navigate("/signin");
            }}
          >
            Sign out
          </button>
        </>
      )}
    </header>
  );
}

export function App() {
  const refresh = useAuth((s) => s.refresh);
  const forget = useAuth((s) => s.forget);
  useEffect(() => {
    void refresh();
    setUnauthenticatedHandler(forget);
    return () => setUnauthenticatedHandler(null);
  }, [refresh, forget]);

  return (
    <div className="app">
      <a className="skip-link" href="#main">Skip to content</a>
      <Header />
      <main id="main">
        <Suspense fallback={<p className="loading" role="status">Loading…</p>}>
        <Routes>
          <Route path="/signin" element={<AuthPage mode="signin" />} />
          <Route path="/signup" element={<AuthPage mode="signup" />} />
          <Route path="/" element={<RequireUser><WorkflowsPage /></RequireUser>} />
          <Route path="/api-keys" element={<RequireUser><ApiKeysPage /></RequireUser>} />
          <Route path="/account" element={<RequireUser><AccountPage /></RequireUser>} />
          <Route path="/admin/users" element={<RequireUser><AdminUsersPage /></RequireUser>} />
          <Route path="/admin/plans" element={<RequireUser><AdminPlansPage /></RequireUser>} />
          <Route path="/admin/usage" element={<RequireUser><AdminUsagePage /></RequireUser>} />
          <Route path="/admin/models" element={<RequireUser><AdminModelsPage /></RequireUser>} />
          <Route path="/admin/settings" element={<RequireUser><AdminSettingsPage /></RequireUser>} />
          <Route path="/admin/audit" element={<RequireUser><AdminAuditPage /></RequireUser>} />
          <Route path="/admin/health" element={<RequireUser><AdminHealthPage /></RequireUser>} />
          <Route path="/plan" element={<RequireUser><PlanPage /></RequireUser>} />
          <Route path="/memory" element={<RequireUser><MemoryPage /></RequireUser>} />
          <Route path="/usage" element={<RequireUser><UsagePage /></RequireUser>} />
          <Route path="/credentials" element={<RequireUser><CredentialsPage /></RequireUser>} />
          <Route path="/integrations" element={<RequireUser><IntegrationsPage /></RequireUser>} />
          <Route path="/agents" element={<RequireUser><AgentsPage /></RequireUser>} />
          <Route path="/threads" element={<RequireUser><ThreadsPage /></RequireUser>} />
          <Route path="/threads/:threadId" element={<RequireUser><ThreadsPage /></RequireUser>} />
          <Route path="/generate" element={<RequireUser><GeneratePage /></RequireUser>} />
          <Route path="/runs" element={<RequireUser><RunsPage /></RequireUser>} />
          <Route path="/runs/:runId" element={<RequireUser><RunPage /></RequireUser>} />
          <Route path="/workflows/:workflowId/triggers" element={<RequireUser><TriggersPage /></RequireUser>} />
          <Route path="/workflows/:workflowId" element={<RequireUser><EditorPage /></RequireUser>} />
          <Route path="*" element={<p className="page">Nothing here. <Link to="/">Back to your workflows</Link></p>} />
        </Routes>
        </Suspense>
      </main>
    </div>
  );
}
