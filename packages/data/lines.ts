/**
 * Streaming line reader: yields each line of a text file with its 1-based
 * number, without loading the whole file, so that every later error can name
 * the line.
 *
 * @module
 */

/** One line of a text file. */
export interface NumberedLine {
  /** The line without its `\n` or `\r\n` ending. */
  text: string;
  /** 1-based line number. */
  line: number;
}

/** Yields the lines of `path` in order, CRLF endings removed. */
export async function* readLines(path: string): AsyncGenerator<NumberedLine> {
  const file = await Deno.open(path, { read: true });
  const decoder = new TextDecoder();
  let pending = "";
  let line = 0;
  try {
    for await (const chunk of file.readable) {
      pending += decoder.decode(chunk, { stream: true });
      let start = 0;
      let newline: number;
      while ((newline = pending.indexOf("\n", start)) >= 0) {
        line++;
        yield { text: stripCr(pending.slice(start, newline)), line };
        start = newline + 1;
      }
      pending = pending.slice(start);
    }
    pending += decoder.decode();
    if (pending.length > 0) yield { text: stripCr(pending), line: line + 1 };
  } finally {
    // The readable stream closes the file when fully consumed; an early
    // `return` from the consumer leaves it open, so close defensively.
    try {
      file.close();
    } catch {
      // already closed by the stream
    }
  }
}

/** Splits text into numbered lines (the in-memory twin of {@link readLines}). */
export function splitLines(text: string): NumberedLine[] {
  const parts = text.split("\n");
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop();
  return parts.map((t, i) => ({ text: stripCr(t), line: i + 1 }));
}

function stripCr(text: string): string {
  return text.endsWith("\r") ? text.slice(0, -1) : text;
}
