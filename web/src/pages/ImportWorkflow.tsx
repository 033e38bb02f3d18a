/** Import a workflow from a file or pasted JSON: checked as it is read, every problem listed,
 * saved only when there are none. */
import { useEffect, useState, type ChangeEvent } from "react";
import { useNavigate } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import "./ops.css";

type Preview = components["schemas"]["ImportPreview"];
type Problem = components["schemas"]["ProblemPublic"];

/** Where a problem is, in words: "node crop, port image", "format_version", ... */
function where(problem: Problem): string | null {
  if (problem.node_id) return `node ${problem.node_id}${problem.port ? `, port ${problem.port}` : ""}`;
  return problem.field ?? null;
}

/** The text as a JSON object, or the reason it is not one. */
function parse(text: string): { value: Record<string, unknown> } | { error: string } {
  try {
    const value: unknown = JSON.parse(text);
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      return { error: "The file holds JSON, but not a workflow: it should be one object ({ ... })." };
    }
    return { value: value as Record<string, unknown> };
  } catch (caught) {
    return { error: `The JSON does not parse: ${caught instanceof Error ? caught.message : String(caught)}` };
  }
}

export function ImportWorkflow({ onClose }: { onClose: () => void }) {
  const navigate = useNavigate();
  const [text, setText] = useState("");
  const [fileName, setFileName] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [preview, setPreview] = useState<Preview | null>(null);
  const [syntax, setSyntax] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [checking, setChecking] = useState(false);
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    setPreview(null);
    if (!text.trim()) {
      setSyntax(null);
      return;
    }
    const parsed = parse(text);
    if ("error" in parsed) {
      setSyntax(parsed.error);
      return;
    }
    setSyntax(null);
    let live = true;
    setChecking(true);
    const timer = window.setTimeout(() => {
      api
        .post("/api/v1/workflows/import/check", { body: { document: parsed.value, name: name.trim() || null } })
        .then((answer) => {
          if (!live) return;
          setPreview(answer);
          setError(null);
        })
        .catch((caught) => live && setError(errorMessage(caught)))
        .finally(() => live && setChecking(false));
    }, 300);
    return () => {
      live = false;
      window.clearTimeout(timer);
    };
  }, [text, name]);

  async function readFile(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    if (!file) return;
    setFileName(file.name);
    setText(await file.text());
  }

  async function save() {
    if (!preview?.export) return;
    setSaving(true);
    try {
      const made = await api.post("/api/v1/workflows/import", { body: preview.export, query: { strict: true } });
      navigate(`/workflows/${made.id}`);
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setSaving(false);
    }
  }

  const problems = preview?.problems ?? [];
  return (
    <section className="card import-box" aria-label="Import a workflow">
      <div className="page-head">
        <h2>Import a workflow</h2>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      <label>
        From a file
        <input type="file" accept=".json,application/json" onChange={(e) => void readFile(e)} />
      </label>
      {fileName && <p className="hint">Read {fileName}.</p>}
      <label>
        Or paste its JSON
        <textarea
          value={text}
          onChange={(e) => {
            setFileName(null);
            setText(e.target.value);
          }}
          placeholder='{"format": "flowloom.workflow", "name": "...", "definition": {...}}'
          spellCheck={false}
        />
      </label>
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} placeholder={preview?.export?.name ?? "The file's name"} />
      </label>
      {syntax && <p className="error" role="alert">{syntax}</p>}
      {error && <p className="error" role="alert">{error}</p>}
      {checking && !preview && !syntax && <p role="status">Checking…</p>}
      {preview && !preview.valid && (
        <div role="alert" aria-label="Problems of the file">
          <strong>{problems.length === 1 ? "1 problem" : `${problems.length} problems`} to fix before it can be saved:</strong>
          <ul className="problem-list">
            {problems.map((problem, i) => {
              const at = where(problem);
              return <li key={i}>{at ? <><strong>{at}</strong>: </> : null}{problem.message}</li>;
            })}
          </ul>
        </div>
      )}
      {preview?.valid && (
        <p className="ok-text" role="status">
          Ready: “{preview.export?.name}”, {preview.nodes} node{preview.nodes === 1 ? "" : "s"}, {preview.edges} connection{preview.edges === 1 ? "" : "s"}.
        </p>
      )}
      <div>
        <button type="button" className="primary" disabled={!preview?.valid || saving} onClick={() => void save()}>
          Save as a new workflow
        </button>
      </div>
    </section>
  );
}
