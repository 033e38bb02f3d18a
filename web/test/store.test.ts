import { beforeEach, describe, expect, it } from "vitest";
import type { StoreApi } from "zustand/vanilla";

import type { NodeStatus, RunStatus } from "../src/api/events";
import type { RunDetail } from "../src/api/types";
import { createEditorStore, type EditorState } from "../src/editor/store";
import { SPECS } from "./fixtures";

let store: StoreApi<EditorState>;
const s = () => store.getState();

const NO_USAGE = { calls: 0, tokens_in: 0, tokens_out: 0, tokens_total: 0, cost: "0" };

function detail(status: RunStatus, nodes: Array<[string, NodeStatus, Record<string, unknown> | null]>): RunDetail {
  return {
    id: "run_1",
    workflow_id: "wf_1",
    workflow_version: 1,
    status,
    scope: "FULL",
    target_node_id: null,
    trigger_kind: "manual",
    inputs: {},
    outputs: null,
    error: null,
    cancel_requested: false,
    used_pinned: false,
    created_at: "2025-01-01T00:00:00Z",
    started_at: null,
    finished_at: null,
    duration_ms: null,
    nodes: nodes.map(([node_id, st, outputs]) => ({
      node_id,
      type: "text.value",
      status: st,
      attempt: 1,
      inputs: null,
      outputs,
      error: null,
      attempts: [],
      wait: null,
      cached_from_id: null,
      started_at: null,
      finished_at: null,
      duration_ms: st === "SUCCEEDED" ? 5 : null,
      usage: NO_USAGE,
    })),
    usage: NO_USAGE,
  };
}

beforeEach(() => {
  store = createEditorStore();
  s().setNodeTypes(SPECS);
});

describe("building a graph", () => {
  it("adds nodes with fresh ids and the config defaults of their schema", () => {
    const a = s().addNode("text.value", { x: 0, y: 0 });
    const b = s().addNode("text.value", { x: 10, y: 0 });
    expect([a, b]).toEqual(["value_1", "value_2"]);
    expect(s().nodes[1].data.config).toEqual({ text: "" });
    expect(s().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["value_2"]);
  });

  it("names new nodes after their type, numbered when the name is taken", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().addNode("text.value", { x: 0, y: 100 });
    s().updateLabel("value_2", "Greeting");
    s().addNode("text.value", { x: 0, y: 200 });
    s().addNode("text.join", { x: 300, y: 0 });
    s().connect({ source: "value_1", sourceHandle: "text", target: "join_1", targetHandle: "items" });
    s().addConnectedNode("text.join", { x: 600, y: 0 }, { nodeId: "value_1", handle: "text", side: "source" });
    expect(s().nodes.map((n) => n.data.label)).toEqual(["Text", "Greeting", "Text 2", "Join texts", "Join texts 2"]);
  });

  it("connects compatible ports, handles named after the ports", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().addNode("text.join", { x: 300, y: 0 });
    expect(s().connect({ source: "value_1", sourceHandle: "text", target: "join_1", targetHandle: "items" })).toBe(true);
    expect(s().edges).toHaveLength(1);
    expect(s().edges[0]).toMatchObject({ sourceHandle: "text", targetHandle: "items" });
  });

  it("refuses incompatible port types and says why", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().addNode("image.resize", { x: 300, y: 0 });
    const ok = s().connect({ source: "value_1", sourceHandle: "text", target: "resize_1", targetHandle: "image" });
    expect(ok).toBe(false);
    expect(s().edges).toHaveLength(0);
    expect(s().notice?.text).toContain("gives string, but resize_1.image takes image");
  });

  it("replaces the wire into a single input (undoably), and adds to a list input", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().addNode("text.value", { x: 0, y: 100 });
    s().addNode("text.template", { x: 300, y: 0 });
    s().updateConfig("template_1", "variables", ["a"]);
    s().addNode("text.join", { x: 300, y: 200 });
    const wire = (source: string, target: string, handle: string) =>
      s().connect({ source, sourceHandle: "text", target, targetHandle: handle });
    expect(wire("value_1", "template_1", "a")).toBe(true);
    expect(wire("value_2", "template_1", "a")).toBe(true);
    const into = (target: string) => s().edges.filter((e) => e.target === target).map((e) => e.source);
    expect(into("template_1")).toEqual(["value_2"]);
    expect(s().notice?.text).toContain("Replaced the wire from value_1.text");
    s().undo();
    expect(into("template_1")).toEqual(["value_1"]);
    s().redo();
    expect(into("template_1")).toEqual(["value_2"]);
    // The same wire again changes nothing.
    const revision = s().revision;
    expect(wire("value_2", "template_1", "a")).toBe(true);
    expect(s().revision).toBe(revision);
    expect(wire("value_1", "join_1", "items")).toBe(true);
    expect(wire("value_2", "join_1", "items")).toBe(true);
    expect(into("join_1")).toEqual(["value_1", "value_2"]);
  });

  it("gives a template node one input port per declared variable", () => {
    s().addNode("text.template", { x: 0, y: 0 });
    expect(s().refusal({ source: "x", sourceHandle: "text", target: "template_1", targetHandle: "name" })).not.toBeNull();
    s().addNode("text.value", { x: 0, y: 0 });
    expect(s().refusal({ source: "value_1", sourceHandle: "text", target: "template_1", targetHandle: "name" })).toBe(
      "that port does not exist",
    );
    s().updateConfig("template_1", "variables", ["name"]);
    expect(s().refusal({ source: "value_1", sourceHandle: "text", target: "template_1", targetHandle: "name" })).toBeNull();
  });
});

