import { describe, expect, it } from "vitest";

import { fieldsFor, objectOf, pairsOf, rowsEditable, singular } from "../src/editor/schemaForm";

const HTTP = {
  type: "object",
  properties: {
    headers: { type: "object", additionalProperties: { type: "string" }, title: "Headers" },
    arguments: { type: "object", additionalProperties: true },
  },
};

const TRIGGER = {
  type: "object",
  $defs: {
    TriggerField: {
      type: "object",
      required: ["name"],
      properties: {
        name: { type: "string", minLength: 1 },
        type: { type: "string", enum: ["string", "number"], default: "string" },
        required: { type: "boolean", default: false },
      },
    },
  },
  properties: { fields: { type: "array", items: { $ref: "#/$defs/TriggerField" } } },
};

describe("structured settings", () => {
  it("a map of text to text is a key/value table; a map of anything an object of typed values", () => {
    const [headers, args] = fieldsFor(HTTP);
    expect(headers.kind).toBe("key-value");
    expect([args.kind, args.shape]).toEqual(["any", "object"]);
  });

  it("a list of objects gets a form per item", () => {
    const [fields] = fieldsFor(TRIGGER);
    expect(rowsEditable(fields)).toBe(true);
    expect(fields.itemFields!.map((f) => [f.key, f.kind, f.required])).toEqual([
      ["name", "string", true],
      ["type", "enum", false],
      ["required", "boolean", false],
    ]);
  });

  it("rows and objects round trip; nameless rows are left out, a later row wins", () => {
    expect(pairsOf({ Accept: "text/html", "X-Id": "7" })).toEqual([
      { key: "Accept", value: "text/html" },
      { key: "X-Id", value: "7" },
    ]);
    expect(objectOf([{ key: " Accept ", value: "a" }, { key: "", value: "lost" }, { key: "Accept", value: "b" }])).toEqual({ Accept: "b" });
    expect(pairsOf(null)).toEqual([]);
  });

  it("names one item of a list", () => {
    expect(singular("Fields")).toBe("field");
    expect(singular("Cases")).toBe("case");
    expect(singular("Headers")).toBe("header");
    expect(singular("Input mapping")).toBe("input mapping");
  });
});

describe("objects of known fields", () => {
  const MCP = {
    type: "object",
    $defs: {
      Inline: {
        type: "object",
        required: ["transport"],
        properties: {
          transport: { type: "string", enum: ["stdio", "http"] },
          args: { type: "array", items: { type: "string" } },
          env: { type: "object", additionalProperties: { type: "string" } },
        },
      },
      Auth: { type: "object", properties: { credential: { anyOf: [{ type: "string" }, { type: "null" }] } } },
    },
    properties: {
      server: { anyOf: [{ $ref: "#/$defs/Inline" }, { type: "string" }] },
      auth: { anyOf: [{ $ref: "#/$defs/Auth" }, { type: "null" }], default: null },
    },
  };

  it("an id-or-inline value keeps its JSON field and offers a form for the inline shape", () => {
    const [server] = fieldsFor(MCP);
    expect(server.kind).toBe("json");
    expect(server.objectVariant?.kind).toBe("object");
    expect(server.objectVariant?.itemFields?.map((f) => [f.key, f.kind])).toEqual([
      ["transport", "enum"],
      ["args", "string-list"],
      ["env", "key-value"],
    ]);
  });

  it("an optional object is a group of fields that may be left out", () => {
    const [, auth] = fieldsFor(MCP);
    expect(auth.kind).toBe("object");
    expect(auth.nullable).toBe(true);
    expect(auth.itemFields?.[0].key).toBe("credential");
  });
});
