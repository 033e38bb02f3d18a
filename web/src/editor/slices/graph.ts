/**
 * The graph: nodes and wires in React Flow's shape, edits through the shared helpers, where nodes
 * sit, and the problems validation found.
 */
import { addEdge, applyEdgeChanges, applyNodeChanges } from "@xyflow/react";

import type { JsonSchema } from "../../api/types";
import { annotationNodes, isAnnotation, toAnnotation } from "../annotations";
import { layeredLayout } from "../layout";
import { compatible, matchingPort, portsFor } from "../ports";
import { problemField, problemText } from "../problems";
import { defaultsFor, fieldsFor } from "../schemaForm";
import type { EditorState, FlowNode } from "../store";
import {
  asEdges,
  asNodes,
  EPHEMERAL_EDGE_KEYS,
  EPHEMERAL_NODE_KEYS,
  edgeId,
  freshId,
  freshLabel,
  HISTORY_LIMIT,
  staleRun,
  strip,
  type SliceContext,
} from "./context";

export type GraphSlice = Pick<
  EditorState,
  "nodeTypes" | "nodes" | "edges" | "revision" | "savedRevision" | "problems" | "fieldProblems"
  | "graphProblems" | "savedGraph" | "moved" | "setNodeTypes" | "load" | "markSaved" |
  "onNodesChange" | "onEdgesChange" | "refusal" | "connect" | "addNode" | "addConnectedNode" | "updateConfig" |
  "updateLabel" | "pin" | "removeSelected" | "autoLayout" | "takeMoved" | "movesNotSaved" | "selectOnly"
  | "toDefinition" | "setProblems"
>;

/** The wires a new wire `connection` takes the place of: the one already in its target, when
 * that input takes a single value and the wire is not the same one. */
function replacedBy(
  state: EditorState,
  connection: { source: string; sourceHandle?: string | null; target: string; targetHandle?: string | null },
): EditorState["edges"] {
  const target = state.nodes.find((n) => n.id === connection.target);
  const input = target ? portsFor(state.nodeTypes[target.type!], target.data.config).inputs.find((p) => p.name === connection.targetHandle) : undefined;
  if (!input || input.is_list) return [];
  return state.edges.filter(
    (e) => e.target === connection.target && e.targetHandle === connection.targetHandle && e.id !== edgeId(connection),
  );
}

