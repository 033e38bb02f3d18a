import { useCallback, useEffect, useState, type FormEvent } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import { useAuth } from "../auth";
import { AdminOnly, AdminTabs } from "./AdminTabs";
import "./account.css";
import "./ops.css";

type AiModel = components["schemas"]["AiModelPublic"];
type AiModelUpdate = components["schemas"]["AiModelUpdate"];
type Provider = components["schemas"]["AiModelCreate"]["provider"];

/** Prices come as decimal text ("0.150000000"): shown without the trailing zeros. */
function plainPrice(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

function isPrice(text: string): boolean {
  return /^\d+(\.\d{1,9})?$/.test(text.trim());
}

function NewModelForm({ onCreated }: { onCreated: (model: AiModel) => void }) {
  const [provider, setProvider] = useState<Provider>("openai");
  const [model, setModel] = useState("");
  const [input, setInput] = useState("0");
  const [output, setOutput] = useState("0");
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    if (!isPrice(input) || !isPrice(output)) {
      setError("prices are dollars per million tokens, such as 0.15 (at most 9 decimals)");
      return;
    }
    try {
      const created = await api.post("/api/v1/admin/ai-models", {
        body: {
          provider,
          model: model.trim(),
          input_price_per_mtok: input.trim(),
          output_price_per_mtok: output.trim(),
          currency: "usd",
          enabled: true,
          supports_images: false,
          supports_json: true,
        },
      });
      onCreated(created);
      setModel("");
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  return (
    <form className="account-section" onSubmit={submit} aria-labelledby="new-model-title">
      <h2 id="new-model-title">Add a model</h2>
      <div className="inline-form">
        <label>
          Provider
          <select value={provider} onChange={(e) => setProvider(e.target.value as Provider)}>
            <option value="openai">OpenAI</option>
            <option value="anthropic">Anthropic</option>
            <option value="gemini">Gemini</option>
          </select>
        </label>
        <label>
          Model name
          <input required maxLength={200} placeholder="gpt-4.1-mini" value={model} onChange={(e) => setModel(e.target.value)} />
        </label>
        <label>
          $ per million input tokens
          <input inputMode="decimal" required value={input} onChange={(e) => setInput(e.target.value)} />
        </label>
        <label>
          $ per million output tokens
          <input inputMode="decimal" required value={output} onChange={(e) => setOutput(e.target.value)} />
        </label>
        <button type="submit" className="primary">Add model</button>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
    </form>
  );
}

export function AdminModelsPage() {
  const me = useAuth((s) => s.user);
  const [models, setModels] = useState<AiModel[]>([]);
  const [filter, setFilter] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setModels((await api.get("/api/v1/admin/ai-models")).items);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    if (me?.role === "admin") void load();
  }, [load, me?.role]);

  async function change(model: AiModel, body: AiModelUpdate, said: string) {
    setError(null);
    setNotice(null);
    try {
      const updated = await api.patch("/api/v1/admin/ai-models/{model_id}", { path: { model_id: model.id }, body });
      setModels((old) => old.map((m) => (m.id === updated.id ? updated : m)));
      setNotice(said);
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  async function editPrice(model: AiModel, field: "input_price_per_mtok" | "output_price_per_mtok" | "price_per_image", text: string) {
    const value = text.trim();
    if (value === plainPrice(model[field])) return;
    if (value === "" && field === "price_per_image") {
      await change(model, { price_per_image: null }, `${model.model}: no price per image.`);
      return;
    }
    if (!isPrice(value)) {
      setError(`${model.model}: a price is a dollar amount such as 0.15 (at most 9 decimals)`);
      return;
    }
    await change(model, { [field]: value }, `${model.model}: price saved; it costs calls from now on.`);
  }

  if (me && me.role !== "admin") return <AdminOnly title="Models" />;

  const needle = filter.trim().toLowerCase();
  const shown = models.filter((m) => !needle || `${m.provider} ${m.model} ${m.display_name ?? ""}`.toLowerCase().includes(needle));

  return (
    <section className="page" aria-labelledby="models-title">
      <AdminTabs />
      <h1 id="models-title">Models and prices</h1>
      <p className="muted">Usage is costed with these prices (US dollars per million tokens, or per image). A disabled model is refused before any call is sent.</p>
      <div className="search-row">
        <input type="search" aria-label="Filter models" placeholder="Filter by provider or model" value={filter} onChange={(e) => setFilter(e.target.value)} />
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {notice && <p className="notice-ok" role="status">{notice}</p>}
      <table className="list" aria-label="Models">
        <thead>
          <tr><th>Provider</th><th>Model</th><th>Input $/M</th><th>Output $/M</th><th>$ per image</th><th>Context</th><th>Enabled</th></tr>
        </thead>
        <tbody>
          {shown.map((model) => (
            <tr key={model.id} data-testid={`model-${model.provider}-${model.model}`}>
              <td>{model.provider}</td>
              <td>
                {model.model}
                {model.display_name && <div className="muted">{model.display_name}</div>}
              </td>
              {(["input_price_per_mtok", "output_price_per_mtok", "price_per_image"] as const).map((field) => (
                <td key={field}>
                  <input
                    className="cell-number"
                    inputMode="decimal"
                    aria-label={`${field === "input_price_per_mtok" ? "Input price" : field === "output_price_per_mtok" ? "Output price" : "Price per image"} of ${model.model}`}
                    defaultValue={plainPrice(model[field])}
                    placeholder={field === "price_per_image" ? "—" : "0"}
                    onBlur={(e) => void editPrice(model, field, e.target.value)}
                  />
                </td>
              ))}
              <td>{model.context_window ? model.context_window.toLocaleString() : "—"}</td>
              <td>
                <input
                  type="checkbox"
                  aria-label={`${model.model} is enabled`}
                  checked={model.enabled}
                  onChange={(e) => void change(model, { enabled: e.target.checked }, e.target.checked ? `${model.model} is enabled.` : `${model.model} is disabled: calls to it are refused.`)}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <NewModelForm
        onCreated={(created) => {
          setModels((old) => [...old, created]);
          setNotice(`${created.model} was added.`);
        }}
      />
    </section>
  );
}
