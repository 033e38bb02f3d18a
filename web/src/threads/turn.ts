/**
 * One turn of a thread as it streams (POST /threads/{id}/messages?stream=true): the events
 * `delta` ({text}), `tool_call` (a step: {step, tool, arguments, result, is_error}), then
 * `message` (the stored reply, as the plain answer would be) or `error` (a problem document:
 * nothing was stored). `applyEvent` folds them, one at a time, into what the chat shows.
 */
import type { SseEvent } from "../api/sse";
import type { MessagePublic, ReplyPublic } from "../api/types";

export interface ToolStep {
  step: number;
  tool: string;
  arguments: unknown;
  result: unknown;
  is_error: boolean;
}

export interface Turn {
  /** What the person sent. */
  content: string;
  /** The reply so far. */
  text: string;
  steps: ToolStep[];
  state: "streaming" | "done" | "failed";
  /** The stored messages, once the reply is whole. */
  reply: ReplyPublic | null;
  error: string | null;
}

export function startTurn(content: string): Turn {
  return { content, text: "", steps: [], state: "streaming", reply: null, error: null };
}

/** The tool calls of a step list (the final answer's entry, `tool` null, is not one). */
export function toolSteps(raw: unknown): ToolStep[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((s): s is Record<string, unknown> => typeof s === "object" && s !== null && typeof s.tool === "string" && s.tool !== "")
    .map((s) => ({
      step: typeof s.step === "number" ? s.step : 0,
      tool: s.tool as string,
      arguments: s.arguments ?? null,
      result: s.result ?? null,
      is_error: s.is_error === true,
    }));
}

function problemText(doc: Record<string, unknown>): string {
  const detail = typeof doc.detail === "string" && doc.detail ? doc.detail : typeof doc.title === "string" ? doc.title : "the reply failed";
  return typeof doc.status === "number" ? `${detail} (${doc.status})` : detail;
}

/** The turn after `event`; an event it cannot read fails the turn, saying so. */
export function applyEvent(turn: Turn, event: SseEvent): Turn {
  let data: unknown;
  try {
    data = JSON.parse(event.data);
  } catch {
    return { ...turn, state: "failed", error: `the server sent an unreadable ${event.event} event` };
  }
  const doc = (typeof data === "object" && data !== null ? data : {}) as Record<string, unknown>;
  switch (event.event) {
    case "delta":
      return typeof doc.text === "string" ? { ...turn, text: turn.text + doc.text } : turn;
    case "tool_call":
      return { ...turn, steps: [...turn.steps, ...toolSteps([doc])] };
    case "message":
    case "json": {
      const reply = doc as unknown as ReplyPublic;
      if (!reply.message || typeof reply.message.content !== "string") {
        return { ...turn, state: "failed", error: "the server's reply has no message" };
      }
      return { ...turn, state: "done", reply, text: reply.message.content, steps: toolSteps(reply.message.tool_calls) };
    }
    case "error":
      return { ...turn, state: "failed", error: problemText(doc) };
    default:
      return turn;
  }
}

/** The messages of a finished turn, for the history (the person's, then the reply). */
export function storedMessages(turn: Turn): MessagePublic[] {
  return turn.reply ? [turn.reply.user_message, turn.reply.message] : [];
}
