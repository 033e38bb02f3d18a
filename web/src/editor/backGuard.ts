/**
 * Unsaved edits survive the browser's Back button and signing out, not only the app's links.
 *
 * Back: while the graph has unsaved changes, the editor's page has a second history entry of
 * the same address on top of its own (`arm`). Back then lands on the editor's own entry, where
 * nothing changes on screen, and the editor asks what to do: leave (`leave` goes back once
 * more) or stay (`arm` again). With nothing unsaved, Back on that entry goes on back at once.
 *
 * Signing out (or anything else that leaves the page outside the router) asks `mayLeave()`,
 * which asks the editor, when one is open with unsaved changes.
 */

const MARK = "flowloomGuard";

function onGuardEntry(): boolean {
  const state = window.history.state as Record<string, unknown> | null;
  return Boolean(state && state[MARK]);
}

export interface BackGuard {
  /** Put the guard entry on top (no-op when it is there). */
  arm(): void;
  /** Go back past the guard: the person chose to leave. */
  leave(): void;
  /** Whether the page sits on the guard entry (a navigation away should replace it). */
  onGuard(): boolean;
  dispose(): void;
}

/** Watch the Back button for the editor: `dirty()` says whether to ask, `ask()` asks. */
export function guardBackButton(dirty: () => boolean, ask: () => void): BackGuard {
  // Opened on a guard entry left by an earlier visit: Back from here passes through it.
  let armed = onGuardEntry();
  const arm = () => {
    if (onGuardEntry()) {
      armed = true;
      return;
    }
    window.history.pushState({ ...(window.history.state as object | null), [MARK]: true }, "", window.location.href);
    armed = true;
  };
  const onPop = () => {
    if (!armed || onGuardEntry()) return;
    armed = false;
    if (dirty()) ask();
    else window.history.back();
  };
  window.addEventListener("popstate", onPop);
  return {
    arm,
    leave() {
      armed = false;
      window.history.back();
    },
    onGuard: onGuardEntry,
    dispose() {
      window.removeEventListener("popstate", onPop);
    },
  };
}

type Asker = () => Promise<boolean>;
let asker: Asker | null = null;

/** The open editor's question "leave with unsaved changes?" (null when none is open). */
export function setLeaveQuestion(ask: Asker | null): void {
  asker = ask;
}

/** Whether the page may be left now: true, or what the person answers the editor's question. */
export function mayLeave(): Promise<boolean> {
  return asker ? asker() : Promise.resolve(true);
}
