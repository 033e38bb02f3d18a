/**
 * What the config forms suggest: the user's credential names, integrations, an MCP server's
 * tools, the models of the model table and the user's workflows, loaded once per editor visit (tools once per server) and shared by every
 * form that asks.
 */
import { useEffect, useState } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import type { CredentialPublic, IntegrationPublic, ToolPublic, WorkflowSummary } from "../api/types";

export type ModelList = components["schemas"]["ModelList"];
export type ModelPublic = components["schemas"]["ModelPublic"];

interface Loaded<T> {
  items: T[];
  error: string | null;
  loading: boolean;
}

const cache = new Map<string, Promise<unknown[]>>();

async function allPages<T>(load: (cursor: string | undefined) => Promise<{ items: T[]; next_cursor?: string | null }>): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10; page++) {
    const answer = await load(cursor);
    items.push(...answer.items);
    if (!answer.next_cursor) break;
    cursor = answer.next_cursor;
  }
  return items;
}

function useLoaded<T>(key: string | null, load: () => Promise<T[]>): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({ items: [], error: null, loading: key !== null });
  useEffect(() => {
    if (key === null) {
      setState({ items: [], error: null, loading: false });
      return;
    }
    let live = true;
    let promise = cache.get(key) as Promise<T[]> | undefined;
    if (!promise) {
      promise = load();
      cache.set(key, promise);
      // A failure is not kept: the next form that asks tries again.
      promise.catch(() => cache.delete(key));
    }
    setState((old) => ({ ...old, loading: true }));
    promise.then(
      (items) => live && setState({ items, error: null, loading: false }),
      (error: unknown) => live && setState({ items: [], error: errorMessage(error), loading: false }),
    );
    return () => {
      live = false;
    };
    // `load` is the same request for the same key.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  return state;
}

/** Forget what was loaded (the user changed credentials or integrations, or opened the editor). */
export function forgetLookups(): void {
  cache.clear();
}

export function useCredentials(enabled = true): Loaded<CredentialPublic> {
  return useLoaded(enabled ? "credentials" : null, () =>
    allPages((cursor) => api.get("/api/v1/credentials", { query: { cursor, limit: 100 } })),
  );
}

export function useIntegrations(enabled = true): Loaded<IntegrationPublic> {
  return useLoaded(enabled ? "integrations" : null, () =>
    allPages((cursor) => api.get("/api/v1/integrations", { query: { cursor, limit: 100 } })),
  );
}

export function useMcpTools(integrationId: string | null): Loaded<ToolPublic> {
  return useLoaded(integrationId ? `tools:${integrationId}` : null, async () => {
    const answer = await api.get("/api/v1/integrations/{integration_id}/tools", { path: { integration_id: integrationId! } });
    return answer.items;
  });
}

/** The model table (enabled models, and which providers the caller can use). */
export function useModels(enabled = true): { list: ModelList | null; error: string | null; loading: boolean } {
  const { items, error, loading } = useLoaded<ModelList>(enabled ? "models" : null, async () => [await api.get("/api/v1/models")]);
  return { list: items[0] ?? null, error, loading };
}

/** The models of `kind` (any kind when empty) at `provider` (any when empty), by name. */
export function modelsFor(list: ModelList | null, kind?: string, provider?: string): ModelPublic[] {
  return (list?.items ?? [])
    .filter((m) => (!kind || m.kind === kind) && (!provider || m.provider === provider))
    .sort((a, b) => a.display_name.localeCompare(b.display_name));
}

export function useWorkflows(enabled = true): Loaded<WorkflowSummary> {
  return useLoaded(enabled ? "workflows" : null, () =>
    allPages((cursor) => api.get("/api/v1/workflows", { query: { cursor, limit: 100 } })),
  );
}
