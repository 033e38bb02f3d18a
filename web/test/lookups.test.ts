import { describe, expect, it } from "vitest";

import { describeImage, imagesIn, isImageRef } from "../src/api/images";
import { fieldFor, fieldsFor, integrationIdOf, lookupFor } from "../src/editor/schemaForm";
import { parseArgs, parsePairs } from "../src/pages/integrationForm";
import { attemptsOf, problemLine } from "../src/pages/Generate";
import { ApiError } from "../src/api/client";

// The shapes pydantic gives ai.llm's and mcp.tool's settings.
const LLM_SCHEMA = {
  type: "object",
  properties: {
    model: { type: "string", default: "" },
    credential: { anyOf: [{ type: "string", minLength: 1, maxLength: 200 }, { type: "null" }], default: null },
  },
};
const MCP_SCHEMA = {
  type: "object",
  $defs: { McpInlineServer: { type: "object", properties: { transport: { type: "string" } } } },
  properties: {
    server: { anyOf: [{ $ref: "#/$defs/McpInlineServer" }, { type: "string" }] },
    tool: { type: "string", minLength: 1, maxLength: 200 },
    arguments: { type: "object" },
  },
  required: ["server", "tool"],
};

describe("what a field offers", () => {
  it("offers credentials for a nullable string named credential", () => {
    const fields = fieldsFor(LLM_SCHEMA);
    expect(fields.map((f) => lookupFor("ai.llm", f))).toEqual([null, "credentials"]);
    expect(lookupFor("http.request", fieldFor("auth_credential", { type: "string" }, {}, false))).toBe("credentials");
  });

  it("offers nothing for a credential field that is not text", () => {
    expect(lookupFor("x", fieldFor("credential", { type: "object" }, {}, false))).toBeNull();
    expect(lookupFor("x", fieldFor("credentials", { type: "string" }, {}, false))).toBeNull();
  });

  it("offers integrations and then their tools in mcp.tool only", () => {
    const fields = fieldsFor(MCP_SCHEMA);
    expect(fields.map((f) => lookupFor("mcp.tool", f))).toEqual(["integrations", "mcp-tools", null]);
    expect(fields.map((f) => lookupFor("other.tool", f))).toEqual([null, null, null]);
  });

  it("tells an integration id from a server written inline", () => {
    expect(integrationIdOf("intg_123")).toBe("intg_123");
    expect(integrationIdOf({ transport: "stdio", command: "x" })).toBeNull();
    expect(integrationIdOf("  ")).toBeNull();
    expect(integrationIdOf(undefined)).toBeNull();
  });
});

describe("image outputs", () => {
  const sha = "a".repeat(64);
  it("recognises image references, alone or in a list", () => {
    const ref = { sha256: sha, content_type: "image/png", width: 80, height: 60, size: 1300 };
    expect(isImageRef(ref)).toBe(true);
    expect(isImageRef({ sha256: "short" })).toBe(false);
    expect(isImageRef({ sha256: sha, content_type: "application/pdf" })).toBe(false);
    expect(isImageRef("text")).toBe(false);
    expect(imagesIn([ref, "x", ref])).toEqual([ref, ref]);
    expect(imagesIn({ a: 1 })).toEqual([]);
    expect(describeImage(ref)).toBe("image/png 80×60 · 1.3 kB");
  });
});

describe("the integration form", () => {
  it("reads env and header lines", () => {
    expect(parsePairs("A=1\n# note\n\nB = two=2", "=")).toEqual({ ok: true, value: { A: "1", B: "two=2" } });
    expect(parsePairs("Authorization: Bearer x", ":")).toEqual({ ok: true, value: { Authorization: "Bearer x" } });
    expect(parsePairs("A=1\nnope", "=")).toEqual({ ok: false, error: "line 2: write it as name=value" });
    expect(parsePairs("A=1\nA=2", "=")).toEqual({ ok: false, error: 'line 2: "A" is given twice' });
    expect(parseArgs(" server.py \n\n--flag value\n")).toEqual(["server.py", "--flag value"]);
  });
});

describe("agents and generation", () => {
  it("reads the attempts of a 422 and says where each problem is", () => {
    const error = new ApiError(422, {
      detail: "still invalid",
      problems: [{ message: "unknown node type", node_id: "n1" }],
      attempts: [{ id: "g1", attempt: 1, outcome: "invalid", problems: [], tokens_in: 1, tokens_out: 2 }],
    });
    expect(attemptsOf(error).map((a) => a.outcome)).toEqual(["invalid"]);
    expect(attemptsOf(new Error("x"))).toEqual([]);
    expect(error.message).toBe("still invalid — node n1: unknown node type");
    expect(problemLine({ message: "m", node_id: "a", port: "p" })).toBe("node a, port p: m");
  });
});
