import { beforeEach, describe, expect, it } from "vitest";
import type { StoreApi } from "zustand/vanilla";

import { formatCost } from "../src/components/format";
import { iconPath, ICONS } from "../src/components/NodeIcon";
import { richPieces } from "../src/components/RichText";
import { around, besideSelection, freeSpot, piledUp, wiredNodeSpot } from "../src/editor/placement";
import { fieldLabel, plainMessage, problemText } from "../src/editor/problems";
import { fieldsFor, fromInput, spacesOnly, toInput } from "../src/editor/schemaForm";
import { createEditorStore, type EditorState } from "../src/editor/store";
import { SPECS } from "./fixtures";

let store: StoreApi<EditorState>;
const s = () => store.getState();
const dirty = () => s().revision !== s().savedRevision;

beforeEach(() => {
  store = createEditorStore();
  s().setNodeTypes(SPECS);
  s().load({
    schema_version: 1,
    nodes: [{ id: "a", type: "text.value", position: { x: 0, y: 0 }, data: { label: "A", config: { text: "hi" } } }],
    edges: [],
  });
});

describe("unsaved changes", () => {
  it("undoing every edit back to the saved graph leaves nothing to save", () => {
    s().updateLabel("a", "B");
    s().updateConfig("a", "text", "yo");
    expect(dirty()).toBe(true);
    s().undo();
    expect(dirty()).toBe(true);
    s().undo();
    expect(dirty()).toBe(false);
  });

  it("after a save, undo to that save is clean and undo past it is not", () => {
    s().updateLabel("a", "B");
    s().markSaved(s().revision);
    s().updateLabel("a", "C");
    s().undo();
    expect(dirty()).toBe(false);
    s().undo();
    expect(dirty()).toBe(true);
  });

  it("a selection does not count as a change", () => {
    s().updateLabel("a", "B");
    s().selectOnly("a");
    s().undo();
    expect(dirty()).toBe(false);
  });
});

describe("the results of a run", () => {
  it("leave the canvas when the graph changes after the run finished", () => {
    s().startRun("run_1");
    s().applyEvent("run.completed", null, {});
    s().updateLabel("a", "B");
    expect(s().run).toBeNull();
    expect(s().runStates).toEqual({});
  });

  it("stay while the run is going", () => {
    s().startRun("run_1");
    s().applyEvent("run.started", null, {});
    s().updateLabel("a", "B");
    expect(s().run?.status).toBe("RUNNING");
  });

  it("stay when nodes are only selected", () => {
    s().startRun("run_1");
    s().applyEvent("run.completed", null, {});
    s().selectOnly("a");
    expect(s().run?.status).toBe("COMPLETED");
  });
});

describe("notices", () => {
  it("a refused connection's error goes once a connection succeeds", () => {
    s().addNode("text.value", { x: 0, y: 200 });
    s().addNode("text.join", { x: 300, y: 0 });
    s().addNode("image.resize", { x: 300, y: 200 });
    expect(s().connect({ source: "value_1", sourceHandle: "text", target: "resize_1", targetHandle: "image" })).toBe(false);
    expect(s().notice?.kind).toBe("error");
    expect(s().connect({ source: "value_1", sourceHandle: "text", target: "join_1", targetHandle: "items" })).toBe(true);
    expect(s().notice).toBeNull();
  });

  it("a success of another topic leaves an error standing", () => {
    s().notify("error", "Not saved: conflict", "save");
    s().resolve("connect");
    expect(s().notice?.text).toBe("Not saved: conflict");
  });

  it("an error about the graph goes when another version is loaded", () => {
    s().notify("error", "cycle: a -> b -> a", "run");
    s().load({ schema_version: 1, nodes: [], edges: [] });
    expect(s().notice).toBeNull();
  });
});

