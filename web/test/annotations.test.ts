import { beforeEach, describe, expect, it } from "vitest";
import type { StoreApi } from "zustand/vanilla";

import { frameAround, insideGroup } from "../src/editor/annotations";
import { createEditorStore, type EditorState, type FlowNode } from "../src/editor/store";
import { SPECS } from "./fixtures";

let store: StoreApi<EditorState>;
const s = () => store.getState();

const NOTE = {
  id: "note_1",
  type: "note",
  position: { x: -300, y: 0 },
  width: 260,
  height: 140,
  data: { text: "Why this is here", label: "", color: "pink" },
};
const GROUP = { id: "group_1", type: "group", position: { x: -20, y: -60 }, width: 600, height: 300, data: { text: "", label: "Fetch", color: "blue" } };
const DEFINITION = {
  schema_version: 1,
  nodes: [
    { id: "a", type: "text.value", position: { x: 0, y: 0 }, data: { label: "a", config: { text: "hi" } } },
    { id: "b", type: "text.value", position: { x: 300, y: 0 }, data: { label: "b", config: { text: "yo" } } },
  ],
  edges: [],
  annotations: [NOTE, GROUP],
};

beforeEach(() => {
  store = createEditorStore();
  s().setNodeTypes(SPECS);
  s().load(DEFINITION);
});

describe("sticky notes and groups", () => {
  it("load beside the nodes (groups behind, notes on top) and save back unchanged", () => {
    expect(s().nodes.map((n) => n.id)).toEqual(["group_1", "a", "b", "note_1"]);
    const saved = s().toDefinition();
    expect(saved.nodes.map((n) => (n as FlowNode).id)).toEqual(["a", "b"]);
    expect(saved.annotations).toEqual([GROUP, NOTE]);
  });

  it("a group made with nodes selected frames them; undo takes it away", () => {
    s().onNodesChange([{ type: "select", id: "a", selected: true }, { type: "select", id: "b", selected: true }]);
    const id = s().addAnnotation("group", { x: 999, y: 999 });
    const group = s().nodes.find((n) => n.id === id)!;
    expect(id).toBe("group_2");
    expect(s().nodes[0].id).toBe(id);
    expect(insideGroup(group, s().nodes).sort()).toEqual(["a", "b"]);
    expect(s().revision).not.toBe(s().savedRevision);
    s().undo();
    expect(s().nodes.some((n) => n.id === id)).toBe(false);
    expect(s().revision).toBe(s().savedRevision);
  });

  it("a note's text is typed as one undo step, and saved", () => {
    const id = s().addAnnotation("note", { x: 10, y: 10 });
    s().updateAnnotation(id, { text: "H" });
    s().updateAnnotation(id, { text: "Hi" });
    expect((s().toDefinition().annotations as { id: string; data: { text: string } }[]).find((a) => a.id === id)!.data.text).toBe("Hi");
    s().undo();
    expect(s().nodes.find((n) => n.id === id)!.data.text).toBe("");
  });

  it("selecting a group selects what lies inside it, so a drag takes it along", () => {
    s().onNodesChange([
      { type: "dimensions", id: "a", dimensions: { width: 220, height: 90 } },
      { type: "dimensions", id: "b", dimensions: { width: 220, height: 90 } },
    ]);
    s().selectGroup("group_1");
    expect(s().nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["group_1", "a", "b"]);
  });

  it("auto-layout leaves notes and groups where they are", () => {
    s().autoLayout();
    expect(s().nodes.find((n) => n.id === "note_1")!.position).toEqual(NOTE.position);
  });

  it("frames nothing when nothing is given", () => {
    expect(frameAround([])).toBeNull();
  });
});
