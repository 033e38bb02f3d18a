/**
 * The run on the canvas: its status and each node's state, from a fresh read or one event at a
 * time.
 */
import { NODE_STATUS_AFTER as EVENT_STATUS, RUN_STATUS_AFTER as RUN_EVENT_STATUS } from "../../api/events";
import type { NodeExecutionPublic } from "../../api/types";
import type { EditorState, NodeRunView } from "../store";
import type { SliceContext } from "./context";

function sameView(a: NodeRunView | undefined, b: NodeRunView): boolean {
  return (
    a !== undefined &&
    a.status === b.status &&
    a.attempt === b.attempt &&
    a.durationMs === b.durationMs &&
    JSON.stringify(a.inputs) === JSON.stringify(b.inputs) &&
    JSON.stringify(a.outputs) === JSON.stringify(b.outputs) &&
    JSON.stringify(a.error) === JSON.stringify(b.error) &&
    JSON.stringify(a.wait) === JSON.stringify(b.wait)
  );
}

function viewOf(execution: NodeExecutionPublic): NodeRunView {
  return {
    status: execution.status,
    attempt: execution.attempt,
    durationMs: execution.duration_ms ?? null,
    inputs: (execution.inputs as Record<string, unknown> | null) ?? null,
    outputs: (execution.outputs as Record<string, unknown> | null) ?? null,
    error: (execution.error as Record<string, unknown> | null) ?? null,
    wait: (execution.wait as Record<string, unknown> | null) ?? null,
  };
}

export type RunSlice = Pick<
  EditorState,
  "runStates" | "run" | "startRun" | "applyRunDetail" | "applyEvent" | "clearRun"
>;

export function runSlice({ set, get }: SliceContext): RunSlice {
  return {
    runStates: {},
    run: null,

    startRun(runId) {
      set({
        run: { id: runId, status: "PENDING", past: false, error: null },
        runStates: {},
        live: {},
        debugSessionId: null,
      });
    },

    applyRunDetail(detail, past = false) {
      const state = get();
      const fresh = state.run?.id !== detail.id;
      const before = fresh ? {} : state.runStates;
      const runStates: Record<string, NodeRunView> = fresh ? {} : { ...before };
      let changed = fresh;
      for (const execution of detail.nodes) {
        const view = viewOf(execution);
        if (!sameView(before[execution.node_id], view)) {
          runStates[execution.node_id] = view;
          changed = true;
        }
      }
      set({
        run: {
          id: detail.id,
          status: detail.status,
          past: fresh ? past : (state.run?.past ?? past),
          error: (detail.error as Record<string, unknown> | null) ?? null,
        },
        ...(changed ? { runStates } : {}),
        ...(fresh ? { live: {} } : {}),
      });
    },

    applyEvent(type, nodeId, data) {
      const state = get();
      if (!state.run) return;
      const runStatus = RUN_EVENT_STATUS[type];
      if (runStatus) {
        set({ run: { ...state.run, status: runStatus, error: (data.error as Record<string, unknown>) ?? state.run.error } });
        return;
      }
      const status = EVENT_STATUS[type];
      if (!status || !nodeId) return;
      const old = state.runStates[nodeId];
      const view: NodeRunView = {
        status,
        attempt: typeof data.attempt === "number" ? data.attempt : (old?.attempt ?? 1),
        durationMs: typeof data.duration_ms === "number" ? data.duration_ms : status === "RUNNING" ? null : (old?.durationMs ?? null),
        inputs: status === "RUNNING" ? null : (old?.inputs ?? null),
        outputs: status === "RUNNING" ? null : (old?.outputs ?? null),
        error: (data.error as Record<string, unknown> | undefined) ?? (status === "FAILED" ? old?.error ?? null : null),
        wait: status === "WAITING" ? { kind: data.kind, reason: data.reason, payload: data.payload } : null,
      };
      set({ runStates: { ...state.runStates, [nodeId]: view } });
    },

    clearRun() {
      set({ run: null, runStates: {}, live: {}, debugSessionId: null });
    },
  };
}
