import { describe, expect, it } from "vitest";

import { PagedList, type PageOf } from "../src/components/usePaged";

function pages(all: number[], size: number) {
  const asked: (string | undefined)[] = [];
  const load = async (cursor: string | undefined): Promise<PageOf<number>> => {
    asked.push(cursor);
    const start = cursor ? Number(cursor) : 0;
    const next = start + size < all.length ? String(start + size) : null;
    return { items: all.slice(start, start + size), next_cursor: next };
  };
  return { load, asked };
}

describe("a cursor-paged list", () => {
  it("walks the pages and knows when there are no more", async () => {
    const { load, asked } = pages([1, 2, 3, 4, 5], 2);
    const list = new PagedList(load, () => {});
    await list.fetch();
    expect(list.items).toEqual([1, 2]);
    await list.fetch(true);
    await list.fetch(true);
    expect(list.items).toEqual([1, 2, 3, 4, 5]);
    expect(list.cursor).toBeNull();
    await list.fetch(true);
    expect(asked).toEqual([undefined, "2", "4"]);
    expect(list.loaded).toBe(true);
  });

  it("drops a slow answer to an older query", async () => {
    let release: (page: PageOf<string>) => void = () => {};
    const slow = new Promise<PageOf<string>>((resolve) => (release = resolve));
    let calls = 0;
    const list = new PagedList<string>(async () => (++calls === 1 ? slow : { items: ["fresh"], next_cursor: null }), () => {});
    const first = list.fetch();
    await list.fetch();
    release({ items: ["stale"], next_cursor: "x" });
    await first;
    expect(list.items).toEqual(["fresh"]);
    expect(list.cursor).toBeNull();
  });

  it("says what failed, and a failed first page shows nothing", async () => {
    const list = new PagedList<number>(async () => {
      throw new Error("the server is away");
    }, () => {});
    list.items = [9];
    await list.fetch();
    expect(list.items).toEqual([]);
    expect(list.error).toBe("could not reach the server: the server is away");
    expect(list.loading).toBe(false);
  });
});
