/**
 * Giving an image.load node its picture: drop an image file on the zone, or pick one. The file
 * is uploaded to the blob store (POST /api/v1/blobs, multipart field `file`) and the node keeps
 * its sha256; the server refuses what is not an image (415), too large (413) or damaged (422),
 * and the reason is shown here.
 */
import { useRef, useState, type DragEvent } from "react";

import { failure, requestHeaders } from "../api/client";
import type { components } from "../api/schema.gen";
import { ImageThumb } from "./ImageThumb";
import "./imageUpload.css";

type BlobPublic = components["schemas"]["BlobPublic"];

export async function uploadImage(file: File): Promise<BlobPublic> {
  const form = new FormData();
  form.append("file", file, file.name);
  const headers = requestHeaders("post", false);
  const response = await fetch("/api/v1/blobs", { method: "POST", body: form, headers, credentials: "same-origin" });
  if (!response.ok) throw await failure(response, "/api/v1/blobs");
  return (await response.json()) as BlobPublic;
}

export function ImageUpload({ sha256, onUploaded }: { sha256: string | undefined; onUploaded: (blob: BlobPublic) => void }) {
  const picker = useRef<HTMLInputElement>(null);
  const [over, setOver] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [last, setLast] = useState<BlobPublic | null>(null);

  async function take(files: FileList | null) {
    const file = files?.[0];
    if (!file) return;
    setError(null);
    setBusy(true);
    try {
      const blob = await uploadImage(file);
      setLast(blob);
      onUploaded(blob);
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setBusy(false);
    }
  }

  function drop(event: DragEvent<HTMLDivElement>) {
    event.preventDefault();
    event.stopPropagation();
    setOver(false);
    void take(event.dataTransfer.files);
  }

  const shown = last && last.sha256 === sha256 ? last : sha256 ? { sha256 } : null;
  return (
    <div className="field image-upload">
      <span className="field-label">Image</span>
      <div
        className={`drop-zone nodrag ${over ? "over" : ""}`}
        data-testid="image-drop-zone"
        onDragOver={(event) => {
          event.preventDefault();
          setOver(true);
        }}
        onDragLeave={() => setOver(false)}
        onDrop={drop}
      >
        {shown ? <ImageThumb image={shown} name="the uploaded image" size={96} /> : null}
        <div className="drop-text">
          {busy ? (
            "Uploading…"
          ) : (
            <>
              Drop an image here, or{" "}
              <button type="button" className="link-button" onClick={() => picker.current?.click()}>
                choose a file
              </button>
              {last && last.sha256 === sha256 && (
                <div className="muted small">
                  {last.filename ?? "image"} · {last.width}×{last.height} · {Math.ceil(last.size / 1024)} KB
                </div>
              )}
            </>
          )}
        </div>
        <input
          ref={picker}
          type="file"
          accept="image/*"
          hidden
          aria-label="Choose an image file"
          onChange={(event) => {
            void take(event.target.files);
            event.target.value = "";
          }}
        />
      </div>
      {error && <p className="error" role="alert">{error}</p>}
    </div>
  );
}
