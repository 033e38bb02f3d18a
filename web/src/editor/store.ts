/**
 * The canvas store (Zustand): the graph in React Flow's own shape, undo/redo, the clipboard,
 * validation problems by node, and the live state of a run by node.
 *
 * Components read it through narrow selectors (`useEditor((s) => s.runStates[id])`), and every
 * update replaces only what changed: a node.started event swaps one entry of `runStates`, so
 * only that node re-renders, whatever the size of the graph.
 *
 * The state is one object made of slices (slices/*.ts), each a concern with its own fields and
 * actions: graph, history, clipboard, run, debug, notices. They share the store's `set`/`get`
 * and the three ways an edit lands (slices/context.ts).
 */
import type { Edge, Node } from "@xyflow/react";
import type { Connection, EdgeChange, NodeChange } from "@xyflow/react";
import { useStore } from "zustand";
import { createStore, type StoreApi } from "zustand/vanilla";

import type { NodeTypePublic, ProblemPublic, RunDetail } from "../api/types";
import type { AnnotationType } from "./annotations";
import { annotationsSlice } from "./slices/annotations";
import { clipboardSlice } from "./slices/clipboard";
import { sliceContext } from "./slices/context";
import { debugSlice } from "./slices/debug";
import { graphSlice } from "./slices/graph";
import { historySlice } from "./slices/history";
import { liveSlice, type NodeLive } from "./slices/live";
import { noticesSlice } from "./slices/notices";
import { runSlice } from "./slices/run";

export { edgeId, movedBetween, sameGraph } from "./slices/context";
export type { LiveStep, NodeLive } from "./slices/live";

export interface NodeData extends Record<string, unknown> {
  label?: string;
  config: Record<string, unknown>;
  /** Outputs pinned as test data: runs that use pinned data take them instead of running it. */
  pinned?: Record<string, unknown>;
}

export type FlowNode = Node<NodeData>;

export interface Definition {
  schema_version: 1;
  nodes: unknown[];
  edges: unknown[];
  annotations?: unknown[];
  [key: string]: unknown;
}

/** What the canvas shows of one node's execution. */
export interface NodeRunView {
  status: string;
  attempt: number;
  durationMs: number | null;
  /** The values the node received (from a fresh read of the run; events do not carry them). */
  inputs: Record<string, unknown> | null;
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

/** What a notice is about, so that a later success can take back a stale error. */
export type NoticeTopic = "connect" | "save" | "validate" | "positions" | "run" | "clipboard";

export interface Notice {
  kind: "error" | "info";
  text: string;
  topic?: NoticeTopic;
}

/** A progress event of a running node: a piece of its answer, or a tool step of an agent. */
export interface LiveEvent {
  type: "node.delta" | "node.step";
  nodeId: string;
  data: Record<string, unknown>;
}

/** The node (and, when one was picked, the output) the side viewer shows. */
export interface ViewerTarget {
  nodeId: string;
  output: string | null;
}

export interface Snapshot {
  nodes: FlowNode[];
  edges: Edge[];
}

export interface EditorState {
  nodeTypes: Record<string, NodeTypePublic>;
  nodes: FlowNode[];
  edges: Edge[];
  /** Bumped on every change that a save would send; validation and "unsaved" follow it. */
  revision: number;
  savedRevision: number;
  problems: Record<string, string[]>;
  /** The same problems, by node and then by the top-level config key they are about. */
  fieldProblems: Record<string, Record<string, string[]>>;
  /** Problems that belong to no node (a cycle, the document's shape). */
  graphProblems: string[];
  runStates: Record<string, NodeRunView>;
  run: RunView | null;
  /** Running nodes' answers as they stream, and agents' tool steps (slices/live.ts). */
  live: Record<string, NodeLive>;
  viewer: ViewerTarget | null;
  past: Snapshot[];
  future: Snapshot[];
  clipboard: Snapshot | null;
  notice: Notice | null;
  /** The graph as last saved (or loaded), to know when undo brings it back. */
  savedGraph: Snapshot | null;
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

  setNodeTypes(specs: NodeTypePublic[]): void;
  load(definition: unknown): void;
  /** The save of `revision` (whose graph was `graph`; by default the current one) succeeded. */
  markSaved(revision: number, graph?: Snapshot): void;
  onNodesChange(changes: NodeChange<FlowNode>[]): void;
  onEdgesChange(changes: EdgeChange[]): void;
  /** Why `connection` may not be made, or null when it may. */
  refusal(connection: Connection | Edge): string | null;
  connect(connection: Connection): boolean;
  /** Add a node of `type` (from a preset: its config and label) at `position`; its id. */
  addNode(type: string, position: { x: number; y: number }, preset?: { config: Record<string, unknown>; label: string }): string;
  /**
   * Add a node of `type` at `position`, wired to the port a wire was dragged from (`side`
   * "source": an output of `nodeId`; "target": an input), in one undo step; its id, or null
   * when no port of the type fits.
   */
  addConnectedNode(type: string, position: { x: number; y: number }, from: { nodeId: string; handle: string; side: "source" | "target" }): string | null;
  updateConfig(nodeId: string, key: string, value: unknown): void;
  updateLabel(nodeId: string, label: string): void;
  /** Pin `outputs` as the node's test data (`data.pinned`), or unpin it (null); undoable. */
  pin(nodeId: string, outputs: Record<string, unknown> | null): void;
  /** Add a sticky note, or a group (framing the selected nodes, if any); its id. */
  addAnnotation(type: AnnotationType, position: { x: number; y: number }): string;
  /** Change a note's text, a group's label, or either's colour (typing coalesces as in forms). */
  updateAnnotation(id: string, patch: Partial<{ text: string; label: string; color: string }>): void;
  /** A resize (begun after a checkpoint) ended: the graph has an unsaved change. */
  resized(): void;
  /** Select the group `id` and everything inside it, so that dragging it takes them along. */
  selectGroup(id: string): void;
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
  /** The server's problems of the graph as it was at `revision` (when given): ignored if the
   * graph changed since, so a slow answer about an older graph never shows stale problems. */
  setProblems(problems: ProblemPublic[], revision?: number): void;
  startRun(runId: string): void;
  applyRunDetail(detail: RunDetail, past?: boolean): void;
  applyEvent(type: string, nodeId: string | null, data: Record<string, unknown>): void;
  clearRun(): void;
  /** Progress events of the run on the canvas, in the order they came. */
  applyLive(events: LiveEvent[]): void;
  openViewer(nodeId: string, output?: string): void;
  closeViewer(): void;
  toggleBreakpoint(nodeId: string): void;
  setDebugSession(id: string | null): void;
  /** Show `text`; a notice with a `topic` goes away once that topic goes well (see `resolve`). */
  notify(kind: "error" | "info", text: string, topic?: NoticeTopic): void;
  /** `topic` went well: an error notice about it is stale. */
  resolve(topic: NoticeTopic): void;
  dismissNotice(): void;
}


export function createEditorStore(): StoreApi<EditorState> {
  return createStore<EditorState>()((set, get) => {
    const ctx = sliceContext(set, get);
    return {
      ...graphSlice(ctx),
      ...annotationsSlice(ctx),
      ...historySlice(ctx),
      ...clipboardSlice(ctx),
      ...runSlice(ctx),
      ...liveSlice(ctx),
      ...debugSlice(ctx),
      ...noticesSlice(ctx),
    };
  });
}

/** The one canvas store of the app. */
export const editorStore = createEditorStore();

export function useEditor<T>(selector: (state: EditorState) => T): T {
  return useStore(editorStore, selector);
}
