/** Help text as written in the node types' docstrings: `code` (or ``code``) set as code. */
import { Fragment } from "react";

/** The pieces of `text`: plain runs and code runs, in order. */
export function richPieces(text: string): { code: boolean; text: string }[] {
  const pieces: { code: boolean; text: string }[] = [];
  // ``a `b` c`` holds backticks; a single-backtick run holds none.
  const pattern = /``(.+?)``|`([^`]+)`/g;
  let at = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    if (match.index > at) pieces.push({ code: false, text: text.slice(at, match.index) });
    pieces.push({ code: true, text: match[1] ?? match[2] });
    at = match.index + match[0].length;
  }
  if (at < text.length) pieces.push({ code: false, text: text.slice(at) });
  return pieces.map((p) => (p.code ? p : { ...p, text: p.text.replace(/\s*\n\s*/g, " ") }));
}

export function RichText({ text }: { text: string }) {
  return (
    <>
      {richPieces(text).map((piece, i) =>
        piece.code ? <code key={i}>{piece.text}</code> : <Fragment key={i}>{piece.text}</Fragment>,
      )}
    </>
  );
}
