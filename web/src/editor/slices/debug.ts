/** Debugging: the breakpoints of this tab and the debug session of the run on the canvas. */
import type { EditorState } from "../store";
import type { SliceContext } from "./context";

export type DebugSlice = Pick<
  EditorState,
  "breakpoints" | "debugSessionId" | "toggleBreakpoint" | "setDebugSession"
>;

export function debugSlice({ set, get }: SliceContext): DebugSlice {
  return {
    breakpoints: {},
    debugSessionId: null,

    toggleBreakpoint(nodeId) {
      const breakpoints = { ...get().breakpoints };
      if (breakpoints[nodeId]) delete breakpoints[nodeId];
      else breakpoints[nodeId] = true;
      set({ breakpoints });
    },

    setDebugSession(id) {
      set({ debugSessionId: id });
    },
  };
}
