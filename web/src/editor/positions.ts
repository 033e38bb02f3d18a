/**
 * Saving where nodes sit as they are dragged, without a new version: moves of a saved graph
 * collect in the store (`moved`), and a moment after the last drag ends (400 ms) their
 * positions go to `PATCH /workflows/{id}/positions`, one request at a time, so an older
 * request never lands after a newer one. A request that fails leaves the graph "unsaved":
 * the positions then go with the next save, so none is lost.
 */
import type { StoreApi } from "zustand/vanilla";

import type { EditorState } from "./store";

export type Positions = Record<string, { x: number; y: number }>;

export interface PositionSaverOptions {
  store: StoreApi<EditorState>;
  /** Send the positions (the API call); rejects when they were not saved. */
  send: (positions: Positions, options: { keepalive: boolean }) => Promise<void>;
  onError: (error: unknown) => void;
  delayMs?: number;
}

export class PositionSaver {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inFlight: Promise<void> | null = null;
  private readonly unsubscribe: () => void;
  private readonly delayMs: number;

  constructor(private readonly options: PositionSaverOptions) {
    this.delayMs = options.delayMs ?? 400;
    this.unsubscribe = options.store.subscribe((state, before) => {
      if (state.moved !== before.moved && Object.keys(state.moved).length > 0) this.schedule();
    });
  }

  /** Whether positions are waiting or on their way. */
  get busy(): boolean {
    return this.timer !== null || this.inFlight !== null || Object.keys(this.options.store.getState().moved).length > 0;
  }

  /** Save a moment from now (each new move restarts the wait). */
  schedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.delayMs);
  }

  /** Save what is waiting now, after any request already on its way. */
  async flush(keepalive = false): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.inFlight) await this.inFlight;
    const positions = this.options.store.getState().takeMoved();
    if (Object.keys(positions).length === 0) return;
    this.inFlight = this.options
      .send(positions, { keepalive })
      .catch((error: unknown) => {
        this.options.store.getState().movesNotSaved();
        this.options.onError(error);
      })
      .finally(() => {
        this.inFlight = null;
      });
    await this.inFlight;
  }

  /** Wait for the request on its way, and forget what waits (a save is about to send it all). */
  async settle(): Promise<void> {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.inFlight) await this.inFlight;
  }

  dispose(): void {
    this.unsubscribe();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
