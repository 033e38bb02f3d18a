import { useCallback, useEffect, useState } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { formatCost } from "../components/format";
import "./account.css";
import "./admin.css";

type PlanView = components["schemas"]["PlanView"];
type Offer = components["schemas"]["PackageOffer"];

function Meter({ label, used, limit, unit }: { label: string; used: number; limit: number | null | undefined; unit: string }) {
  const unlimited = limit === null || limit === undefined;
  const share = unlimited ? 0 : limit === 0 ? 1 : Math.min(1, used / limit);
  const level = share >= 1 ? "full" : share >= 0.8 ? "high" : "";
  return (
    <div className="meter" aria-label={label}>
      <div className="caption">
        <strong>{label}</strong>
        <span>{used.toLocaleString()} {unit}{unlimited ? " · unlimited" : ` of ${limit.toLocaleString()}`}</span>
      </div>
      {!unlimited && (
        <div className="track" role="progressbar" aria-valuemin={0} aria-valuemax={limit} aria-valuenow={used} aria-label={`${label} used`}>
          <div className={`fill ${level}`} style={{ width: `${Math.round(share * 100)}%` }} />
        </div>
      )}
    </div>
  );
}

function limits(offer: Offer): string[] {
  const lines = [
    offer.max_runs_per_month === null || offer.max_runs_per_month === undefined ? "Unlimited runs" : `${offer.max_runs_per_month.toLocaleString()} runs a month`,
    offer.max_tokens_per_month === null || offer.max_tokens_per_month === undefined ? "Unlimited tokens" : `${offer.max_tokens_per_month.toLocaleString()} tokens a month`,
  ];
  return [...lines, ...offer.features.filter((f): f is string => typeof f === "string")];
}

export function PlanPage() {
  const [plan, setPlan] = useState<PlanView | null>(null);
  const [offers, setOffers] = useState<Offer[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const [current, offered] = await Promise.all([api.get("/api/v1/billing/plan"), api.get("/api/v1/billing/packages")]);
      setPlan(current);
      setOffers(offered.items);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function subscribe(offer: Offer) {
    setError(null);
    setNotice(null);
    if (plan?.subscription && !window.confirm(`Switch to ${offer.name}? Your current subscription ends now.`)) return;
    try {
      setPlan(await api.put("/api/v1/billing/subscription", { body: { package_id: offer.id } }));
      setNotice(`You are on ${offer.name} from now on.`);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function cancel() {
    if (!plan?.package || !window.confirm(`Cancel ${plan.package.name}? It ends now; the instance's default plan applies.`)) return;
    setError(null);
    setNotice(null);
    try {
      await api.delete("/api/v1/billing/subscription");
      setNotice(`${plan.package.name} is cancelled.`);
      await load();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  const current = plan?.source === "subscription" ? plan.package?.id : null;
  return (
    <section className="page" aria-labelledby="plan-title">
      <h1 id="plan-title">Your plan</h1>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      {plan && (
        <div className="account-grid">
          <section className="account-section" aria-labelledby="plan-now-title">
            <h2 id="plan-now-title">{plan.package ? plan.package.name : "No plan"}</h2>
            <p className="muted">
              {plan.source === "subscription"
                ? plan.subscription?.end_date
                  ? `Your subscription, until ${new Date(plan.subscription.end_date).toLocaleDateString()}.`
                  : "Your subscription, until you cancel it."
                : plan.source === "default"
                  ? "The plan of every account without a subscription."
                  : "This instance sets you no limits."}
            </p>
            {plan.source === "subscription" && (
              <button type="button" className="danger" onClick={() => void cancel()}>Cancel subscription</button>
            )}
            <p className="muted" style={{ marginTop: 12 }}>Credits: <strong>{plan.credits}</strong> — {plan.credit_rule}</p>
          </section>
          <section className="account-section" aria-labelledby="month-title">
            <h2 id="month-title">This month</h2>
            <p className="muted">Counts start again on {new Date(plan.usage.resets_at).toLocaleDateString()}.</p>
            <Meter label="Runs" used={plan.usage.runs_used} limit={plan.usage.max_runs} unit="runs" />
            <Meter label="Tokens" used={plan.usage.tokens_used} limit={plan.usage.max_tokens} unit="tokens" />
          </section>
        </div>
      )}
      <h2>Plans you can choose</h2>
      {offers.length === 0 ? (
        <p className="muted">This instance offers no plans to choose; an administrator assigns them.</p>
      ) : (
        <div className="plan-cards">
          {offers.map((offer) => (
            <article key={offer.id} className={`plan-card ${offer.id === current ? "current" : ""}`} aria-label={offer.name}>
              <h3>{offer.name}</h3>
              <div className="price">{Number(offer.price) === 0 ? "Free" : `${formatCost(offer.price)} / ${offer.interval}`}</div>
              {offer.description && <p className="muted">{offer.description}</p>}
              <ul>{limits(offer).map((line) => <li key={line}>{line}</li>)}</ul>
              {offer.id === current ? (
                <span className="state-pill current">your plan</span>
              ) : (
                <button type="button" className="primary" onClick={() => void subscribe(offer)}>Choose {offer.name}</button>
              )}
            </article>
          ))}
        </div>
      )}
    </section>
  );
}
