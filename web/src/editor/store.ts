/**
 * The canvas store (Zustand): the graph in React Flow's own shape, undo/redo, the clipboard,
 * validation problems by node, and the live state of a run by node.
 *
 * Components read it through narrow selectors (`useEditor((s) => s.runStates[id])`), and every
 * update replaces only what changed: a node.started event swaps one entry of `runStates`, so
 * only that node re-renders, whatever the size of the graph.
 */
import {
  addEdge,
  applyEdgeChanges,
  applyNodeChanges,
  type Connection,
  type Edge,
  type EdgeChange,
  type Node,
  type NodeChange,
} from "@xyflow/react";
import { useStore } from "zustand";
import { createStore, type StoreApi } from "zustand/vanilla";

import type { NodeExecutionPublic, NodeTypeSpec, ProblemPublic, RunDetail } from "../api/types";
import { layeredLayout } from "./layout";
import { compatible, portsFor } from "./ports";
import { defaultsFor, fieldsFor } from "./schemaForm";

export interface NodeData extends Record<string, unknown> {
  label?: string;
  config: Record<string, unknown>;
}

export type FlowNode = Node<NodeData>;

export interface Definition {
  schema_version: 1;
  nodes: unknown[];
  edges: unknown[];
  [key: string]: unknown;
}

/** What the canvas shows of one node's execution. */
export interface NodeRunView {
  status: string;
  attempt: number;
  durationMs: number | null;
  outputs: Record<string, unknown> | null;
  error: Record<string, unknown> | null;
  wait: Record<string, unknown> | null;
}

export interface RunView {
  id: string;
  status: string;
  /** Opened from the history, rather than started here. */
  past: boolean;
  error: Record<string, unknown> | null;
}

export interface Snapshot {
  nodes: FlowNode[];
  edges: Edge[];
}

export interface EditorState {
  nodeTypes: Record<string, NodeTypeSpec>;
  nodes: FlowNode[];
  edges: Edge[];
  /** Bumped on every change that a save would send; validation and "unsaved" follow it. */
  revision: number;
  savedRevision: number;
  problems: Record<string, string[]>;
  /** Problems that belong to no node (a cycle, the document's shape). */
  graphProblems: string[];
  runStates: Record<string, NodeRunView>;
  run: RunView | null;
  past: Snapshot[];
  future: Snapshot[];
  clipboard: Snapshot | null;
  notice: { kind: "error" | "info"; text: string } | null;
  /** Node ids a debug run pauses before (kept in this browser tab, not in the definition). */
  breakpoints: Record<string, true>;
  /** The debug session of the run on the canvas, when it is one. */
  debugSessionId: string | null;
  /**
   * Nodes moved while the graph had no other unsaved change: their positions are saved in
   * place (PATCH .../positions, see positions.ts), not by a new version. Moves of a graph with
   * unsaved changes go with the next save instead.
   */
  moved: Record<string, true>;

  setNodeTypes(specs: NodeTypeSpec[]): void;
  load(definition: unknown): void;
  markSaved(revision: number): void;
  onNodesChange(changes: NodeChange<FlowNode>[]): void;
  onEdgesChange(changes: EdgeChange[]): void;
  /** Why `connection` may not be made, or null when it may. */
  refusal(connection: Connection | Edge): string | null;
  connect(connection: Connection): boolean;
  /** Add a node of `type` (from a preset: its config and label) at `position`; its id. */
  addNode(type: string, position: { x: number; y: number }, preset?: { config: Record<string, unknown>; label: string }): string;
  updateConfig(nodeId: string, key: string, value: unknown): void;
  updateLabel(nodeId: string, label: string): void;
  removeSelected(): void;
  /** Save the state before a change that is applied elsewhere (a drag that starts). */
  checkpoint(): void;
  undo(): void;
  redo(): void;
  copy(): number;
  paste(): number;
  autoLayout(): void;
  /** The current positions of the moved nodes still on the canvas; forgets them. */
  takeMoved(): Record<string, { x: number; y: number }>;
  /** Positions that could not be saved in place: they go with the next save. */
  movesNotSaved(): void;
  selectOnly(nodeId: string | null): void;
  toDefinition(): Definition;
  setProblems(problems: ProblemPublic[]): void;
  startRun(runId: string): void;
  applyRunDetail(detail: RunDetail, past?: boolean): void;
  applyEvent(type: string, nodeId: string | null, data: Record<string, unknown>): void;
  clearRun(): void;
  toggleBreakpoint(nodeId: string): void;
  setDebugSession(id: string | null): void;
  notify(kind: "error" | "info", text: string): void;
  dismissNotice(): void;
}

