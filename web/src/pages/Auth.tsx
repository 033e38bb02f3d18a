import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, Navigate, useLocation, useNavigate } from "react-router-dom";

import { ApiError, api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import "./admin.css";

type SignInOptions = components["schemas"]["SignInOptions"];

/** The identity provider's token, sent back in the address's fragment (never to a server). */
function tokenFromFragment(hash: string): string | null {
  const token = new URLSearchParams(hash.replace(/^#/, "")).get("token");
  return token && token.length < 16_000 ? token : null;
}

/**
 * Signing in with the identity provider: a button to its sign-in page, and the return with
 * `#token=`. When the token's email belongs to a password account not yet linked, the account's
 * password links the two (the token proves the identity, the password the account).
 */
function ExternalSignIn({ options, onSignedIn }: { options: SignInOptions; onSignedIn: () => void }) {
  const location = useLocation();
  const token = tokenFromFragment(location.hash);
  const [linking, setLinking] = useState<string | null>(null);
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const tried = useRef<string | null>(null);

  async function send(withPassword?: string) {
    if (!token) return;
    setError(null);
    try {
      await api.post("/api/v1/auth/external", { body: { token, password: withPassword ?? null } });
      window.history.replaceState(null, "", window.location.pathname);
      onSignedIn();
    } catch (caught) {
      if (caught instanceof ApiError && caught.status === 409 && !withPassword) setLinking(caught.detail.match(/email (\S+) already exists/)?.[1] ?? "this email");
      else setError(errorMessage(caught));
    }
  }

  useEffect(() => {
    if (token && tried.current !== token) {
      tried.current = token;
      void send();
    }
    // Sent once per token the address brings.
  }, [token]); // eslint-disable-line react-hooks/exhaustive-deps

  const provider = options.external;
  if (!provider) return null;
  const name = provider.provider.charAt(0).toUpperCase() + provider.provider.slice(1);
  return (
    <div aria-label="Identity provider">
      {linking ? (
        <form
          className="card"
          onSubmit={(event) => {
            event.preventDefault();
            void send(password);
          }}
        >
          <p role="status">
            You already have an account with <strong>{linking}</strong>. Enter its password once to link your {name} sign-in to it; after that, {name} alone signs you in.
          </p>
          <label>
            Password of that account
            <input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
          <button type="submit" className="primary">Link and sign in</button>
        </form>
      ) : (
        <a className="provider-link" href={provider.sign_in_url}>Sign in with {name}</a>
      )}
      {error && <p className="error" role="alert">{error}</p>}
      <div className="signin-divider">or with your email</div>
    </div>
  );
}

export function AuthPage({ mode }: { mode: "signin" | "signup" }) {
  const { user, signIn, signUp } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [username, setUsername] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const from = (location.state as { from?: string } | null)?.from ?? "/";
  const refresh = useAuth((s) => s.refresh);
  const [options, setOptions] = useState<SignInOptions | null>(null);

  useEffect(() => {
    api.get("/api/v1/auth/providers").then(setOptions, () => setOptions(null));
  }, []);

  if (user) return <Navigate to={from} replace />;

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "signin") await signIn(email, password);
      else await signUp(email, password, username);
      navigate(from, { replace: true });
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  const title = mode === "signin" ? "Sign in" : "Create an account";
  return (
    <section className="auth-card" aria-labelledby="auth-title">
      <h1 id="auth-title">{title}</h1>
      {options?.external && <ExternalSignIn options={options} onSignedIn={() => void refresh()} />}
      <form onSubmit={submit}>
        <label>
          Email
          <input type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
        </label>
        {mode === "signup" && (
          <label>
            Name (optional)
            <input autoComplete="username" value={username} onChange={(e) => setUsername(e.target.value)} />
          </label>
        )}
        <label>
          Password
          <input
            type="password"
            autoComplete={mode === "signin" ? "current-password" : "new-password"}
            required
            minLength={mode === "signup" ? 8 : 1}
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        {mode === "signup" && <p className="hint">At least 8 characters.</p>}
        {error && <p className="error" role="alert">{error}</p>}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Please wait…" : title}
        </button>
      </form>
      <p>
        {mode === "signin" ? (
          <>No account yet? <Link to="/signup" state={location.state}>Sign up</Link></>
        ) : (
          <>Already have one? <Link to="/signin" state={location.state}>Sign in</Link></>
        )}
      </p>
    </section>
  );
}
