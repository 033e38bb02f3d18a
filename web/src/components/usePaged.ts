/**
 * A cursor-paged list (`{items, next_cursor}` pages, newest first): the first page when the
 * query changes, "load more" for the next, and a reload after a change. Answers that arrive
 * for an older query or after a newer reload are dropped, so a slow page never overwrites a
 * fresh one.
 */
import { useCallback, useEffect, useRef, useState } from "react";

import { errorMessage } from "../api/client";

export interface PageOf<T> {
  items: T[];
  next_cursor?: string | null;
}

export type PageLoader<T> = (cursor: string | undefined) => Promise<PageOf<T>>;

export interface Paged<T> {
  items: T[];
  /** Change what is shown without asking the server (after a delete or an edit). */
  setItems: (update: (items: T[]) => T[]) => void;
  loading: boolean;
  /** Whether the first page has arrived (or failed). */
  loaded: boolean;
  error: string | null;
  hasMore: boolean;
  loadMore: () => void;
  /** The first page again, replacing what is shown. */
  reload: () => void;
}

/** The walk over pages, apart from React (so it can be tested alone). */
export class PagedList<T> {
  items: T[] = [];
  cursor: string | null = null;
  error: string | null = null;
  loading = false;
  loaded = false;
  private generation = 0;

  constructor(
    private load: PageLoader<T>,
    private changed: () => void,
  ) {}

  /** The first page (`more`: the page after the last one shown). */
  async fetch(more = false): Promise<void> {
    if (more && !this.cursor) return;
    const generation = more ? this.generation : ++this.generation;
    this.loading = true;
    this.changed();
    try {
      const page = await this.load(more ? this.cursor ?? undefined : undefined);
      if (generation !== this.generation) return;
      this.items = more ? [...this.items, ...page.items] : page.items;
      this.cursor = page.next_cursor ?? null;
      this.error = null;
    } catch (caught) {
      if (generation !== this.generation) return;
      if (!more) {
        this.items = [];
        this.cursor = null;
      }
      this.error = errorMessage(caught);
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.loaded = true;
        this.changed();
      }
    }
  }

  /** Drop answers still on their way (the list is going away or its query changed). */
  forget(): void {
    this.generation++;
  }

  setLoader(load: PageLoader<T>): void {
    this.load = load;
  }
}

/**
 * The pages `load` gives, from the first again whenever `key` changes (the query: filters,
 * a search term; a string, so that equal queries are equal). `delayMs` waits that long after
 * a change of key before asking (typing in a search box).
 */
export function usePaged<T>(load: PageLoader<T>, key: string, delayMs = 0): Paged<T> {
  const [, rerender] = useState(0);
  const list = useRef<PagedList<T> | null>(null);
  list.current ??= new PagedList<T>(load, () => rerender((n) => n + 1));
  list.current.setLoader(load);

  useEffect(() => {
    const current = list.current!;
    if (delayMs <= 0) {
      void current.fetch();
      return () => current.forget();
    }
    const timer = window.setTimeout(() => void current.fetch(), delayMs);
    return () => {
      window.clearTimeout(timer);
      current.forget();
    };
  }, [key, delayMs]);

  const loadMore = useCallback(() => void list.current!.fetch(true), []);
  const reload = useCallback(() => void list.current!.fetch(), []);
  const setItems = useCallback((update: (items: T[]) => T[]) => {
    list.current!.items = update(list.current!.items);
    rerender((n) => n + 1);
  }, []);
  const current = list.current;
  return {
    items: current.items,
    setItems,
    loading: current.loading,
    loaded: current.loaded,
    error: current.error,
    hasMore: current.cursor !== null,
    loadMore,
    reload,
  };
}
