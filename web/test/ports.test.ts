import { describe, expect, it } from "vitest";

import { layeredLayout, READABLE_ZOOM, viewportToFit } from "../src/editor/layout";
import { compatible, portsFor } from "../src/editor/ports";
import { SPECS } from "./fixtures";

describe("port compatibility (graph/ports.py)", () => {
  it("lets any through both ways and widens integer and image", () => {
    expect(compatible("any", "image")).toBe(true);
    expect(compatible("string", "any")).toBe(true);
    expect(compatible("integer", "number")).toBe(true);
    expect(compatible("number", "integer")).toBe(false);
    expect(compatible("image", "object")).toBe(true);
    expect(compatible("string", "image")).toBe(false);
  });
});

describe("dynamic ports", () => {
  const template = SPECS.find((s) => s.type === "text.template")!;

  it("gives a template one any-typed input per variable", () => {
    expect(portsFor(template, { variables: ["a", "b"] }).inputs.map((p) => [p.name, p.type])).toEqual([
      ["a", "any"],
      ["b", "any"],
    ]);
  });

  it("gives a manual trigger one output per field, typed", () => {
    const trigger = { ...template, type: "trigger.manual", inputs: [], outputs: [] };
    const ports = portsFor(trigger, { fields: [{ name: "n", type: "integer" }, { name: "" }, { name: "s" }] });
    expect(ports.outputs.map((p) => [p.name, p.type])).toEqual([
      ["n", "integer"],
      ["s", "string"],
    ]);
  });

  it("gives an unknown dynamic type one input per variable, keeping its own ports", () => {
    const tool = { ...template, type: "mcp.tool", inputs: [], outputs: template.outputs };
    expect(portsFor(tool, { variables: ["city"] }).inputs.map((p) => p.name)).toEqual(["city"]);
    expect(portsFor(tool, {}).outputs).toBe(template.outputs);
  });

  it("keeps the document's ports for static types", () => {
    const value = SPECS.find((s) => s.type === "text.value")!;
    expect(portsFor(value, { anything: 1 }).outputs).toBe(value.outputs);
  });
});

describe("layered layout", () => {
  it("places a chain left to right and siblings in one column", () => {
    const at = layeredLayout(
      [{ id: "c" }, { id: "a" }, { id: "b1" }, { id: "b2" }],
      [
        { source: "a", target: "b1" },
        { source: "a", target: "b2" },
        { source: "b1", target: "c" },
        { source: "b2", target: "c" },
      ],
    );
    expect(at.get("a")!.x).toBe(0);
    expect(at.get("b1")!.x).toBe(at.get("b2")!.x);
    expect(at.get("b1")!.y).not.toBe(at.get("b2")!.y);
    expect(at.get("c")!.x).toBeGreaterThan(at.get("b1")!.x);
  });

  it("still places every node of a cycle", () => {
    const at = layeredLayout([{ id: "a" }, { id: "b" }], [
      { source: "a", target: "b" },
      { source: "b", target: "a" },
    ]);
    expect(at.size).toBe(2);
  });
});

describe("the viewport a graph opens at", () => {
  const box = (x: number, y: number) => ({ position: { x, y }, measured: { width: 200, height: 100 } });

  it("fits a small graph, never beyond zoom 1, centred", () => {
    const view = viewportToFit([box(0, 0), box(300, 0)], 1000, 600)!;
    expect(view.zoom).toBe(1);
    expect(view.x).toBe((1000 - 500) / 2);
  });

  it("opens a big graph at a readable zoom on its top-left corner", () => {
    const nodes = Array.from({ length: 500 }, (_, i) => box((i % 25) * 300, Math.floor(i / 25) * 160));
    expect(viewportToFit(nodes, 760, 700)!.zoom).toBeLessThan(0.2);
    expect(viewportToFit(nodes, 760, 700, 40, READABLE_ZOOM)).toEqual({ zoom: 0.5, x: 40, y: 40 });
  });

  it("keeps the top clear for the find box", () => {
    const view = viewportToFit([box(0, 0), box(0, 500)], 1000, 700, 40, 0, 64)!;
    expect(view.zoom).toBeCloseTo((700 - 64 - 40) / 600);
    expect(view.y).toBeCloseTo(64);
    const nodes = Array.from({ length: 500 }, (_, i) => box((i % 25) * 300, Math.floor(i / 25) * 160));
    expect(viewportToFit(nodes, 760, 700, 40, READABLE_ZOOM, 64)).toEqual({ zoom: 0.5, x: 40, y: 64 });
  });

  it("has nothing to fit on an empty canvas", () => {
    expect(viewportToFit([], 760, 700)).toBeNull();
  });
});
