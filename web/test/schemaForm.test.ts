import { describe, expect, it } from "vitest";

import type { JsonSchema } from "../src/api/types";
import { defaultsFor, fieldsFor, fromInput, toInput } from "../src/editor/schemaForm";

// Shapes as pydantic writes them (flowloom/nodes: ai.llm, trigger.manual, http.request).
const LLM: JsonSchema = {
  type: "object",
  properties: {
    provider: { default: "openai", enum: ["openai", "gemini", "anthropic"], type: "string" },
    user_message: { default: "", type: "string" },
    variables: { items: { type: "string" }, type: "array" },
    temperature: { anyOf: [{ maximum: 2, minimum: 0, type: "number" }, { type: "null" }], default: null },
    max_tokens: { anyOf: [{ maximum: 1000000, minimum: 1, type: "integer" }, { type: "null" }], default: null },
    response_schema: { anyOf: [{ additionalProperties: true, type: "object" }, { type: "null" }], default: null },
  },
};

const TRIGGER: JsonSchema = {
  $defs: {
    TriggerField: {
      properties: {
        name: { maxLength: 100, minLength: 1, pattern: "^[A-Za-z_][A-Za-z0-9_-]*$", type: "string" },
        type: { default: "string", enum: ["any", "string", "number"], type: "string" },
        required: { default: false, type: "boolean" },
      },
      required: ["name"],
      type: "object",
    },
  },
  properties: { fields: { items: { $ref: "#/$defs/TriggerField" }, type: "array" } },
  type: "object",
};

const HTTP: JsonSchema = {
  properties: {
    url: { minLength: 1, type: "string", description: "An http or https URL." },
    timeout_s: { default: 30.0, exclusiveMinimum: 0, maximum: 300, type: "number" },
    follow_redirects: { default: true, type: "boolean" },
    body: { default: null },
  },
  required: ["url"],
  type: "object",
};

describe("fields from a schema", () => {
  it("maps each property to an input of the right kind", () => {
    const kinds = Object.fromEntries(fieldsFor(LLM).map((f) => [f.key, f.kind]));
    expect(kinds).toEqual({
      provider: "enum",
      user_message: "text",
      variables: "string-list",
      temperature: "number",
      max_tokens: "integer",
      response_schema: "any",
    });
  });

  it("reads optional values as nullable, with their bounds", () => {
    const temperature = fieldsFor(LLM).find((f) => f.key === "temperature")!;
    expect(temperature).toMatchObject({ nullable: true, minimum: 0, maximum: 2, label: "Temperature" });
  });

  it("follows $ref into a list of objects", () => {
    const [fields] = fieldsFor(TRIGGER);
    expect(fields.kind).toBe("object-list");
    expect(fields.itemFields!.map((f) => [f.key, f.kind, f.required])).toEqual([
      ["name", "string", true],
      ["type", "enum", false],
      ["required", "boolean", false],
    ]);
  });

  it("marks required fields and starts from the defaults", () => {
    const fields = fieldsFor(HTTP);
    expect(fields.find((f) => f.key === "url")!.required).toBe(true);
    expect(defaultsFor(fields)).toEqual({ timeout_s: 30, follow_redirects: true, body: null });
  });
});

describe("typed text back to values", () => {
  const field = (schema: JsonSchema, key: string) => fieldsFor(schema).find((f) => f.key === key)!;

  it("parses numbers and enforces the bounds", () => {
    const timeout = field(HTTP, "timeout_s");
    expect(fromInput(timeout, "12.5")).toEqual({ ok: true, value: 12.5 });
    expect(fromInput(timeout, "0")).toEqual({ ok: false, error: "must be more than 0" });
    expect(fromInput(timeout, "301")).toEqual({ ok: false, error: "must be at most 300" });
    expect(fromInput(timeout, "soon")).toEqual({ ok: false, error: "must be a number" });
    expect(fromInput(field(LLM, "max_tokens"), "1.5")).toEqual({ ok: false, error: "must be a whole number" });
  });

  it("turns an empty optional number into null", () => {
    expect(fromInput(field(LLM, "temperature"), "")).toEqual({ ok: true, value: null });
  });

  it("checks string lengths", () => {
    expect(fromInput(field(HTTP, "url"), "")).toEqual({ ok: false, error: "must not be empty" });
    expect(fromInput(field(HTTP, "url"), "https://example.org")).toEqual({ ok: true, value: "https://example.org" });
  });

  it("splits lists at commas and round-trips them", () => {
    const variables = field(LLM, "variables");
    const parsed = fromInput(variables, " name, city ,,");
    expect(parsed).toEqual({ ok: true, value: ["name", "city"] });
    expect(toInput(variables, ["name", "city"])).toBe("name, city");
  });

  it("reads JSON and says where it is broken", () => {
    const schema = field(LLM, "response_schema");
    expect(fromInput(schema, '{"type": "object"}')).toEqual({ ok: true, value: { type: "object" } });
    const broken = fromInput(schema, "{type");
    expect(broken.ok).toBe(false);
    expect(!broken.ok && broken.error).toMatch(/^is not valid JSON/);
  });

  it("accepts only the enum's options", () => {
    const provider = field(LLM, "provider");
    expect(fromInput(provider, "gemini")).toEqual({ ok: true, value: "gemini" });
    expect(fromInput(provider, "mistral").ok).toBe(false);
  });

  it("requires a JSON list for a list of objects", () => {
    const fields = field(TRIGGER, "fields");
    expect(fromInput(fields, '{"name": "x"}')).toEqual({ ok: false, error: "must be a JSON list" });
  });
});
