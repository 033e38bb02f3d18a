import { beforeEach, describe, expect, it } from "vitest";
import type { StoreApi } from "zustand/vanilla";

import { createEditorStore, type EditorState } from "../src/editor/store";
import { SPECS } from "./fixtures";

let store: StoreApi<EditorState>;
const s = () => store.getState();

beforeEach(() => {
  store = createEditorStore();
  s().setNodeTypes(SPECS);
  s().load({
    schema_version: 1,
    nodes: [{ id: "a", type: "text.value", position: { x: 0, y: 0 }, data: { label: "a", config: { text: "hi" } } }],
    edges: [],
  });
});

describe("pinned outputs", () => {
  it("pin as data.pinned (a copy), saved with the node, undone in one step", () => {
    const outputs = { text: "hi" };
    s().pin("a", outputs);
    outputs.text = "changed later";
    const saved = s().toDefinition().nodes[0] as { data: { pinned?: unknown } };
    expect(saved.data.pinned).toEqual({ text: "hi" });
    expect(s().revision).not.toBe(s().savedRevision);
    s().undo();
    expect(s().nodes[0].data.pinned).toBeUndefined();
    expect(s().revision).toBe(s().savedRevision);
  });

  it("unpins", () => {
    s().pin("a", { text: "x" });
    s().pin("a", null);
    expect("pinned" in s().nodes[0].data).toBe(false);
  });
});