describe("presets and breakpoints", () => {
  it("adds a node from a preset with its config over the defaults and its name as label", () => {
    const id = s().addNode("text.value", { x: 0, y: 0 }, { config: { text: "hello" }, label: "Greeting" });
    expect(s().nodes[0]).toMatchObject({ id, data: { label: "Greeting", config: { text: "hello" } } });
  });

  it("toggles breakpoints and forgets those of nodes a loaded graph does not have", () => {
    s().load({ nodes: [{ id: "a", type: "text.value" }, { id: "b", type: "text.value" }], edges: [] });
    s().toggleBreakpoint("a");
    s().toggleBreakpoint("b");
    s().toggleBreakpoint("b");
    expect(s().breakpoints).toEqual({ a: true });
    s().load({ nodes: [{ id: "b", type: "text.value" }], edges: [] });
    expect(s().breakpoints).toEqual({});
  });
});

describe("undo and redo", () => {
  it("walks back and forth through changes", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().addNode("text.value", { x: 0, y: 0 });
    s().undo();
    expect(s().nodes.map((n) => n.id)).toEqual(["value_1"]);
    s().undo();
    expect(s().nodes).toEqual([]);
    s().redo();
    s().redo();
    expect(s().nodes.map((n) => n.id)).toEqual(["value_1", "value_2"]);
  });

  it("makes one step of quick edits to the same field", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    for (const text of ["h", "he", "hel", "hello"]) s().updateConfig("value_1", "text", text);
    expect(s().nodes[0].data.config.text).toBe("hello");
    s().undo();
    expect(s().nodes[0].data.config.text).toBe("");
  });

  it("drops the redo branch after a new change", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().undo();
    s().addNode("text.join", { x: 0, y: 0 });
    s().redo();
    expect(s().nodes.map((n) => n.id)).toEqual(["join_1"]);
  });
});

describe("copy and paste", () => {
  it("pastes the selection with new ids and the wires between them", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    s().addNode("text.join", { x: 300, y: 0 });
    s().connect({ source: "value_1", sourceHandle: "text", target: "join_1", targetHandle: "items" });
    store.setState({ nodes: s().nodes.map((n) => ({ ...n, selected: true })) });
    expect(s().copy()).toBe(2);
    expect(s().paste()).toBe(2);
    const ids = s().nodes.map((n) => n.id);
    expect(ids).toEqual(["value_1", "join_1", "value_2", "join_2"]);
    expect(s().nodes[2].position).toEqual({ x: 40, y: 40 });
    expect(s().edges.map((e) => `${e.source}->${e.target}`)).toEqual(["value_1->join_1", "value_2->join_2"]);
    expect(s().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["value_2", "join_2"]);
  });

  it("tells copies apart from their originals by label, and keeps labels of old graphs readable", () => {
    s().load({ nodes: [{ id: "a", type: "text.value", data: { label: "a" } }, { id: "b", type: "text.value", data: { label: "Greeting" } }], edges: [] });
    store.setState({ nodes: s().nodes.map((n) => ({ ...n, selected: true })) });
    s().copy();
    s().paste();
    s().paste();
    expect(s().nodes.map((n) => n.data.label)).toEqual(["a", "Greeting", "Text", "Greeting 2", "Text 2", "Greeting 3"]);
  });
});

