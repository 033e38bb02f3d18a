/**
 * One node on the canvas. Memoized, and subscribed only to its own slice of the store (its
 * type, its problems, its run state), so a change elsewhere in a 500-node graph does not
 * re-render it.
 */
import { Handle, Position, useStore as useFlowStore, useUpdateNodeInternals, type NodeProps } from "@xyflow/react";
import { memo, useEffect, useMemo, useRef } from "react";

import { imagesIn } from "../api/images";
import type { PortPublic } from "../api/types";
import { formatCost } from "../components/format";
import { ImageThumb } from "../components/ImageThumb";
import NodeIcon from "../components/NodeIcon";
import { answerApproval } from "./runs";
import { portsFor } from "./ports";
import { editorStore, useEditor, type FlowNode, type NodeLive, type NodeRunView } from "./store";

const STATUS_LABEL: Record<string, string> = {
  PENDING: "pending",
  READY: "ready",
  RUNNING: "running",
  SUCCEEDED: "done",
  CACHED: "cached",
  FAILED: "failed",
  SKIPPED: "skipped",
  CANCELLED: "cancelled",
  WAITING: "waiting",
};

function PortRow({ port, side }: { port: PortPublic; side: "in" | "out" }) {
  return (
    <div className={`port port-${side}`} title={port.description || undefined}>
      <Handle
        type={side === "in" ? "target" : "source"}
        position={side === "in" ? Position.Left : Position.Right}
        id={port.name}
        className={`handle-${port.type}`}
        data-port={port.name}
        data-port-type={port.type}
      />
      <span className="port-name">{port.name}</span>
      <span className="port-type">{port.is_list ? `${port.type}[]` : port.type}</span>
    </div>
  );
}

// A preview is a glance: the whole value is in the settings panel.
const PREVIEW_CHARS = 120;

