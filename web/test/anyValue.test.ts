import { describe, expect, it } from "vitest";

import type { JsonSchema } from "../src/api/types";
import { convert, entriesOf, freshKey, kindOf, objectOfEntries, parseNumber, repeatedKeys, summary } from "../src/editor/anyValue";
import { fieldsFor, rowsEditable } from "../src/editor/schemaForm";

describe("values of any type", () => {
  it("knows the kind of every JSON value", () => {
    expect([null, undefined, "a", 3, false, [1], { a: 1 }].map(kindOf)).toEqual(["null", "null", "text", "number", "boolean", "list", "object"]);
  });

  it("keeps what it can when the kind changes", () => {
    expect(convert("3.5", "number")).toBe(3.5);
    expect(convert("abc", "number")).toBe(0);
    expect(convert(" Yes ", "boolean")).toBe(true);
    expect(convert(0, "boolean")).toBe(false);
    expect(convert(["a", 2], "text")).toBe("a, 2");
    expect(convert("x", "list")).toEqual(["x"]);
    expect(convert("", "list")).toEqual([]);
    expect(convert("", "object")).toEqual({});
    expect(convert(["a", "b"], "object")).toEqual({ 1: "a", 2: "b" });
    expect(convert({ a: 1, b: 2 }, "list")).toEqual([1, 2]);
    expect(convert("x", "object")).toEqual({ value: "x" });
    expect(convert({ a: 1 }, "null")).toBeNull();
    expect(convert(null, "text")).toBe("");
    const same = { a: 1 };
    expect(convert(same, "object")).toBe(same);
  });

  it("reads numbers as typed, refusing what is not one", () => {
    expect(parseNumber(" 1e3 ")).toBe(1000);
    expect(parseNumber("")).toBeNull();
    expect(parseNumber("12abc")).toBeNull();
    expect(parseNumber("Infinity")).toBeNull();
  });

  it("edits an object as rows: unnamed rows left out, a repeated name found, later wins", () => {
    const rows = [...entriesOf({ city: "Oslo" }), { key: "", value: 1 }, { key: "city", value: "Bergen" }];
    expect(objectOfEntries(rows)).toEqual({ city: "Bergen" });
    expect([...repeatedKeys(rows)]).toEqual(["city"]);
    expect(freshKey(entriesOf({ key: 1, key_2: 2 }))).toBe("key_3");
    expect(entriesOf(["not", "an object"])).toEqual([]);
  });

  it("summarizes folded values in a few characters", () => {
    expect(summary([1, 2, 3])).toBe("3 items");
    expect(summary({ city: 1, days: 2 })).toBe("{city, days}");
    expect(summary(null)).toBe("empty");
    expect(summary("x".repeat(100), 10)).toHaveLength(10);
  });
});

// Shapes as pydantic writes them (flowloom/nodes: ai.agent's tools, flow.condition, ai.llm).
const AGENT: JsonSchema = {
  $defs: {
    HttpTool: {
      description: "One HTTP request the model may make.",
      properties: {
        kind: { const: "http", type: "string" },
        name: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" },
        url: { type: "string", minLength: 1 },
        parameters: { type: "object", additionalProperties: true },
      },
      required: ["kind", "name", "url"],
      type: "object",
    },
    WorkflowTool: {
      description: "Another of your workflows.",
      properties: {
        kind: { const: "workflow", type: "string" },
        name: { type: "string" },
        workflow_id: { type: "string", minLength: 1, "x-refers-to": "workflow" },
      },
      required: ["kind", "name", "workflow_id"],
      type: "object",
    },
  },
  properties: {
    model: { type: "string", default: "", "x-model-kind": "chat" },
    operand: { default: null, description: "What the value is compared with." },
    tools: {
      type: "array",
      items: {
        oneOf: [{ $ref: "#/$defs/HttpTool" }, { $ref: "#/$defs/WorkflowTool" }],
        discriminator: { propertyName: "kind", mapping: { http: "#/$defs/HttpTool", workflow: "#/$defs/WorkflowTool" } },
      },
    },
    values: { type: "array", items: {} },
  },
  type: "object",
};

describe("fields of any type, tagged lists and references", () => {
  const fields = Object.fromEntries(fieldsFor(AGENT).map((f) => [f.key, f]));

  it("a value of no type is any value; a list of anything a list of typed values", () => {
    expect(fields.operand.kind).toBe("any");
    expect(fields.operand.shape).toBeUndefined();
    expect([fields.values.kind, fields.values.shape]).toEqual(["any", "list"]);
  });

  it("a list of tagged objects gets a form per item of its own shape", () => {
    const tools = fields.tools;
    expect(rowsEditable(tools)).toBe(true);
    expect(tools.variants!.tag).toBe("kind");
    expect(tools.variants!.options.map((o) => [o.value, o.label])).toEqual([["http", "HTTP"], ["workflow", "Workflow"]]);
    const http = tools.variants!.options[0];
    expect(http.fields.map((f) => [f.key, f.kind])).toEqual([["name", "string"], ["url", "string"], ["parameters", "any"]]);
    expect(http.description).toBe("One HTTP request the model may make.");
    const workflow = tools.variants!.options[1];
    expect(workflow.fields.find((f) => f.key === "workflow_id")!.refersTo).toBe("workflow");
  });

  it("reads the model and reference hints", () => {
    expect(fields.model.modelKind).toBe("chat");
  });
});
