import { beforeEach, describe, expect, it } from "vitest";
import type { StoreApi } from "zustand/vanilla";

import { connectableTypes, findNodes } from "../src/editor/finding";
import { createEditorStore, type EditorState } from "../src/editor/store";
import { SPECS } from "./fixtures";

let store: StoreApi<EditorState>;
const s = () => store.getState();
const byType = () => Object.fromEntries(SPECS.map((spec) => [spec.type, spec]));

beforeEach(() => {
  store = createEditorStore();
  s().setNodeTypes(SPECS);
});

describe("finding nodes on the canvas", () => {
  it("matches labels first, then ids, types and type names, in any case", () => {
    s().addNode("text.value", { x: 0, y: 0 }, { config: {}, label: "Greeting" });
    s().addNode("text.join", { x: 0, y: 0 }, { config: {}, label: "Say greeting" });
    s().addNode("image.resize", { x: 0, y: 0 });
    const labels = (query: string) => findNodes(s().nodes, byType(), query).map((n) => n.data.label);
    expect(labels("greet")).toEqual(["Greeting", "Say greeting"]);
    expect(labels("GREETING")).toEqual(["Greeting", "Say greeting"]);
    expect(labels("join")).toEqual(["Say greeting"]);
    expect(findNodes(s().nodes, byType(), "resize_1").map((n) => n.id)).toEqual(["resize_1"]);
    expect(labels("   ")).toEqual([]);
    expect(labels("nothing like it")).toEqual([]);
  });
});

describe("a wire dropped on empty space", () => {
  it("offers only the node types with a port that fits it", () => {
    const names = (type: "string" | "image", side: "source" | "target", query = "") =>
      connectableTypes(byType(), type, side, query).map((t) => t.type);
    // From a text output: what takes text (join's "any" list does; resize takes images only).
    expect(names("string", "source")).toEqual(["text.join"]);
    // A port of the very type first, then by name.
    expect(names("image", "source")).toEqual(["image.resize", "text.join"]);
    // Into an image input: what gives an image.
    expect(names("image", "target")).toEqual(["image.resize"]);
    expect(names("string", "target", "templ")).toEqual(["text.template"]);
  });

  it("adds the node wired to the port, replacing a single input's wire, in one undo step", () => {
    s().addNode("text.value", { x: 0, y: 0 });
    const joined = s().addConnectedNode("text.join", { x: 300, y: 0 }, { nodeId: "value_1", handle: "text", side: "source" });
    expect(joined).toBe("join_1");
    expect(s().edges.map((e) => [e.source, e.sourceHandle, e.target, e.targetHandle])).toEqual([["value_1", "text", "join_1", "items"]]);
    expect(s().nodes.find((n) => n.id === "join_1")?.selected).toBe(true);

    s().addNode("image.resize", { x: 0, y: 200 });
    s().addNode("image.resize", { x: 300, y: 200 });
    s().connect({ source: "resize_1", sourceHandle: "image", target: "resize_2", targetHandle: "image" });
    const feeding = s().addConnectedNode("image.resize", { x: 0, y: 400 }, { nodeId: "resize_2", handle: "image", side: "target" });
    expect(feeding).toBe("resize_3");
    expect(s().edges.filter((e) => e.target === "resize_2").map((e) => e.source)).toEqual(["resize_3"]);
    s().undo();
    expect(s().nodes.some((n) => n.id === "resize_3")).toBe(false);
    expect(s().edges.filter((e) => e.target === "resize_2").map((e) => e.source)).toEqual(["resize_1"]);

    // No port of the type fits: nothing is added.
    const count = s().nodes.length;
    expect(s().addConnectedNode("image.resize", { x: 0, y: 0 }, { nodeId: "value_1", handle: "text", side: "source" })).toBeNull();
    expect(s().nodes.length).toBe(count);
  });
});
