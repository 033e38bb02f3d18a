/**
 * The side viewer: one node's output at full length, beside the canvas. Text as text (growing
 * while the node streams), structured values as a tree that folds, images at full size.
 */
import { useReactFlow } from "@xyflow/react";
import { useEffect, useRef, useState } from "react";

import { blobUrl } from "../api/client";
import { describeImage, imagesIn } from "../api/images";
import { formatCost } from "../components/format";
import { editorStore, useEditor } from "./store";

/** Items of a list or keys of an object shown before "N more". */
const TREE_ITEMS = 200;

function JsonValue({ value, depth }: { value: unknown; depth: number }) {
  if (value === null) return <span className="json-null">null</span>;
  if (typeof value === "string") return <span className="json-string">"{value}"</span>;
  if (typeof value === "number") return <span className="json-number">{value}</span>;
  if (typeof value === "boolean") return <span className="json-boolean">{String(value)}</span>;
  if (typeof value !== "object") return <span>{String(value)}</span>;
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const summary = Array.isArray(value) ? `[${entries.length} item${entries.length === 1 ? "" : "s"}]` : `{${entries.length} key${entries.length === 1 ? "" : "s"}}`;
  if (entries.length === 0) return <span className="json-empty">{Array.isArray(value) ? "[]" : "{}"}</span>;
  return (
    <details className="json-node" open={depth < 2}>
      <summary>{summary}</summary>
      <ul>
        {entries.slice(0, TREE_ITEMS).map(([key, item]) => (
          <li key={key}>
            <span className="json-key">{key}</span>: <JsonValue value={item} depth={depth + 1} />
          </li>
        ))}
        {entries.length > TREE_ITEMS && <li className="muted">… {entries.length - TREE_ITEMS} more</li>}
      </ul>
    </details>
  );
}

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="small-button"
      onClick={() =>
        void navigator.clipboard?.writeText(text).then(
          () => setCopied(true),
          () => setCopied(false),
        )
      }
    >
      {copied ? "Copied" : "Copy"}
    </button>
  );
}

function OutputValue({ name, value }: { name: string; value: unknown }) {
  const images = imagesIn(value, 50);
  if (images.length > 0) {
    return (
      <div className="viewer-images">
        {images.map((image, i) => {
          const label = images.length > 1 ? `${name}[${i}]` : name;
          return (
            <figure key={`${image.sha256}-${i}`}>
              <img src={blobUrl(image.sha256)} alt={`${label}: ${describeImage(image)}`} data-testid="viewer-image" />
              <figcaption className="muted">
                {label}: {describeImage(image)} · <a href={blobUrl(image.sha256)} target="_blank" rel="noreferrer">open in a new tab</a>
              </figcaption>
            </figure>
          );
        })}
      </div>
    );
  }
  if (name === "usage" && typeof value === "object" && value !== null) {
    const usage = value as { tokens_in?: number; tokens_out?: number; cost?: string | null };
    return (
      <p className="viewer-usage">
        {usage.tokens_in ?? 0} tokens in, {usage.tokens_out ?? 0} out{usage.cost != null ? ` · ${formatCost(usage.cost)}` : ""}
      </p>
    );
  }
  if (typeof value === "string") {
    return (
      <>
        <div className="viewer-meta muted">
          {value.length.toLocaleString()} characters <CopyButton text={value} />
        </div>
        <pre className="viewer-text" data-testid="viewer-text">{value}</pre>
      </>
    );
  }
  return (
    <>
      <div className="viewer-meta muted">
        <CopyButton text={JSON.stringify(value, null, 2)} />
      </div>
      <div className="json-tree" data-testid="viewer-json">
        <JsonValue value={value} depth={0} />
      </div>
    </>
  );
}