function preview(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}…` : text;
}

// The streamed answer shows its end, the part that is growing; the viewer has the whole.
const LIVE_TAIL_CHARS = 280;
const SHOWN_STEPS = 4;

function OpenButton({ nodeId, output, label }: { nodeId: string; output?: string; label: string }) {
  return (
    <button
      type="button"
      className="open-output nodrag"
      aria-label={label}
      title={label}
      onClick={(event) => {
        event.stopPropagation();
        editorStore.getState().openViewer(nodeId, output);
      }}
    >
      ⤢
    </button>
  );
}

/** A running node's answer as it streams, and an agent's tool steps. */
function LiveOutput({ nodeId, live, running }: { nodeId: string; live: NodeLive; running: boolean }) {
  const tail = live.text.length > LIVE_TAIL_CHARS ? `…${live.text.slice(-LIVE_TAIL_CHARS)}` : live.text;
  const hidden = live.steps.length - SHOWN_STEPS;
  return (
    <div className="live-output" data-testid="live-output">
      {live.steps.length > 0 && (
        <ol className="live-steps" aria-label="Tool steps" data-testid="live-steps">
          {hidden > 0 && <li className="muted">{hidden} earlier step{hidden > 1 ? "s" : ""}</li>}
          {live.steps.slice(-SHOWN_STEPS).map((s) => (
            <li key={`${s.step}-${s.tool}`} className={s.isError ? "step-error" : undefined}>
              <span className="step-number">{s.step}</span> {s.tool}
              <span className="step-result">{s.isError ? " failed" : " ✓"}</span>
            </li>
          ))}
        </ol>
      )}
      {live.text && (
        <div className="live-text-row">
          <div className="live-text" data-testid="live-text" aria-live="off" data-chars={live.text.length}>
            <div>
              {tail}
              {running && <span className="caret" aria-hidden="true" />}
            </div>
          </div>
          <OpenButton nodeId={nodeId} label={`Open the whole answer of ${nodeId}`} />
        </div>
      )}
    </div>
  );
}

function Outputs({ nodeId, outputs }: { nodeId: string; outputs: Record<string, unknown> }) {
  const usage = outputs.usage as { tokens_total?: number; tokens_in?: number; tokens_out?: number; cost?: string } | undefined;
  return (
    <div className="outputs" data-testid="node-outputs">
      {Object.entries(outputs).map(([name, value]) => {
        if (name === "usage" && usage && typeof usage === "object") {
          return (
            <div key={name} className="usage">
              {usage.tokens_total ?? (usage.tokens_in ?? 0) + (usage.tokens_out ?? 0)} tokens
              {usage.cost != null && <> · {formatCost(usage.cost)}</>}
            </div>
          );
        }
        const images = imagesIn(value);
        if (images.length > 0) {
          return (
            <div key={name} className="image-output">
              <span className="output-name">{name}</span>
              <span className="thumbs">
                {images.map((image, i) => (
                  <ImageThumb key={`${image.sha256}-${i}`} image={image} name={images.length > 1 ? `${name}[${i}]` : name} size={72} />
                ))}
              </span>
            </div>
          );
        }
        const long = preview(value).endsWith("…") || (typeof value === "object" && value !== null);
        return (
          <div key={name} className="output">
            <span className="output-name">{name}</span>
            <span className="output-value">{preview(value)}</span>
            {long && <OpenButton nodeId={nodeId} output={name} label={`Open ${name} of ${nodeId}`} />}
          </div>
        );
      })}
    </div>
  );
}

function RunState({ nodeId, view, live }: { nodeId: string; view: NodeRunView; live: NodeLive | undefined }) {
  const runId = useEditor((s) => s.run?.id);
  return (
    <div className="run-state">
      <div className={`status status-${view.status.toLowerCase()}`} data-testid="node-status" data-status={view.status}>
        {view.status === "RUNNING" && <span className="spinner" aria-hidden="true" />}
        {STATUS_LABEL[view.status] ?? view.status.toLowerCase()}
        {view.durationMs != null && <span className="duration"> · {view.durationMs} ms</span>}
        {view.attempt > 1 && <span> · attempt {view.attempt}</span>}
      </div>
      {view.error && <div className="node-error">{String(view.error.message ?? JSON.stringify(view.error))}</div>}
      {view.status === "WAITING" && view.wait?.kind === "breakpoint" && (
        <div className="paused">paused before this node: step or continue</div>
      )}
      {view.status === "WAITING" && view.wait?.kind === "approval" && runId && (
        <div className="approval nodrag">
          <div>{String(view.wait.reason ?? "Approve?")}</div>
          <button type="button" className="primary" onClick={() => void answerApproval(runId, nodeId, true)}>Approve</button>
          <button type="button" onClick={() => void answerApproval(runId, nodeId, false)}>Reject</button>
        </div>
      )}
      {live && !view.outputs && <LiveOutput nodeId={nodeId} live={live} running={view.status === "RUNNING"} />}
      {view.outputs && <Outputs nodeId={nodeId} outputs={view.outputs} />}
    </div>
  );
}

// Below this zoom a node's text is a few pixels high: draw it as a box (one boolean per node,
// so zooming re-renders nodes only when it crosses the line).
export const FAR_ZOOM = 0.35;
export const zoomedFar = (s: { transform: [number, number, number] }) => s.transform[2] < FAR_ZOOM;

function FlowNodeView({ id, type, data, selected }: NodeProps<FlowNode>) {
  const spec = useEditor((s) => s.nodeTypes[type]);
  const problems = useEditor((s) => s.problems[id]);
  const view = useEditor((s) => s.runStates[id]);
  const live = useEditor((s) => s.live[id]);
  const breakpoint = useEditor((s) => s.breakpoints[id] === true);
  const ports = useMemo(() => portsFor(spec, data.config), [spec, data.config]);
  const updateNodeInternals = useUpdateNodeInternals();
  const signature = ports.inputs.map((p) => p.name).join() + "|" + ports.outputs.map((p) => p.name).join();
  // React Flow measures handles when a node mounts; only a change of ports later needs telling.
  const mountedSignature = useRef(signature);
  useEffect(() => {
    if (mountedSignature.current === signature) return;
    mountedSignature.current = signature;
    updateNodeInternals(id);
  }, [id, signature, updateNodeInternals]);

  const far = useFlowStore(zoomedFar);
  const classes = ["flow-node"];
  if (far) classes.push("far");
  if (selected) classes.push("selected");
  if (problems?.length) classes.push("has-problems");
  if (view) classes.push(`run-${view.status.toLowerCase()}`);
  return (
    <div className={classes.join(" ")} data-testid={`node-${id}`} data-node-type={type}>
      <div className={`node-head category-${(spec?.category ?? "unknown").toLowerCase()}`} style={spec ? { borderTopColor: spec.color } : undefined}>
        <NodeIcon icon={spec?.icon} category={spec?.category} color={spec?.color ?? "#64748b"} size={14} />
        <span className="node-titles">
          <span className="node-label">
            {breakpoint && <span className="breakpoint" role="img" aria-label="breakpoint" title="A debug run pauses before this node" />}
            {data.label || id}
            {data.pinned && (
              <span className="pin-badge" data-testid="pinned-badge" title="Its outputs are pinned as test data">
                pinned
              </span>
            )}
          </span>
          <span className="node-type" title={type}>
            {spec && spec.display_name !== data.label ? `${spec.display_name} · ` : ""}
            <code>{type}</code>
          </span>
        </span>
      </div>
      {!spec && <div className="node-problem">unknown node type</div>}
      <div className="ports">
        <div className="inputs">{ports.inputs.map((p) => <PortRow key={p.name} port={p} side="in" />)}</div>
        <div className="outputs-ports">{ports.outputs.map((p) => <PortRow key={p.name} port={p} side="out" />)}</div>
      </div>
      {problems?.length ? (
        <ul className="node-problems" data-testid="node-problems" aria-label={`Problems of ${id}`}>
          {problems.map((text) => <li key={text}>{text}</li>)}
        </ul>
      ) : null}
      {view && <RunState nodeId={id} view={view} live={live} />}
    </div>
  );
}

export default memo(FlowNodeView);
