/**
 * An image output as a thumbnail (the blob's bytes, served to their owner); a click or Enter
 * opens it full size in a dialog. The browser caches the bytes for good: a blob never changes.
 */
import { useEffect, useRef, useState } from "react";
import { createPortal } from "react-dom";

import { blobUrl } from "../api/client";
import { describeImage } from "../api/images";
import type { ImageRef } from "../api/types";

export function ImageThumb({ image, name, size = 64 }: { image: ImageRef; name: string; size?: number }) {
  const [open, setOpen] = useState(false);
  const [broken, setBroken] = useState(false);
  const what = describeImage(image);
  return (
    <>
      <button
        type="button"
        className="thumb-button nodrag"
        onClick={(event) => {
          event.stopPropagation();
          setOpen(true);
        }}
        aria-label={`Open ${name} full size (${what})`}
        title={`${name}: ${what}`}
      >
        {broken ? (
          <span className="thumb-missing" style={{ width: size, height: size }}>no image</span>
        ) : (
          <img
            className="thumb"
            src={blobUrl(image.sha256)}
            alt={`${name}: ${what}`}
            loading="lazy"
            decoding="async"
            draggable={false}
            style={{ maxWidth: size, maxHeight: size }}
            data-testid="image-thumb"
            onError={() => setBroken(true)}
          />
        )}
      </button>
      {open && <ImageDialog image={image} name={name} onClose={() => setOpen(false)} />}
    </>
  );
}

function ImageDialog({ image, name, onClose }: { image: ImageRef; name: string; onClose: () => void }) {
  const close = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    close.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") {
        event.stopPropagation();
        onClose();
      }
    };
    window.addEventListener("keydown", onKey, true);
    return () => {
      window.removeEventListener("keydown", onKey, true);
      opener?.focus?.();
    };
  }, [onClose]);
  const what = describeImage(image);
  // In a portal: inside a canvas node, "fixed" would be relative to the node's transform.
  return createPortal(
    <div className="dialog-backdrop" onClick={onClose}>
      <div role="dialog" aria-modal="true" aria-label={`${name} full size`} className="dialog image-dialog" onClick={(e) => e.stopPropagation()}>
        <img src={blobUrl(image.sha256)} alt={`${name}: ${what}`} data-testid="image-full" />
        <p className="muted">
          {name}: {what} · <a href={blobUrl(image.sha256)} target="_blank" rel="noreferrer">open in a new tab</a>
        </p>
        <button type="button" ref={close} onClick={onClose}>Close</button>
      </div>
    </div>,
    document.body,
  );
}
