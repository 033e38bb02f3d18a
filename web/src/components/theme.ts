/**
 * Light or dark: the system's setting unless the person chose one (kept in this browser). The
 * choice is applied as `data-theme` on <html>, which the style sheet and the canvas follow.
 */
import { useSyncExternalStore } from "react";

export type Theme = "light" | "dark";
export type ThemeChoice = Theme | "system";

const KEY = "flowloom:theme";
const listeners = new Set<() => void>();
const query = typeof window !== "undefined" && window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

export function themeChoice(): ThemeChoice {
  try {
    const stored = window.localStorage.getItem(KEY);
    return stored === "light" || stored === "dark" ? stored : "system";
  } catch {
    return "system";
  }
}

export function resolveTheme(choice: ThemeChoice, systemDark: boolean): Theme {
  return choice === "system" ? (systemDark ? "dark" : "light") : choice;
}

function current(): Theme {
  return resolveTheme(themeChoice(), query?.matches ?? false);
}

function apply(): void {
  if (typeof document === "undefined") return;
  document.documentElement.dataset.theme = current();
  document.documentElement.style.colorScheme = current();
  for (const listener of listeners) listener();
}

export function chooseTheme(choice: ThemeChoice): void {
  try {
    if (choice === "system") window.localStorage.removeItem(KEY);
    else window.localStorage.setItem(KEY, choice);
  } catch {
    // Private mode without storage: the choice lasts for this page.
  }
  apply();
}

query?.addEventListener?.("change", apply);
apply();

/** The theme in use; re-renders when it changes. */
export function useTheme(): Theme {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    current,
    () => "light" as Theme,
  );
}
