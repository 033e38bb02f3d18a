/** Starting runs and following them live (Server-Sent Events) into the canvas store. */
import { api, errorMessage } from "../api/client";
import { FINISHED_RUN_STATUSES as FINISHED, NODE_PROGRESS_EVENTS as LIVE_EVENT_NAMES, STATE_EVENT_TYPES as EVENT_NAMES } from "../api/events";
import type { RunDetail, RunScope } from "../api/types";
import { editorStore, type LiveEvent } from "./store";

// Progress of a running node (LIVE_EVENT_NAMES), many a second: applied together once per frame.
// Events carry states, not outputs: after these, read the run again (at most every 250 ms).
const REREAD_AFTER = new Set(["node.succeeded", "node.failed", "node.cached", "node.waiting", "run.completed", "run.failed", "run.cancelled", "run.waiting"]);

let following: { runId: string; source: EventSource } | null = null;
const listeners = new Set<() => void>();

/** Called whenever a run starts or ends, so the history can refresh. */
export function onRunsChanged(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function announce() {
  for (const listener of listeners) listener();
}

export function stopFollowing(): void {
  following?.source.close();
  following = null;
}

async function reread(runId: string): Promise<RunDetail | null> {
  try {
    const detail = await api.get("/api/v1/runs/{run_id}", { path: { run_id: runId } });
    if (editorStore.getState().run?.id === runId) editorStore.getState().applyRunDetail(detail);
    return detail;
  } catch (error) {
    editorStore.getState().notify("error", errorMessage(error));
    return null;
  }
}

export function follow(runId: string): void {
  stopFollowing();
  const source = new EventSource(`/api/v1/runs/${encodeURIComponent(runId)}/events`);
  following = { runId, source };
  let timer: number | null = null;
  let pending: LiveEvent[] = [];
  let cancelFlush: (() => void) | null = null;
  const flushLive = () => {
    cancelFlush = null;
    const events = pending;
    pending = [];
    if (events.length > 0 && editorStore.getState().run?.id === runId) editorStore.getState().applyLive(events);
  };
  const scheduleReread = () => {
    if (timer !== null) return;
    timer = window.setTimeout(() => {
      timer = null;
      void reread(runId);
    }, 250);
  };
  const finish = () => {
    source.close();
    cancelFlush?.();
    flushLive();
    if (following?.source === source) following = null;
    void reread(runId).then(announce);
  };
  source.addEventListener("snapshot", (message) => {
    const detail = JSON.parse((message as MessageEvent<string>).data) as RunDetail;
    if (editorStore.getState().run?.id !== runId) return;
    editorStore.getState().applyRunDetail(detail);
    if (FINISHED.has(detail.status)) finish();
  });
  for (const name of EVENT_NAMES) {
    source.addEventListener(name, (message) => {
      if (editorStore.getState().run?.id !== runId) return;
      const event = JSON.parse((message as MessageEvent<string>).data) as {
        node_id: string | null;
        data: Record<string, unknown>;
      };
      editorStore.getState().applyEvent(name, event.node_id, event.data ?? {});
      if (name === "run.completed" || name === "run.failed" || name === "run.cancelled") finish();
      else if (REREAD_AFTER.has(name)) scheduleReread();
    });
  }
  for (const name of LIVE_EVENT_NAMES) {
    source.addEventListener(name, (message) => {
      const event = JSON.parse((message as MessageEvent<string>).data) as { node_id: string | null; data?: Record<string, unknown> };
      if (!event.node_id) return;
      pending.push({ type: name, nodeId: event.node_id, data: event.data ?? {} });
      // A hidden tab gets no frames: a timer stands in, so the text is there when it comes back.
      if (cancelFlush !== null) return;
      if (document.hidden) {
        const timer = window.setTimeout(flushLive, 100);
        cancelFlush = () => window.clearTimeout(timer);
      } else {
        const frame = window.requestAnimationFrame(flushLive);
        cancelFlush = () => window.cancelAnimationFrame(frame);
      }
    });
  }
  source.onerror = () => {
    // The browser reconnects by itself and the new stream starts with a snapshot; a run that
    // has ended closes its stream, and then there is nothing more to follow.
    if (source.readyState === EventSource.CLOSED && following?.source === source) finish();
  };
}

export async function startRun(
  workflowId: string,
  options: { scope: RunScope; targetNodeId?: string; inputs?: Record<string, unknown>; usePinned?: boolean },
): Promise<string | null> {
  const store = editorStore.getState();
  try {
    const run = await api.post("/api/v1/workflows/{workflow_id}/runs", {
      path: { workflow_id: workflowId },
      body: {
        scope: options.scope,
        target_node_id: options.targetNodeId ?? null,
        inputs: options.inputs ?? {},
        use_pinned: options.usePinned ?? false,
      },
    });
    store.startRun(run.id);
    store.resolve("run");
    editorStore.getState().applyRunDetail({ ...run, nodes: [] });
    follow(run.id);
    announce();
    return run.id;
  } catch (error) {
    store.notify("error", `Could not start the run: ${errorMessage(error)}`, "run");
    return null;
  }
}

/** Start a debug run that pauses before each breakpoint node. */
export async function startDebugRun(
  workflowId: string,
  options: { breakpoints: string[]; inputs?: Record<string, unknown> },
): Promise<string | null> {
  const store = editorStore.getState();
  try {
    const session = await api.post("/api/v1/workflows/{workflow_id}/debug-sessions", {
      path: { workflow_id: workflowId },
      query: { wait: false },
      body: { breakpoints: options.breakpoints, inputs: options.inputs ?? {}, scope: "FULL" },
    });
    store.startRun(session.run.id);
    store.resolve("run");
    editorStore.getState().setDebugSession(session.id);
    editorStore.getState().applyRunDetail(session.run);
    follow(session.run.id);
    announce();
    return session.run.id;
  } catch (error) {
    store.notify("error", `Could not start the debug run: ${errorMessage(error)}`, "run");
    return null;
  }
}

/** Release the node a debug run is paused before: one node (`step`) or on to the next breakpoint. */
export async function releaseDebug(action: "step" | "continue"): Promise<void> {
  const store = editorStore.getState();
  const sessionId = store.debugSessionId;
  if (!sessionId) return;
  try {
    const path = { debug_session_id: sessionId };
    const session =
      action === "step"
        ? await api.post("/api/v1/debug-sessions/{debug_session_id}/step", { path, query: { wait: false } })
        : await api.post("/api/v1/debug-sessions/{debug_session_id}/continue", { path, query: { wait: false } });
    editorStore.getState().applyRunDetail(session.run);
    if (!FINISHED.has(session.run.status) && following?.runId !== session.run.id) follow(session.run.id);
  } catch (error) {
    store.notify("error", `Could not ${action}: ${errorMessage(error)}`);
  }
}

export async function cancelRun(runId: string): Promise<void> {
  try {
    const detail = await api.post("/api/v1/runs/{run_id}/cancel", { path: { run_id: runId } });
    editorStore.getState().applyRunDetail(detail);
  } catch (error) {
    editorStore.getState().notify("error", `Could not cancel: ${errorMessage(error)}`);
  }
}

export async function answerApproval(runId: string, nodeId: string, approved: boolean): Promise<void> {
  try {
    const detail = await api.post("/api/v1/runs/{run_id}/nodes/{node_id}/answer", {
      path: { run_id: runId, node_id: nodeId },
      body: { approved },
    });
    editorStore.getState().applyRunDetail(detail);
    if (!FINISHED.has(detail.status) && following?.runId !== runId) follow(runId);
  } catch (error) {
    editorStore.getState().notify("error", `Could not answer: ${errorMessage(error)}`);
  }
}

/** Show a run of the history on the canvas (and follow it if it is still going). */
export async function openRun(runId: string): Promise<void> {
  try {
    const detail = await api.get("/api/v1/runs/{run_id}", { path: { run_id: runId } });
    stopFollowing();
    editorStore.getState().applyRunDetail(detail, true);
    if (!FINISHED.has(detail.status)) follow(runId);
  } catch (error) {
    editorStore.getState().notify("error", `Could not open the run: ${errorMessage(error)}`);
  }
}