export function OutputViewer() {
  const target = useEditor((s) => s.viewer);
  const node = useEditor((s) => (s.viewer ? s.nodes.find((n) => n.id === s.viewer!.nodeId) : undefined));
  const view = useEditor((s) => (s.viewer ? s.runStates[s.viewer.nodeId] : undefined));
  const live = useEditor((s) => (s.viewer ? s.live[s.viewer.nodeId] : undefined));
  const closeRef = useRef<HTMLButtonElement>(null);
  const textRef = useRef<HTMLPreElement>(null);
  const following = useRef(true);
  const flow = useReactFlow();

  // The viewer takes room from the canvas: bring the node it shows back into sight.
  useEffect(() => {
    if (!target) return;
    // After React Flow has measured the narrower canvas (a resize observer), not before.
    const timer = window.setTimeout(() => {
      const canvas = document.querySelector(".canvas")?.getBoundingClientRect();
      const box = document.querySelector(`[data-testid="node-${CSS.escape(target.nodeId)}"]`)?.getBoundingClientRect();
      const inSight = canvas && box && box.left >= canvas.left && box.right <= canvas.right && box.top >= canvas.top && box.bottom <= canvas.bottom;
      const shown = flow.getNode(target.nodeId);
      if (inSight || !shown) return;
      const width = shown.measured?.width ?? 240;
      const height = shown.measured?.height ?? 120;
      void flow.setCenter(shown.position.x + width / 2, shown.position.y + height / 2, { zoom: flow.getZoom(), duration: 200 });
    }, 80);
    return () => window.clearTimeout(timer);
  }, [target?.nodeId, flow]);

  useEffect(() => {
    if (!target) return;
    const opener = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    return () => opener?.focus?.();
  }, [target?.nodeId, target?.output]);

  useEffect(() => {
    if (!target) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape" && !event.defaultPrevented) editorStore.getState().closeViewer();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [target]);

  // While the answer grows, stay at its end unless the reader scrolled up to read.
  useEffect(() => {
    const box = textRef.current;
    if (box && following.current) box.scrollTop = box.scrollHeight;
  }, [live?.text]);

  if (!target) return null;
  const title = node ? node.data.label || node.id : target.nodeId;
  const streaming = live && !view?.outputs;
  const outputs = view?.outputs ?? null;
  const shown = outputs && target.output && target.output in outputs ? [[target.output, outputs[target.output]] as const] : outputs ? Object.entries(outputs) : [];
  return (
    <aside className="output-viewer" aria-label={`Output of ${target.nodeId}`} data-testid="output-viewer">
      <div className="viewer-head">
        <div>
          <h2>{title}</h2>
          <div className="muted small">
            {target.output ? <>output <code>{target.output}</code> · </> : null}
            {view ? view.status.toLowerCase() : "not run"}
            {live && live.attempt > 1 ? ` · attempt ${live.attempt}` : ""}
          </div>
        </div>
        {target.output && outputs && Object.keys(outputs).length > 1 && (
          <button type="button" className="small-button" onClick={() => editorStore.getState().openViewer(target.nodeId)}>All outputs</button>
        )}
        <button type="button" ref={closeRef} onClick={() => editorStore.getState().closeViewer()} aria-label="Close the viewer">×</button>
      </div>
      <div className="viewer-body">
        {streaming && (
          <>
            {live.steps.length > 0 && (
              <ol className="viewer-steps" aria-label="Tool steps">
                {live.steps.map((s) => (
                  <li key={`${s.step}-${s.tool}`} className={s.isError ? "step-error" : undefined}>
                    step {s.step}: {s.tool} {s.isError ? "failed" : "done"}
                  </li>
                ))}
              </ol>
            )}
            <div className="viewer-meta muted" role="status">
              {view?.status === "RUNNING" ? "Streaming…" : "Stopped"} {live.text.length.toLocaleString()} characters
              {live.gap ? " (some of the beginning was missed)" : ""}
              {live.cut ? " (cut here: the output has the whole)" : ""}
            </div>
            <pre
              className="viewer-text"
              data-testid="viewer-text"
              ref={textRef}
              onScroll={(event) => {
                const box = event.currentTarget;
                following.current = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
              }}
            >
              {live.text}
            </pre>
          </>
        )}
        {!streaming && shown.length === 0 && (
          <p className="muted">{view?.error ? `Failed: ${String(view.error.message ?? "")}` : "No output in the shown run."}</p>
        )}
        {!streaming && !target.output && view?.inputs && Object.keys(view.inputs).length > 0 && (
          <details className="viewer-inputs">
            <summary>Inputs it received</summary>
            <div className="json-tree">
              <JsonValue value={view.inputs} depth={1} />
            </div>
          </details>
        )}
        {!streaming &&
          shown.map(([name, value]) => (
            <section key={name} className="viewer-output" aria-label={name}>
              {shown.length > 1 && <h3>{name}</h3>}
              <OutputValue name={name} value={value} />
            </section>
          ))}
      </div>
    </aside>
  );
}
