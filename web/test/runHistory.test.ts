import { describe, expect, it } from "vitest";

import { inputsSummary } from "../src/editor/RunHistory";

describe("a run's inputs in one line", () => {
  it("names each input with its value, text in quotes", () => {
    expect(inputsSummary({ topic: "rivers", count: 3, deep: true })).toBe('topic: "rivers", count: 3, deep: true');
  });

  it("says when there are none", () => {
    expect(inputsSummary({})).toBe("no inputs");
    expect(inputsSummary(null)).toBe("no inputs");
  });

  it("cuts a long value and counts the inputs left out", () => {
    const line = inputsSummary({ story: "x".repeat(500), a: 1, b: 2 }, 60);
    expect(line.startsWith('story: "xxx')).toBe(true);
    expect(line).toContain("…");
    expect(line.endsWith("+2 more")).toBe(true);
    expect(line.length).toBeLessThan(80);
  });
});
