/** Image outputs: which values are image references, wherever they sit in an output. */
import type { ImageRef } from "./types";

const SHA256 = /^[0-9a-f]{64}$/;

/** `value` is an image output: `{sha256, content_type: "image/...", ...}`. */
export function isImageRef(value: unknown): value is ImageRef {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const ref = value as Record<string, unknown>;
  if (typeof ref.sha256 !== "string" || !SHA256.test(ref.sha256)) return false;
  return ref.content_type === undefined || (typeof ref.content_type === "string" && ref.content_type.startsWith("image/"));
}

/** The images of one output value: itself, or the images of a list (at most `limit`). */
export function imagesIn(value: unknown, limit = 8): ImageRef[] {
  if (isImageRef(value)) return [value];
  if (Array.isArray(value)) return value.filter(isImageRef).slice(0, limit);
  return [];
}

/** "image/png 80×60 · 1.2 kB": what a thumbnail's caption and alt text say. */
export function describeImage(ref: ImageRef): string {
  const parts = [ref.content_type ?? "image"];
  if (ref.width && ref.height) parts.push(`${ref.width}×${ref.height}`);
  let text = parts.join(" ");
  if (typeof ref.size === "number") {
    text += ` · ${ref.size < 1024 ? `${ref.size} B` : ref.size < 1024 * 1024 ? `${(ref.size / 1024).toFixed(1)} kB` : `${(ref.size / 1024 / 1024).toFixed(1)} MB`}`;
  }
  return text;
}
