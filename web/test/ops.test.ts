import { describe, expect, it } from "vitest";

import { formatDuration } from "../src/pages/Runs";
import { inputFields } from "../src/pages/Triggers";

describe("formatDuration", () => {
  it("reads as a person would say it", () => {
    expect(formatDuration(null)).toBe("—");
    expect(formatDuration(12)).toBe("12 ms");
    expect(formatDuration(4_250)).toBe("4.3 s");
    expect(formatDuration(125_000)).toBe("2 min 5 s");
  });
});

describe("inputFields", () => {
  it("collects the fields of every manual trigger, and nothing else", () => {
    const definition = {
      nodes: [
        { id: "in", type: "trigger.manual", data: { config: { fields: [{ name: "who", type: "string" }, { nope: 1 }] } } },
        { id: "more", type: "trigger.manual", data: { config: { fields: [{ name: "n", type: "number" }] } } },
        { id: "t", type: "text.template", data: { config: { fields: [{ name: "not a trigger" }] } } },
      ],
    };
    expect(inputFields(definition).map((f) => f.name)).toEqual(["who", "n"]);
    expect(inputFields(null)).toEqual([]);
    expect(inputFields({ nodes: "broken" })).toEqual([]);
  });
});
