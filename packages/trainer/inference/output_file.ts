/**
 * Writing a result file so that it is either complete or absent: the text
 * goes to `<path>.partial`, renamed over `path` only once written.
 *
 * @module
 */

/** Writes `text` to `path` atomically (temporary file, then rename). */
export async function writeOutputFile(path: string, text: string): Promise<void> {
  const partial = `${path}.partial`;
  try {
    await Deno.writeTextFile(partial, text);
    await Deno.rename(partial, path);
  } catch (error) {
    await Deno.remove(partial).catch(() => {});
    throw error;
  }
}
