/** Who is signed in: a small Zustand store over /api/v1/auth. */
import { create } from "zustand";

import { ApiError, api } from "./api/client";
import type { UserPublic } from "./api/types";

interface AuthState {
  user: UserPublic | null;
  /** False until the first /auth/me answered. */
  known: boolean;
  refresh(): Promise<void>;
  signIn(email: string, password: string): Promise<void>;
  signUp(email: string, password: string, username?: string): Promise<void>;
  signOut(): Promise<void>;
  forget(): void;
}

export const useAuth = create<AuthState>()((set, get) => ({
  user: null,
  known: false,
  async refresh() {
    try {
      set({ user: await api.get("/api/v1/auth/me"), known: true });
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) console.error(error);
      set({ user: null, known: true });
    }
  },
  async signIn(email, password) {
    const token = await api.post("/api/v1/auth/login", { body: { email, password } });
    set({ user: token.user, known: true });
  },
  async signUp(email, password, username) {
    await api.post("/api/v1/auth/register", { body: { email, password, username: username || null } });
    await get().signIn(email, password);
  },
  async signOut() {
    try {
      await api.post("/api/v1/auth/logout");
    } finally {
      set({ user: null });
    }
  },
  forget() {
    set({ user: null, known: true });
  },
}));