describe("problems", () => {
  it("name the field in plain words, and are filed under it", () => {
    s().setProblems([
      { message: "String should have at least 1 character", node_id: "a", field: "text" },
      { message: "Field required", node_id: "a", field: "fields.0.name" },
    ]);
    expect(s().problems.a).toEqual(["Text: must not be empty", "Fields › item 1 › name: is required"]);
    expect(s().fieldProblems.a.text).toEqual(["Text: must not be empty"]);
    expect(s().fieldProblems.a.fields).toEqual(["Fields › item 1 › name: is required"]);
  });

  it("keep pydantic's words they have no plainer form for", () => {
    expect(plainMessage("invalid JMESPath")).toBe("invalid JMESPath");
    expect(plainMessage("Input should be greater than or equal to 1")).toBe("must be at least 1");
    expect(fieldLabel("max_items")).toBe("Max items");
    expect(problemText({ message: "missing required input", node_id: "a", port: "text" })).toBe("text: missing required input");
  });
});

describe("placement", () => {
  const at = (x: number, y: number) => ({ position: { x, y } });

  it("finds nodes piled on one spot, and leaves a laid-out graph alone", () => {
    expect(piledUp([at(0, 0), at(0, 0), at(0, 0)])).toBe(true);
    expect(piledUp([at(0, 0), at(300, 0), at(600, 0)])).toBe(false);
    expect(piledUp([at(0, 0), at(200, 60)])).toBe(false);
    expect(piledUp([{ position: null }])).toBe(true);
  });

  it("puts a new node where it covers no other", () => {
    const nodes = [at(0, 0)];
    const first = freeSpot(nodes, { x: 0, y: 0 });
    expect(piledUp([...nodes, { position: first }])).toBe(false);
    const second = freeSpot([...nodes, { position: first }], { x: 0, y: 0 });
    expect(second).not.toEqual(first);
    expect(piledUp([...nodes, { position: first }, { position: second }])).toBe(false);
    expect(freeSpot([], { x: 5, y: 7 })).toEqual({ x: 5, y: 7 });
  });

  it("wants a node added from the palette right of the one node selected", () => {
    const middle = { x: 500, y: 300 };
    const chosen = { position: { x: 100, y: 40 }, measured: { width: 240, height: 80 }, selected: true, type: "text.value" };
    expect(besideSelection([at(0, 0), chosen], middle)).toEqual({ x: 420, y: 40 });
    // Nothing selected, two selected, or a note: the middle of the canvas.
    expect(besideSelection([at(0, 0)], middle)).toEqual(middle);
    expect(besideSelection([chosen, { ...chosen, position: { x: 0, y: 400 } }], middle)).toEqual(middle);
    expect(besideSelection([{ ...chosen, type: "note" }], middle)).toEqual(middle);
  });

  it("puts a node added at the end of a dropped wire beside it, whole on the canvas", () => {
    const canvas = { width: 760, height: 715 };
    // Right of the end of a wire from an output, left of the end of one into an input.
    expect(wiredNodeSpot({ x: 300, y: 300 }, "source", canvas, 1)).toEqual({ x: 300, y: 260 });
    expect(wiredNodeSpot({ x: 300, y: 300 }, "target", canvas, 1)).toEqual({ x: 60, y: 260 });
    expect(wiredNodeSpot({ x: 300, y: 300 }, "source", canvas, 0.5)).toEqual({ x: 300, y: 280 });
    // Dropped at the right edge (or past it, clamped to it): moved left until the node fits.
    expect(wiredNodeSpot({ x: 760, y: 300 }, "source", canvas, 1)).toEqual({ x: 504, y: 260 });
    expect(wiredNodeSpot({ x: 759, y: 300 }, "source", canvas, 0.5)).toEqual({ x: 624, y: 280 });
    // At the left edge, the top and the bottom.
    expect(wiredNodeSpot({ x: 100, y: 10 }, "target", canvas, 1)).toEqual({ x: 16, y: 16 });
    expect(wiredNodeSpot({ x: 100, y: 715 }, "source", canvas, 1)).toEqual({ x: 100, y: 599 });
    // A canvas too small for the node: its top-left corner stays in sight.
    expect(wiredNodeSpot({ x: 100, y: 100 }, "source", { width: 200, height: 80 }, 1)).toEqual({ x: 16, y: 16 });
  });

  it("spans a box and a node, measured or not", () => {
    const box = { x: 300, y: 0, width: 220, height: 90 };
    expect(around(box, { position: { x: 0, y: -20 }, measured: { width: 100, height: 50 } })).toEqual({ x: 0, y: -20, width: 520, height: 110 });
    expect(around(box, { position: { x: 400, y: 10 } })).toEqual({ x: 300, y: 0, width: 320, height: 100 });
  });
});

