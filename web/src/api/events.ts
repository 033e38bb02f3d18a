/**
 * Run statuses and the run event stream (`GET /api/v1/runs/{id}/events`), typed from the
 * server's OpenAPI document: the first message is a `snapshot` (a `RunDetail`); every other
 * message's data is a `RunEvent` whose `type` is the message's event name. The tables here are
 * checked against the generated types, so an event or status the server adds or drops fails
 * `tsc` until they follow.
 */
import type { components } from "./schema.gen";

type Schemas = components["schemas"];
export type RunStatus = Schemas["RunStatus"];
export type NodeStatus = Schemas["NodeStatus"];
export type TriggerKind = Schemas["TriggerKind"];

/** One message of the stream, discriminated by `event`. */
export type RunStreamMessage = Schemas["RunStreamMessage"];
/** The data of every message but `snapshot`, discriminated by `type`. */
export type RunEvent = Exclude<RunStreamMessage, { event: "snapshot" }>["data"];
export type RunEventType = RunEvent["type"];
/** The event of one type: `RunEventOf<"node.delta">["data"]["text"]`. */
export type RunEventOf<T extends RunEventType> = Extract<RunEvent, { type: T }>;

/** The statuses after which a run changes no more (a set of strings, so any status reads it). */
export const FINISHED_RUN_STATUSES: ReadonlySet<string> = new Set<string>(["COMPLETED", "FAILED", "CANCELLED"] satisfies RunStatus[]);

/** Whether a run with this status has ended (its stream ends with it). */
export function isFinished(status: RunStatus): boolean {
  return FINISHED_RUN_STATUSES.has(status);
}

/** The run's status after each run event (`run.resumed`: back to RUNNING). */
export const RUN_EVENT_STATUS = {
  "run.started": "RUNNING",
  "run.resumed": "RUNNING",
  "run.waiting": "WAITING",
  "run.completed": "COMPLETED",
  "run.failed": "FAILED",
  "run.cancelled": "CANCELLED",
} as const satisfies Record<Extract<RunEventType, `run.${string}`>, RunStatus>;

/** A node's status after each node state event (`node.retrying`: READY for its next attempt). */
export const NODE_EVENT_STATUS = {
  "node.started": "RUNNING",
  "node.succeeded": "SUCCEEDED",
  "node.failed": "FAILED",
  "node.cached": "CACHED",
  "node.skipped": "SKIPPED",
  "node.cancelled": "CANCELLED",
  "node.waiting": "WAITING",
  "node.retrying": "READY",
} as const satisfies Record<Exclude<Extract<RunEventType, `node.${string}`>, NodeProgressType>, NodeStatus>;

/** The two tables above, read by an event name that is any string (undefined for the rest). */
export const RUN_STATUS_AFTER: Readonly<Partial<Record<string, RunStatus>>> = RUN_EVENT_STATUS;
export const NODE_STATUS_AFTER: Readonly<Partial<Record<string, NodeStatus>>> = NODE_EVENT_STATUS;

/** Live progress of a running node, many a second, never stored: its status does not change. */
export type NodeProgressType = "node.delta" | "node.step";
export const NODE_PROGRESS_EVENTS = ["node.delta", "node.step"] as const satisfies readonly NodeProgressType[];

/** The events that end a stream. */
export const RUN_FINISHED_EVENTS: ReadonlySet<string> = new Set<string>(["run.completed", "run.failed", "run.cancelled"] satisfies RunEventType[]);

/** Every event type but `snapshot` and the progress ones: the state changes. */
export const STATE_EVENT_TYPES = [
  ...(Object.keys(RUN_EVENT_STATUS) as Array<keyof typeof RUN_EVENT_STATUS>),
  ...(Object.keys(NODE_EVENT_STATUS) as Array<keyof typeof NODE_EVENT_STATUS>),
];

/** The data of a message other than `snapshot`, parsed. */
export function parseRunEvent(data: string): RunEvent {
  return JSON.parse(data) as RunEvent;
}

// Every event type the server documents is in exactly one of the tables above.
type Covered = keyof typeof RUN_EVENT_STATUS | keyof typeof NODE_EVENT_STATUS | NodeProgressType;
const _everyEventCovered: [RunEventType] extends [Covered] ? ([Covered] extends [RunEventType] ? true : false) : false = true;
void _everyEventCovered;
