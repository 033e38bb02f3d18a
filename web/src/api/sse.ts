/**
 * Server-Sent Events over `fetch`, for streams an `EventSource` cannot open (a POST with a body:
 * a thread's reply). `SseParser` is the wire format alone (text/event-stream, WHATWG HTML
 * §9.2.6), fed text as it arrives in any chunking; `postEventStream` reads a response with it.
 */
import { failure, requestHeaders } from "./client";

export interface SseEvent {
  /** `event:` (default "message"). */
  event: string;
  /** The `data:` lines joined by "\n". */
  data: string;
  id: string | null;
}

export class SseParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  private id: string | null = null;
  private sawData = false;

  /** The events completed by `chunk` (an event ends at a blank line). */
  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const done: SseEvent[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (!match || (match[0] === "\r" && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) done.push(event);
    }
    return done;
  }

  /** At the end of the stream: an event without its final blank line is dropped, per spec. */
  end(): SseEvent[] {
    this.buffer = "";
    this.reset();
    return [];
  }

  private reset(): void {
    this.event = "";
    this.data = [];
    this.sawData = false;
  }

  private line(line: string): SseEvent | null {
    if (line === "") {
      if (!this.sawData) {
        this.reset();
        return null;
      }
      const event = { event: this.event || "message", data: this.data.join("\n"), id: this.id };
      this.reset();
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") {
      this.data.push(value);
      this.sawData = true;
    } else if (field === "id" && !value.includes("\0")) this.id = value;
    return null;
  }
}

/**
 * POST `body` as JSON to `url` and call `onEvent` for each event of the text/event-stream
 * answer, as it arrives. An answer that is not 2xx raises its problem as an ApiError; a JSON
 * answer (a server that did not stream) is given as one event named `json`.
 */
export async function postEventStream(
  url: string,
  body: unknown,
  onEvent: (event: SseEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  const headers = { ...requestHeaders("post", true), Accept: "text/event-stream" };
  const response = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  if (!response.ok) throw await failure(response, url);
  if (!(response.headers.get("content-type") ?? "").includes("text/event-stream") || !response.body) {
    onEvent({ event: "json", data: await response.text(), id: null });
    return;
  }
  const parser = new SseParser();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    for (const event of parser.push(value)) onEvent(event);
  }
  parser.end();
}