describe("text shown to people", () => {
  it("formats costs without exponents", () => {
    expect(formatCost("0E-9")).toBe("$0.00");
    expect(formatCost("1.5E-7")).toBe("$0.00000015");
    expect(formatCost("0.000123000")).toBe("$0.00012");
    expect(formatCost("2.5")).toBe("$2.50");
    expect(formatCost(null)).toBe("—");
  });

  it("sets code marks of help texts as code", () => {
    expect(richPieces("Route to ``true`` or `false`.")).toEqual([
      { code: false, text: "Route to " },
      { code: true, text: "true" },
      { code: false, text: " or " },
      { code: true, text: "false" },
      { code: false, text: "." },
    ]);
    expect(richPieces("``people[?age > `30`].name``")).toEqual([{ code: true, text: "people[?age > `30`].name" }]);
  });

  it("shows a separator that is a line break as \\n, and reads escapes back", () => {
    const [separator] = fieldsFor({ type: "object", properties: { separator: { type: "string", default: "\n" } } });
    expect(separator.escapes).toBe(true);
    expect(toInput(separator, "\n")).toBe("\\n");
    expect(fromInput(separator, "\\t")).toEqual({ ok: true, value: "\t" });
    expect(fromInput(separator, "")).toEqual({ ok: true, value: "" });
    expect(fromInput(separator, ", ")).toEqual({ ok: true, value: ", " });
  });

  it("says in words what a box of only spaces holds", () => {
    expect(spacesOnly(" ")).toBe("1 space");
    expect(spacesOnly("   ")).toBe("3 spaces");
    expect(spacesOnly("")).toBeNull();
    expect(spacesOnly(", ")).toBeNull();
    expect(spacesOnly(" \t")).toBeNull();
  });

  it("draws a named icon, a plugin's own path, or its category's icon", () => {
    expect(iconPath("scissors", "ACTION")).toBe(ICONS.scissors);
    expect(iconPath("M1 1h22v22H1z", "ACTION")).toBe("M1 1h22v22H1z");
    expect(iconPath("no-such-icon", "TRIGGER")).toBe(ICONS.play);
    expect(iconPath("", undefined)).toBe(ICONS.box);
  });
});

describe("error banners", () => {
  it("do not repeat the detail an item only restates", async () => {
    const { describeProblem } = await import("../src/api/client");
    expect(describeProblem("model not found", [{ field: "provider", message: "model not found" }])).toBe("model not found");
    expect(describeProblem("invalid", [{ field: "name", message: "too long" }])).toBe("invalid — name: too long");
  });
});

describe("problems from the server", () => {
  const cycle = [{ node_id: null, message: "the graph has a cycle" }];

  it("an answer about the graph as it is now is shown", () => {
    const asked = s().revision;
    s().setProblems(cycle, asked);
    expect(s().graphProblems).toHaveLength(1);
  });

  it("a slow answer about a graph replaced meanwhile (a restored version) is ignored", () => {
    const asked = s().revision;
    s().load({ schema_version: 1, nodes: [], edges: [] });
    s().setProblems(cycle, asked);
    expect(s().graphProblems).toHaveLength(0);
  });

  it("a slow answer about a graph edited meanwhile is ignored; the edit is checked anew", () => {
    const asked = s().revision;
    s().updateLabel("a", "B");
    s().setProblems(cycle, asked);
    expect(s().graphProblems).toHaveLength(0);
  });
});