const HISTORY_LIMIT = 100;
const EPHEMERAL_NODE_KEYS = ["selected", "dragging", "measured", "resizing"] as const;
const EPHEMERAL_EDGE_KEYS = ["selected"] as const;

function asNodes(raw: unknown): FlowNode[] {
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

function asEdges(raw: unknown): Edge[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter((e): e is Edge => typeof e === "object" && e !== null && "source" in e && "target" in e);
}

function strip<T extends object>(item: T, keys: readonly string[]): Record<string, unknown> {
  const copy = { ...item } as Record<string, unknown>;
  for (const key of keys) delete copy[key];
  return copy;
}

export function edgeId(c: { source: string; sourceHandle?: string | null; target: string; targetHandle?: string | null }): string {
  return `e_${c.source}.${c.sourceHandle ?? ""}_${c.target}.${c.targetHandle ?? ""}`;
}

function freshId(base: string, taken: Set<string>): string {
  const stem = base.split(".").pop()!.replace(/[^A-Za-z0-9_-]/g, "") || "node";
  for (let i = 1; ; i++) {
    const id = `${stem}_${i}`;
    if (!taken.has(id)) return id;
  }
}

function sameView(a: NodeRunView | undefined, b: NodeRunView): boolean {
  return (
    a !== undefined &&
    a.status === b.status &&
    a.attempt === b.attempt &&
    a.durationMs === b.durationMs &&
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
    outputs: (execution.outputs as Record<string, unknown> | null) ?? null,
    error: (execution.error as Record<string, unknown> | null) ?? null,
    wait: (execution.wait as Record<string, unknown> | null) ?? null,
  };
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

const EVENT_STATUS: Record<string, string> = {
  "node.started": "RUNNING",
  "node.succeeded": "SUCCEEDED",
  "node.failed": "FAILED",
  "node.cached": "CACHED",
  "node.skipped": "SKIPPED",
  "node.cancelled": "CANCELLED",
  "node.waiting": "WAITING",
  "node.retrying": "READY",
};

const RUN_EVENT_STATUS: Record<string, string> = {
  "run.started": "RUNNING",
  "run.resumed": "RUNNING",
  "run.waiting": "WAITING",
  "run.completed": "COMPLETED",
  "run.failed": "FAILED",
  "run.cancelled": "CANCELLED",
};

export function createEditorStore(): StoreApi<EditorState> {
  return createStore<EditorState>()((set, get) => {
    /** Record the current graph for undo, then apply `change`. */
    const change = (update: (state: EditorState) => Partial<EditorState>) => {
      const state = get();
      const past = [...state.past, { nodes: state.nodes, edges: state.edges }].slice(-HISTORY_LIMIT);
      set({ ...update(state), past, future: [], revision: state.revision + 1 });
    };
    let lastConfigEdit: { key: string; at: number } | null = null;
    /**
     * Apply `update`, which changes only where the nodes in `ids` sit. With no other unsaved
     * change, that is saved in place (the graph stays "saved"); otherwise it is one more
     * unsaved change.
     */
    const move = (ids: string[], update: Partial<EditorState>) => {
      const state = get();
      if (ids.length > 0 && state.revision === state.savedRevision) {
        const moved = { ...state.moved };
        for (const id of ids) moved[id] = true;
        set({ ...update, moved });
      } else {
        set({ ...update, revision: state.revision + 1 });
      }
    };

    return {
      nodeTypes: {},
      nodes: [],
      edges: [],
      revision: 0,
      savedRevision: 0,
      problems: {},
      graphProblems: [],
      runStates: {},
      run: null,
      past: [],
      future: [],
      clipboard: null,
      notice: null,
      breakpoints: {},
      debugSessionId: null,
      moved: {},

      setNodeTypes(specs) {
        set({ nodeTypes: Object.fromEntries(specs.map((s) => [s.type, s])) });
      },

      load(definition) {
        const doc = (definition ?? {}) as Record<string, unknown>;
        const revision = get().revision + 1;
        const nodes = asNodes(doc.nodes);
        const ids = new Set(nodes.map((n) => n.id));
        set({
          breakpoints: Object.fromEntries(Object.keys(get().breakpoints).filter((id) => ids.has(id)).map((id) => [id, true])),
          nodes,
          edges: asEdges(doc.edges),
          past: [],
          future: [],
          revision,
          savedRevision: revision,
          problems: {},
          graphProblems: [],
          moved: {},
        });
      },

      markSaved(revision) {
        set({ savedRevision: revision });
      },

      onNodesChange(changes) {
        const structural = changes.some((c) => c.type === "remove" || c.type === "add");
        const moved = changes.some((c) => c.type === "position" && !c.dragging && c.position);
        if (structural) {
          change((s) => ({ nodes: applyNodeChanges(changes, s.nodes) }));
          return;
        }
        const nodes = applyNodeChanges(changes, get().nodes);
        if (!moved) {
          set({ nodes });
          return;
        }
        const ids = changes.flatMap((c) => (c.type === "position" && !c.dragging && c.position ? [c.id] : []));
        move(ids, { nodes });
      },

      onEdgesChange(changes) {
        if (changes.some((c) => c.type === "remove" || c.type === "add")) {
          change((s) => ({ edges: applyEdgeChanges(changes, s.edges) }));
        } else {
          set({ edges: applyEdgeChanges(changes, get().edges) });
        }
      },

      refusal(connection) {
        const { nodes, edges, nodeTypes } = get();
        if (connection.source === connection.target) return "a node cannot feed itself";
        const source = nodes.find((n) => n.id === connection.source);
        const target = nodes.find((n) => n.id === connection.target);
        if (!source || !target) return "both ends must be nodes on the canvas";
        const out = portsFor(nodeTypes[source.type!], source.data.config).outputs.find(
          (p) => p.name === connection.sourceHandle,
        );
        const inp = portsFor(nodeTypes[target.type!], target.data.config).inputs.find(
          (p) => p.name === connection.targetHandle,
        );
        if (!out || !inp) return "that port does not exist";
        if (!compatible(out.type, inp.type)) {
          return `${source.id}.${out.name} gives ${out.type}, but ${target.id}.${inp.name} takes ${inp.type}`;
        }
        const taken = edges.some(
          (e) => e.target === connection.target && e.targetHandle === connection.targetHandle,
        );
        if (taken && !inp.is_list) return `${target.id}.${inp.name} already has an input`;
        return null;
      },

      connect(connection) {
        const reason = get().refusal(connection);
        if (reason) {
          set({ notice: { kind: "error", text: `Connection refused: ${reason}.` } });
          return false;
        }
        change((s) => ({ edges: addEdge({ ...connection, id: edgeId(connection) }, s.edges) }));
        return true;
      },

      addNode(type, position, preset) {
        const spec = get().nodeTypes[type];
        const taken = new Set(get().nodes.map((n) => n.id));
        const id = freshId(type, taken);
        const defaults = spec ? defaultsFor(fieldsFor(spec.config_schema)) : {};
        const config = { ...defaults, ...structuredClone(preset?.config ?? {}) };
        const node: FlowNode = { id, type, position, data: { label: preset?.label ?? id, config }, selected: true };
        change((s) => ({ nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), node] }));
        return id;
      },

      updateConfig(nodeId, key, value) {
        // Keystrokes in one field within a second are one undo step, not one per letter.
        const now = Date.now();
        const editKey = `${nodeId}/${key}`;
        const coalesce = lastConfigEdit?.key === editKey && now - lastConfigEdit.at < 1000;
        lastConfigEdit = { key: editKey, at: now };
        const apply = (s: EditorState) => ({
          nodes: s.nodes.map((n) => {
            if (n.id !== nodeId) return n;
            const config = { ...n.data.config };
            if (value === undefined) delete config[key];
            else config[key] = value;
            return { ...n, data: { ...n.data, config } };
          }),
        });
        if (coalesce) {
          const state = get();
          set({ ...apply(state), revision: state.revision + 1 });
        } else {
          change(apply);
        }
      },

      updateLabel(nodeId, label) {
        change((s) => ({
          nodes: s.nodes.map((n) => (n.id === nodeId ? { ...n, data: { ...n.data, label } } : n)),
        }));
      },

      removeSelected() {
        const { nodes, edges } = get();
        const gone = new Set(nodes.filter((n) => n.selected).map((n) => n.id));
        if (gone.size === 0 && !edges.some((e) => e.selected)) return;
        change((s) => ({
          nodes: s.nodes.filter((n) => !gone.has(n.id)),
          edges: s.edges.filter((e) => !e.selected && !gone.has(e.source) && !gone.has(e.target)),
        }));
      },

      checkpoint() {
        const state = get();
        set({ past: [...state.past, { nodes: state.nodes, edges: state.edges }].slice(-HISTORY_LIMIT), future: [] });
      },

      undo() {
        const state = get();
        const previous = state.past[state.past.length - 1];
        if (!previous) return;
        lastConfigEdit = null;
        const update = {
          nodes: previous.nodes,
          edges: previous.edges,
          past: state.past.slice(0, -1),
          future: [{ nodes: state.nodes, edges: state.edges }, ...state.future],
        };
        const moved = movedBetween(state, previous);
        if (moved) move(moved, update);
        else set({ ...update, revision: state.revision + 1 });
      },

      redo() {
        const state = get();
        const next = state.future[0];
        if (!next) return;
        lastConfigEdit = null;
        const update = {
          nodes: next.nodes,
          edges: next.edges,
          past: [...state.past, { nodes: state.nodes, edges: state.edges }],
          future: state.future.slice(1),
        };
        const moved = movedBetween(state, next);
        if (moved) move(moved, update);
        else set({ ...update, revision: state.revision + 1 });
      },

      copy() {
        const { nodes, edges } = get();
        const chosen = nodes.filter((n) => n.selected);
        const ids = new Set(chosen.map((n) => n.id));
        const inside = edges.filter((e) => ids.has(e.source) && ids.has(e.target));
        set({ clipboard: chosen.length ? { nodes: structuredClone(chosen), edges: structuredClone(inside) } : null });
        return chosen.length;
      },

      paste() {
        const clip = get().clipboard;
        if (!clip || clip.nodes.length === 0) return 0;
        const taken = new Set(get().nodes.map((n) => n.id));
        const renamed = new Map<string, string>();
        const pasted = clip.nodes.map((n) => {
          const id = freshId(n.type ?? "node", taken);
          taken.add(id);
          renamed.set(n.id, id);
          const label = n.data.label === n.id || !n.data.label ? id : n.data.label;
          return {
            ...structuredClone(n),
            id,
            selected: true,
            position: { x: n.position.x + 40, y: n.position.y + 40 },
            data: { ...structuredClone(n.data), label },
          };
        });
        const wires = clip.edges.map((e) => {
          const wired = { ...e, source: renamed.get(e.source)!, target: renamed.get(e.target)!, selected: false };
          return { ...wired, id: edgeId(wired) };
        });
        change((s) => ({
          nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...pasted],
          edges: [...s.edges, ...wires],
        }));
        // The next paste lands further along, not on top of this one.
        set({
          clipboard: {
            nodes: clip.nodes.map((n) => ({ ...n, position: { x: n.position.x + 40, y: n.position.y + 40 } })),
            edges: clip.edges,
          },
        });
        return pasted.length;
      },

      autoLayout() {
        const positions = layeredLayout(
          get().nodes.map((n) => ({ id: n.id, width: n.measured?.width, height: n.measured?.height })),
          get().edges,
        );
        const state = get();
        const ids: string[] = [];
        const nodes = state.nodes.map((n) => {
          const at = positions.get(n.id);
          if (!at || (at.x === n.position.x && at.y === n.position.y)) return n;
          ids.push(n.id);
          return { ...n, position: at };
        });
        if (ids.length === 0) return;
        const past = [...state.past, { nodes: state.nodes, edges: state.edges }].slice(-HISTORY_LIMIT);
        move(ids, { nodes, past, future: [] });
      },

      takeMoved() {
        const { moved, nodes } = get();
        const ids = Object.keys(moved);
        if (ids.length === 0) return {};
        const positions: Record<string, { x: number; y: number }> = {};
        for (const node of nodes) {
          if (moved[node.id]) positions[node.id] = { x: node.position.x, y: node.position.y };
        }
        set({ moved: {} });
        return positions;
      },

      movesNotSaved() {
        const state = get();
        // The graph becomes "unsaved", so the positions (in the definition) go with the save.
        if (state.revision === state.savedRevision) set({ revision: state.revision + 1 });
      },

      selectOnly(nodeId) {
        set({
          nodes: get().nodes.map((n) => {
            const selected = n.id === nodeId;
            return n.selected === selected ? n : { ...n, selected };
          }),
        });
      },

      toDefinition() {
        const { nodes, edges } = get();
        return {
          schema_version: 1,
          nodes: nodes.map((n) => strip(n, EPHEMERAL_NODE_KEYS)),
          edges: edges.map((e) => strip(e, EPHEMERAL_EDGE_KEYS)),
        };
      },

      setProblems(list) {
        const problems: Record<string, string[]> = {};
        const graphProblems: string[] = [];
        for (const p of list) {
          const text = p.port ? `${p.port}: ${p.message}` : p.message;
          if (p.node_id) (problems[p.node_id] ??= []).push(text);
          else graphProblems.push(text);
        }
        // Keep the old lists where nothing changed, so those nodes do not re-render.
        const before = get().problems;
        for (const [id, messages] of Object.entries(problems)) {
          if (before[id] && before[id].join("\n") === messages.join("\n")) problems[id] = before[id];
        }
        set({ problems, graphProblems });
      },

      startRun(runId) {
        set({
          run: { id: runId, status: "PENDING", past: false, error: null },
          runStates: {},
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
          outputs: status === "RUNNING" ? null : (old?.outputs ?? null),
          error: (data.error as Record<string, unknown> | undefined) ?? (status === "FAILED" ? old?.error ?? null : null),
          wait: status === "WAITING" ? { kind: data.kind, reason: data.reason, payload: data.payload } : null,
        };
        set({ runStates: { ...state.runStates, [nodeId]: view } });
      },

      clearRun() {
        set({ run: null, runStates: {}, debugSessionId: null });
      },

      toggleBreakpoint(nodeId) {
        const breakpoints = { ...get().breakpoints };
        if (breakpoints[nodeId]) delete breakpoints[nodeId];
        else breakpoints[nodeId] = true;
        set({ breakpoints });
      },

      setDebugSession(id) {
        set({ debugSessionId: id });
      },

      notify(kind, text) {
        set({ notice: { kind, text } });
      },

      dismissNotice() {
        set({ notice: null });
      },
    };
  });
}

/** The one canvas store of the app. */
export const editorStore = createEditorStore();

export function useEditor<T>(selector: (state: EditorState) => T): T {
  return useStore(editorStore, selector);
}
