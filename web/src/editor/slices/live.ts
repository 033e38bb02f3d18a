/**
 * What a running node shows before it ends: its answer as it streams (`node.delta`) and an
 * agent's tool steps (`node.step`), and which node's output the side viewer shows.
 *
 * Live text is never stored by the server: it is a view of an answer on its way. A piece says
 * where it goes (`offset` in the whole text of its `attempt`), so pieces merged by a slow
 * reader, repeated after a reconnect, or of a newer attempt all land in the right place.
 */
import type { EditorState } from "../store";
import type { SliceContext } from "./context";

/** Beyond this many characters a node's live text stops growing (the output has it all). */
export const LIVE_TEXT_LIMIT = 200_000;
/** An agent's last steps kept for the canvas. */
export const LIVE_STEP_LIMIT = 50;

export interface LiveStep {
  step: number;
  tool: string;
  isError: boolean;
}

export interface NodeLive {
  attempt: number;
  text: string;
  /** Some text before the end of `text` was never received (the stream was joined late). */
  gap: boolean;
  /** The text went past LIVE_TEXT_LIMIT and is cut there. */
  cut: boolean;
  steps: LiveStep[];
}

export interface DeltaData {
  text: string;
  offset: number;
  attempt: number;
}

export interface StepData {
  step: number;
  tool: string;
  is_error: boolean;
  attempt: number;
}

const EMPTY = (attempt: number): NodeLive => ({ attempt, text: "", gap: false, cut: false, steps: [] });

/** `live` (the node's view so far, if any) once `delta` has landed; `live` itself when nothing changes. */
export function withDelta(live: NodeLive | undefined, delta: DeltaData): NodeLive | undefined {
  if (live && delta.attempt < live.attempt) return live;
  const base = !live || delta.attempt > live.attempt ? EMPTY(delta.attempt) : live;
  const have = base.text.length;
  const end = delta.offset + delta.text.length;
  if (end <= have || base.cut) return base === live ? live : base;
  let text: string;
  let gap = base.gap;
  if (delta.offset <= have) {
    text = base.text + delta.text.slice(have - delta.offset);
  } else {
    // The pieces in between were lost: keep what came, and say that some is missing.
    text = base.text + delta.text;
    gap = true;
  }
  const cut = text.length > LIVE_TEXT_LIMIT;
  return { ...base, text: cut ? text.slice(0, LIVE_TEXT_LIMIT) : text, gap, cut };
}

/** `live` with one more tool step of the agent. */
export function withStep(live: NodeLive | undefined, step: StepData): NodeLive | undefined {
  if (live && step.attempt < live.attempt) return live;
  const base = !live || step.attempt > live.attempt ? EMPTY(step.attempt) : live;
  if (base.steps.some((s) => s.step === step.step && s.tool === step.tool)) return base === live ? live : base;
  const steps = [...base.steps, { step: step.step, tool: step.tool, isError: step.is_error }].slice(-LIVE_STEP_LIMIT);
  return { ...base, steps };
}

export function asDelta(data: Record<string, unknown>): DeltaData | null {
  const { text, offset, attempt } = data;
  if (typeof text !== "string" || typeof offset !== "number") return null;
  return { text, offset, attempt: typeof attempt === "number" ? attempt : 1 };
}

export function asStep(data: Record<string, unknown>): StepData | null {
  const { step, tool, is_error, attempt } = data;
  if (typeof step !== "number" || typeof tool !== "string") return null;
  return { step, tool, is_error: is_error === true, attempt: typeof attempt === "number" ? attempt : 1 };
}

export type LiveSlice = Pick<EditorState, "live" | "viewer" | "applyLive" | "openViewer" | "closeViewer">;

export function liveSlice({ set, get }: SliceContext): LiveSlice {
  return {
    live: {},
    viewer: null,

    applyLive(events) {
      const state = get();
      if (!state.run) return;
      let live = state.live;
      for (const { type, nodeId, data } of events) {
        const before = live[nodeId];
        let after: NodeLive | undefined;
        if (type === "node.delta") {
          const delta = asDelta(data);
          after = delta ? withDelta(before, delta) : before;
        } else {
          const step = asStep(data);
          after = step ? withStep(before, step) : before;
        }
        if (after && after !== before) live = { ...live, [nodeId]: after };
      }
      if (live !== state.live) set({ live });
    },

    openViewer(nodeId, output) {
      set({ viewer: { nodeId, output: output ?? null } });
    },

    closeViewer() {
      if (get().viewer) set({ viewer: null });
    },
  };
}
