/**
 * What the slices of the editor store share: the store's `set` and `get`, and the three ways
 * an edit lands (`change`: one undo step; `move`: only positions, saved in place when nothing
 * else is unsaved; `travel`: an undo or redo), plus the graph helpers several slices use.
 */
import type { Edge } from "@xyflow/react";

import { FINISHED_RUN_STATUSES as FINISHED_RUN } from "../../api/events";
import type { EditorState, FlowNode, Snapshot } from "../store";

export const HISTORY_LIMIT = 100;
export const EPHEMERAL_NODE_KEYS = ["selected", "dragging", "measured", "resizing"] as const;
export const EPHEMERAL_EDGE_KEYS = ["selected"] as const;

type SetState = (partial: Partial<EditorState>) => void;
type GetState = () => EditorState;

export interface SliceContext {
  set: SetState;
  get: GetState;
  /** Record the current graph for undo, then apply `update`. */
  change(update: (state: EditorState) => Partial<EditorState>): void;
  /**
   * Apply `update`, which changes only where the nodes in `ids` sit. With no other unsaved
   * change, that is saved in place (the graph stays "saved"); otherwise it is one more
   * unsaved change.
   */
  move(ids: string[], update: Partial<EditorState>): void;
  /** Apply an undo or redo: back at the saved graph, the graph is "saved" again. */
  travel(state: EditorState, update: Partial<EditorState> & Snapshot): void;
  /** The last config field typed into, so that keystrokes within a second are one undo step. */
  edits: { lastConfigEdit: { key: string; at: number } | null };
}

export function sliceContext(set: SetState, get: GetState): SliceContext {
  const change: SliceContext["change"] = (update) => {
    const state = get();
    const past = [...state.past, { nodes: state.nodes, edges: state.edges }].slice(-HISTORY_LIMIT);
    set({ ...staleRun(state), ...update(state), past, future: [], revision: state.revision + 1 });
  };
  const move: SliceContext["move"] = (ids, update) => {
    const state = get();
    if (ids.length > 0 && state.revision === state.savedRevision) {
      const moved = { ...state.moved };
      for (const id of ids) moved[id] = true;
      const nodes = update.nodes ?? state.nodes;
      // Saved in place: the saved graph now has these positions.
      set({ ...update, moved, savedGraph: { nodes, edges: update.edges ?? state.edges } });
    } else {
      set({ ...update, revision: state.revision + 1 });
    }
  };
  const travel: SliceContext["travel"] = (state, update) => {
    const moved = movedBetween(state, update);
    if (moved) {
      move(moved, update);
      return;
    }
    const revision = state.revision + 1;
    const clean = state.savedGraph !== null && sameGraph(update, state.savedGraph);
    set({ ...staleRun(state), ...update, revision, ...(clean ? { savedRevision: revision, moved: {} } : {}) });
  };
  return { set, get, change, move, travel, edits: { lastConfigEdit: null } };
}

export function asNodes(raw: unknown): FlowNode[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((n): n is Record<string, unknown> => typeof n === "object" && n !== null)
    .map((n) => {
      const data = (typeof n.data === "object" && n.data !== null ? n.data : {}) as Record<string, unknown>;
      const config = (typeof data.config === "object" && data.config !== null ? data.config : {}) as Record<
        string,
        unknown
      >;
      const position = (n.position ?? { x: 0, y: 0 }) as { x: number; y: number };
      return { ...n, id: String(n.id), type: String(n.type), position, data: { ...data, config } } as FlowNode;
    });
}

export function asEdges(raw: unknown): Edge[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter((e): e is Edge => typeof e === "object" && e !== null && "source" in e && "target" in e);
}

export function strip<T extends object>(item: T, keys: readonly string[]): Record<string, unknown> {
  const copy = { ...item } as Record<string, unknown>;
  for (const key of keys) delete copy[key];
  return copy;
}

export function edgeId(c: { source: string; sourceHandle?: string | null; target: string; targetHandle?: string | null }): string {
  return `e_${c.source}.${c.sourceHandle ?? ""}_${c.target}.${c.targetHandle ?? ""}`;
}

export function freshId(base: string, taken: Set<string>): string {
  const stem = base.split(".").pop()!.replace(/[^A-Za-z0-9_-]/g, "") || "node";
  for (let i = 1; ; i++) {
    const id = `${stem}_${i}`;
    if (!taken.has(id)) return id;
  }
}

/**
 * The label a new node starts with: its type's display name, numbered from 2 when a node
 * already bears it ("Ask a model", "Ask a model 2"), as people name nodes, not by their id.
 */
export function freshLabel(name: string, nodes: readonly FlowNode[]): string {
  const taken = new Set(nodes.map((n) => String(n.data.label ?? "")));
  if (!taken.has(name)) return name;
  for (let i = 2; ; i++) {
    const label = `${name} ${i}`;
    if (!taken.has(label)) return label;
  }
}

function edgeKey(e: Edge): string {
  return `${e.id}|${e.source}|${e.sourceHandle ?? ""}|${e.target}|${e.targetHandle ?? ""}`;
}

/**
 * The ids of the nodes whose position differs between two graphs when that is all that
 * differs (same nodes, same settings, same wires), else null. Settings compare by reference:
 * the store replaces a node's data only when it changes.
 */
export function movedBetween(before: Snapshot, after: Snapshot): string[] | null {
  if (before.nodes.length !== after.nodes.length || before.edges.length !== after.edges.length) return null;
  const moved: string[] = [];
  for (let i = 0; i < before.nodes.length; i++) {
    const a = before.nodes[i];
    const b = after.nodes[i];
    if (a.id !== b.id || a.type !== b.type || a.data !== b.data) return null;
    if (a.position.x !== b.position.x || a.position.y !== b.position.y) moved.push(a.id);
  }
  for (let i = 0; i < before.edges.length; i++) {
    if (before.edges[i] !== after.edges[i] && edgeKey(before.edges[i]) !== edgeKey(after.edges[i])) return null;
  }
  return moved;
}

/** The graph as a save would send it (selection, measures and the like left out). */
function savedForm(graph: Snapshot): string {
  return JSON.stringify([graph.nodes.map((n) => strip(n, EPHEMERAL_NODE_KEYS)), graph.edges.map((e) => strip(e, EPHEMERAL_EDGE_KEYS))]);
}

export function sameGraph(a: Snapshot, b: Snapshot): boolean {
  if (a.nodes === b.nodes && a.edges === b.edges) return true;
  if (a.nodes.length !== b.nodes.length || a.edges.length !== b.edges.length) return false;
  return savedForm(a) === savedForm(b);
}

/** A finished run's results describe a graph that has just changed: take them off the canvas. */
export function staleRun(state: EditorState): Partial<EditorState> {
  return state.run && FINISHED_RUN.has(state.run.status) ? { run: null, runStates: {}, live: {}, debugSessionId: null } : {};
}