describe("saving", () => {
  it("saves React Flow's shape without what only the screen needs", () => {
    s().load({
      schema_version: 1,
      nodes: [{ id: "a", type: "text.value", position: { x: 1, y: 2 }, data: { config: { text: "x" } }, extra: 7 }],
      edges: [],
      viewport: { x: 0, y: 0, zoom: 1 },
    });
    s().selectOnly("a");
    store.setState({ nodes: s().nodes.map((n) => ({ ...n, measured: { width: 10, height: 10 }, dragging: false })) });
    expect(s().toDefinition()).toEqual({
      schema_version: 1,
      nodes: [{ id: "a", type: "text.value", position: { x: 1, y: 2 }, data: { config: { text: "x" } }, extra: 7 }],
      edges: [],
    });
  });

  it("counts unsaved changes by revision", () => {
    s().load({ schema_version: 1, nodes: [], edges: [] });
    expect(s().revision).toBe(s().savedRevision);
    s().addNode("text.value", { x: 0, y: 0 });
    expect(s().revision).toBeGreaterThan(s().savedRevision);
    s().markSaved(s().revision);
    s().selectOnly(null);
    expect(s().revision).toBe(s().savedRevision);
  });
});

describe("problems and runs", () => {
  it("files problems under their nodes and keeps unchanged lists", () => {
    s().setProblems([
      { message: "missing required input", node_id: "a", port: "text" },
      { message: "cycle", node_id: null },
    ]);
    const first = s().problems.a;
    expect(first).toEqual(["text: missing required input"]);
    expect(s().graphProblems).toEqual(["cycle"]);
    s().setProblems([{ message: "missing required input", node_id: "a", port: "text" }]);
    expect(s().problems.a).toBe(first);
  });

  it("changes only the node an event is about", () => {
    s().startRun("run_1");
    s().applyRunDetail(detail("RUNNING", [["a", "PENDING", null], ["b", "PENDING", null]]));
    const b = s().runStates.b;
    s().applyEvent("node.started", "a", { attempt: 1 });
    expect(s().runStates.a.status).toBe("RUNNING");
    expect(s().runStates.b).toBe(b);
    s().applyEvent("node.succeeded", "a", { attempt: 1, duration_ms: 12 });
    expect(s().runStates.a).toMatchObject({ status: "SUCCEEDED", durationMs: 12 });
    s().applyEvent("run.completed", null, {});
    expect(s().run?.status).toBe("COMPLETED");
  });

  it("keeps node views whose state a fresh read did not change", () => {
    s().startRun("run_1");
    s().applyRunDetail(detail("RUNNING", [["a", "SUCCEEDED", { text: "hi" }], ["b", "RUNNING", null]]));
    const a = s().runStates.a;
    s().applyRunDetail(detail("COMPLETED", [["a", "SUCCEEDED", { text: "hi" }], ["b", "SUCCEEDED", { text: "x" }]]));
    expect(s().runStates.a).toBe(a);
    expect(s().runStates.b.outputs).toEqual({ text: "x" });
    expect(s().run).toMatchObject({ status: "COMPLETED", past: false });
  });

  it("opens a past run in place of the current one", () => {
    s().startRun("run_1");
    s().applyRunDetail({ ...detail("COMPLETED", [["a", "FAILED", null]]), id: "run_0" }, true);
    expect(s().run).toMatchObject({ id: "run_0", past: true });
    expect(Object.keys(s().runStates)).toEqual(["a"]);
  });
});

describe("auto-layout", () => {
  it("puts each node right of its parents", () => {
    s().addNode("text.value", { x: 500, y: 500 });
    s().addNode("text.join", { x: 0, y: 0 });
    s().connect({ source: "value_1", sourceHandle: "text", target: "join_1", targetHandle: "items" });
    s().autoLayout();
    const [value, join] = s().nodes;
    expect(value.position.x).toBeLessThan(join.position.x);
    s().undo();
    expect(s().nodes[0].position).toEqual({ x: 500, y: 500 });
  });
});