export function graphSlice({ set, get, change, move, edits }: SliceContext): GraphSlice {
  return {
    nodeTypes: {},
    nodes: [],
    edges: [],
    revision: 0,
    savedRevision: 0,
    problems: {},
    fieldProblems: {},
    graphProblems: [],
    savedGraph: null,
    moved: {},

    setNodeTypes(specs) {
      set({ nodeTypes: Object.fromEntries(specs.map((s) => [s.type, s])) });
    },

    load(definition) {
      const doc = (definition ?? {}) as Record<string, unknown>;
      const revision = get().revision + 1;
      // Groups first (drawn behind), then the nodes, then notes on top.
      const notes = annotationNodes(doc.annotations);
      const nodes = [...notes.filter((n) => n.type === "group"), ...asNodes(doc.nodes), ...notes.filter((n) => n.type === "note")];
      const edges = asEdges(doc.edges);
      const ids = new Set(nodes.map((n) => n.id));
      const state = get();
      set({
        ...staleRun(state),
        // An error about the graph that was on the canvas (a cycle, a refused wire) is stale.
        notice: state.notice?.kind === "error" ? null : state.notice,
        savedGraph: { nodes, edges },
        breakpoints: Object.fromEntries(Object.keys(get().breakpoints).filter((id) => ids.has(id)).map((id) => [id, true])),
        nodes,
        edges,
        past: [],
        future: [],
        revision,
        savedRevision: revision,
        problems: {},
        fieldProblems: {},
        graphProblems: [],
        moved: {},
      });
    },

    markSaved(revision, graph) {
      const state = get();
      const savedGraph = graph ?? (revision === state.revision ? { nodes: state.nodes, edges: state.edges } : null);
      set({ savedRevision: revision, savedGraph });
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
      const { nodes, nodeTypes } = get();
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
      // An occupied single input is not a refusal: the new wire replaces the old (see connect).
      return null;
    },

    connect(connection) {
      const reason = get().refusal(connection);
      if (reason) {
        set({ notice: { kind: "error", text: `Connection refused: ${reason}.`, topic: "connect" } });
        return false;
      }
      const replaced = replacedBy(get(), connection);
      if (replaced.length === 0 && get().edges.some((e) => e.id === edgeId(connection))) return true;
      const gone = new Set(replaced.map((e) => e.id));
      change((s) => ({ edges: addEdge({ ...connection, id: edgeId(connection) }, s.edges.filter((e) => !gone.has(e.id))) }));
      get().resolve("connect");
      if (replaced.length > 0) {
        const old = replaced[0];
        get().notify("info", `Replaced the wire from ${old.source}.${old.sourceHandle ?? ""} into ${connection.target}.${connection.targetHandle ?? ""} (Undo puts it back).`);
      }
      return true;
    },

    addConnectedNode(type, position, from) {
      const state = get();
      const spec = state.nodeTypes[type];
      const fromNode = state.nodes.find((n) => n.id === from.nodeId);
      const fromPorts = fromNode ? portsFor(state.nodeTypes[fromNode.type!], fromNode.data.config) : null;
      const fromPort = (from.side === "source" ? fromPorts?.outputs : fromPorts?.inputs)?.find((p) => p.name === from.handle);
      if (!spec || !fromPort) return null;
      const taken = new Set(state.nodes.map((n) => n.id));
      const id = freshId(type, taken);
      const config = defaultsFor(fieldsFor(spec.config_schema as JsonSchema));
      const port = matchingPort(portsFor(spec, config), fromPort.type, from.side);
      if (!port) return null;
      const label = freshLabel(spec.display_name || id, state.nodes);
      const node: FlowNode = { id, type, position, data: { label, config }, selected: true };
      const connection =
        from.side === "source"
          ? { source: from.nodeId, sourceHandle: from.handle, target: id, targetHandle: port.name }
          : { source: id, sourceHandle: port.name, target: from.nodeId, targetHandle: from.handle };
      const gone = new Set(replacedBy(state, connection).map((e) => e.id));
      change((s) => ({
        nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), node],
        edges: [...s.edges.filter((e) => !gone.has(e.id)), { ...connection, id: edgeId(connection) }],
      }));
      return id;
    },

    addNode(type, position, preset) {
      const spec = get().nodeTypes[type];
      const taken = new Set(get().nodes.map((n) => n.id));
      const id = freshId(type, taken);
      const defaults = spec ? defaultsFor(fieldsFor(spec.config_schema as JsonSchema)) : {};
      const config = { ...defaults, ...structuredClone(preset?.config ?? {}) };
      const label = preset?.label ?? freshLabel(spec?.display_name || id, get().nodes);
      const node: FlowNode = { id, type, position, data: { label, config }, selected: true };
      change((s) => ({ nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), node] }));
      return id;
    },

    updateConfig(nodeId, key, value) {
      // Keystrokes in one field within a second are one undo step, not one per letter.
      const now = Date.now();
      const editKey = `${nodeId}/${key}`;
      const coalesce = edits.lastConfigEdit?.key === editKey && now - edits.lastConfigEdit.at < 1000;
      edits.lastConfigEdit = { key: editKey, at: now };
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
        set({ ...staleRun(state), ...apply(state), revision: state.revision + 1 });
      } else {
        change(apply);
      }
    },

    updateLabel(nodeId, label) {
      change((s) => ({
        nodes: s.nodes.map((n) => (n.id === nodeId ? { ...n, data: { ...n.data, label } } : n)),
      }));
    },

    pin(nodeId, outputs) {
      change((s) => ({
        nodes: s.nodes.map((n) => {
          if (n.id !== nodeId) return n;
          const data = { ...n.data };
          if (outputs === null) delete data.pinned;
          else data.pinned = structuredClone(outputs);
          return { ...n, data };
        }),
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

    autoLayout() {
      // Notes and groups stay where they were put.
      const positions = layeredLayout(
        get().nodes.filter((n) => !isAnnotation(n)).map((n) => ({ id: n.id, width: n.measured?.width, height: n.measured?.height })),
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
      const annotations = nodes.filter(isAnnotation);
      return {
        schema_version: 1,
        nodes: (annotations.length ? nodes.filter((n) => !isAnnotation(n)) : nodes).map((n) => strip(n, EPHEMERAL_NODE_KEYS)),
        edges: edges.map((e) => strip(e, EPHEMERAL_EDGE_KEYS)),
        ...(annotations.length ? { annotations: annotations.map(toAnnotation) } : {}),
      };
    },

    setProblems(list, revision) {
      if (revision !== undefined && revision !== get().revision) return;
      const problems: Record<string, string[]> = {};
      const fieldProblems: Record<string, Record<string, string[]>> = {};
      const graphProblems: string[] = [];
      for (const p of list) {
        const text = problemText(p);
        const field = problemField(p);
        if (p.node_id) {
          (problems[p.node_id] ??= []).push(text);
          if (field) ((fieldProblems[p.node_id] ??= {})[field] ??= []).push(text);
        } else graphProblems.push(text);
      }
      // Keep the old lists where nothing changed, so those nodes do not re-render.
      const before = get().problems;
      for (const [id, messages] of Object.entries(problems)) {
        if (before[id] && before[id].join("\n") === messages.join("\n")) problems[id] = before[id];
      }
      const beforeFields = get().fieldProblems;
      for (const [id, byField] of Object.entries(fieldProblems)) {
        if (beforeFields[id] && JSON.stringify(beforeFields[id]) === JSON.stringify(byField)) fieldProblems[id] = beforeFields[id];
      }
      set({ problems, fieldProblems, graphProblems });
    },
  };
}
