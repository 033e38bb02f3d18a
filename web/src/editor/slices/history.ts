/** Undo and redo: snapshots of the graph, and "saved" again when undo reaches the saved graph. */
import type { EditorState } from "../store";
import { HISTORY_LIMIT, type SliceContext } from "./context";

export type HistorySlice = Pick<EditorState, "past" | "future" | "checkpoint" | "undo" | "redo">;

export function historySlice({ set, get, travel, edits }: SliceContext): HistorySlice {
  return {
    past: [],
    future: [],

    checkpoint() {
      const state = get();
      set({ past: [...state.past, { nodes: state.nodes, edges: state.edges }].slice(-HISTORY_LIMIT), future: [] });
    },

    undo() {
      const state = get();
      const previous = state.past[state.past.length - 1];
      if (!previous) return;
      edits.lastConfigEdit = null;
      const update = {
        nodes: previous.nodes,
        edges: previous.edges,
        past: state.past.slice(0, -1),
        future: [{ nodes: state.nodes, edges: state.edges }, ...state.future],
      };
      travel(state, update);
    },

    redo() {
      const state = get();
      const next = state.future[0];
      if (!next) return;
      edits.lastConfigEdit = null;
      const update = {
        nodes: next.nodes,
        edges: next.edges,
        past: [...state.past, { nodes: state.nodes, edges: state.edges }],
        future: state.future.slice(1),
      };
      travel(state, update);
    },
  };
}
