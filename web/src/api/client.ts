/**
 * A thin typed fetch wrapper over the generated OpenAPI types (schema.gen.ts, `npm run gen:api`).
 *
 * Paths, path and query parameters, request bodies and answers are all checked against the
 * server's document: `api.get("/api/v1/workflows/{workflow_id}", { path: { workflow_id } })`.
 * The browser session is the httpOnly cookie; unsafe methods send the CSRF token read from the
 * `flowloom_csrf` cookie. Errors are RFC 9457 problem+json, raised as `ApiError`.
 */
import type { paths } from "./schema.gen";

type Method = "get" | "post" | "put" | "patch" | "delete";

type OpOf<P extends keyof paths, M extends Method> = paths[P][M] extends infer O
  ? O extends { responses: unknown }
    ? O
    : never
  : never;

type PathsWith<M extends Method> = {
  [P in keyof paths]: OpOf<P, M> extends never ? never : P;
}[keyof paths];

type PathParams<O> = O extends { parameters: { path: infer X } } ? X : undefined;
type QueryParams<O> = O extends { parameters: { query?: infer Q } } ? Q : undefined;
type BodyOf<O> = O extends { requestBody: { content: { "application/json": infer B } } }
  ? B
  : O extends { requestBody?: { content: { "application/json": infer B } } }
    ? B
    : undefined;
type JsonOf<R> = R extends { content: { "application/json": infer J } } ? J : void;
type OkOf<O> = O extends { responses: infer R }
  ? 200 extends keyof R
    ? JsonOf<R[200]>
    : 201 extends keyof R
      ? JsonOf<R[201]>
      : 202 extends keyof R
        ? JsonOf<R[202]>
        : void
  : never;

export interface RequestOptions<O> {
  path?: PathParams<O>;
  query?: QueryParams<O>;
  body?: BodyOf<O>;
  signal?: AbortSignal;
  /** Let the request outlive the page (a last save as it closes). */
  keepalive?: boolean;
}

/** One problem of an invalid definition, or one bad field of a request. */
export interface ProblemItem {
  message: string;
  node_id?: string | null;
  port?: string | null;
  field?: string | null;
}

/** An answer that was not 2xx: the problem document's parts, readable as one message. */
export class ApiError extends Error {
  readonly status: number;
  readonly detail: string;
  readonly errors: ProblemItem[];
  readonly problems: ProblemItem[];
  /** The whole problem document (extension members such as a generation's `attempts`). */
  readonly body: Record<string, unknown>;

  constructor(status: number, body: unknown) {
    const doc = (body && typeof body === "object" ? body : {}) as Record<string, unknown>;
    const detail =
      typeof doc.detail === "string" && doc.detail
        ? doc.detail
        : typeof doc.title === "string"
          ? doc.title
          : `the server answered ${status}`;
    const errors = Array.isArray(doc.errors) ? (doc.errors as ProblemItem[]) : [];
    const problems = Array.isArray(doc.problems) ? (doc.problems as ProblemItem[]) : [];
    super(describeProblem(detail, [...errors, ...problems]));
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.errors = errors;
    this.problems = problems;
    this.body = doc;
  }
}

/** "detail: field: message; node n: message" — what a person reads in an error banner. */
export function describeProblem(detail: string, items: ProblemItem[]): string {
  // An item that only repeats the detail ("X" and "provider: X") says nothing more.
  const news = items.filter((item) => !detail.includes(item.message));
  if (news.length === 0) return detail;
  const parts = news.map((item) => {
    const where = item.field ?? (item.node_id ? `node ${item.node_id}` : null);
    return where ? `${where}: ${item.message}` : item.message;
  });
  const joined = parts.slice(0, 5).join("; ") + (parts.length > 5 ? ` (+${parts.length - 5} more)` : "");
  return `${detail} — ${joined}`;
}

/** A message for anything a request may throw. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return `could not reach the server: ${error.message}`;
  return String(error);
}

export function readCookie(name: string): string | null {
  if (typeof document === "undefined") return null;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

export function fillPath(template: string, params: Record<string, unknown> | undefined): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = params?.[key];
    if (value === undefined || value === null) throw new Error(`missing path parameter ${key}`);
    return encodeURIComponent(String(value));
  });
}

export function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return "";
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** Called on every 401, so the app can send the person back to the sign-in page. */
let onUnauthenticated: (() => void) | null = null;
export function setUnauthenticatedHandler(handler: (() => void) | null): void {
  onUnauthenticated = handler;
}

/** The headers every request sends: JSON, and the CSRF token for unsafe methods. */
export function requestHeaders(method: string, json: boolean): Record<string, string> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (json) headers["Content-Type"] = "application/json";
  if (method.toLowerCase() !== "get") {
    const csrf = readCookie("flowloom_csrf");
    if (csrf) headers["X-CSRF-Token"] = csrf;
  }
  return headers;
}

/** Read a problem+json (or any) error answer and raise it as an ApiError (401 tells the app). */
export async function failure(response: Response, template: string): Promise<ApiError> {
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { detail: text.slice(0, 300) };
    }
  }
  if (response.status === 401 && onUnauthenticated && !template.startsWith("/api/v1/auth/")) {
    onUnauthenticated();
  }
  return new ApiError(response.status, parsed);
}

async function request(
  method: Method,
  template: string,
  options: { path?: unknown; query?: unknown; body?: unknown; signal?: AbortSignal; keepalive?: boolean } = {},
): Promise<unknown> {
  const url =
    fillPath(template, options.path as Record<string, unknown> | undefined) +
    queryString(options.query as Record<string, unknown> | undefined);
  const headers = requestHeaders(method, options.body !== undefined);
  const response = await fetch(url, {
    method: method.toUpperCase(),
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "same-origin",
    signal: options.signal,
    keepalive: options.keepalive,
  });
  if (!response.ok) throw await failure(response, template);
  const text = await response.text();
  return text ? (JSON.parse(text) as unknown) : undefined;
}

export const api = {
  get<P extends PathsWith<"get">>(path: P, options?: RequestOptions<OpOf<P, "get">>) {
    return request("get", path, options) as Promise<OkOf<OpOf<P, "get">>>;
  },
  post<P extends PathsWith<"post">>(path: P, options?: RequestOptions<OpOf<P, "post">>) {
    return request("post", path, options) as Promise<OkOf<OpOf<P, "post">>>;
  },
  put<P extends PathsWith<"put">>(path: P, options?: RequestOptions<OpOf<P, "put">>) {
    return request("put", path, options) as Promise<OkOf<OpOf<P, "put">>>;
  },
  patch<P extends PathsWith<"patch">>(path: P, options?: RequestOptions<OpOf<P, "patch">>) {
    return request("patch", path, options) as Promise<OkOf<OpOf<P, "patch">>>;
  },
  delete<P extends PathsWith<"delete">>(path: P, options?: RequestOptions<OpOf<P, "delete">>) {
    return request("delete", path, options) as Promise<OkOf<OpOf<P, "delete">>>;
  },
};

/** Where the bytes of a blob (an image output's ``sha256``) are served to their owner. */
export function blobUrl(sha256: string): string {
  return `/api/v1/blobs/${encodeURIComponent(sha256)}`;
}
