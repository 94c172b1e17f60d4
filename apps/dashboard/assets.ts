/**
 * The page scripts and stylesheet under `static/`, served from a fixed list
 * (never from a path the request names), loaded once and cached.
 *
 * @module
 */

/** Served asset names and their content types. */
export const ASSETS: Readonly<Record<string, string>> = {
  "chart.js": "text/javascript; charset=utf-8",
  "run.js": "text/javascript; charset=utf-8",
  "compare.js": "text/javascript; charset=utf-8",
  "style.css": "text/css; charset=utf-8",
};

const cache = new Map<string, Promise<string>>();

async function load(url: URL): Promise<string> {
  if (url.protocol === "file:") return await Deno.readTextFile(url);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot load ${url}: ${response.status}`);
  return await response.text();
}

/** The content and type of asset `name`, or `null` when it is not one of {@linkcode ASSETS}. */
export async function readAsset(name: string): Promise<{ body: string; type: string } | null> {
  if (!Object.hasOwn(ASSETS, name)) return null;
  let text = cache.get(name);
  if (text === undefined) {
    text = load(new URL(`./static/${name}`, import.meta.url));
    cache.set(name, text);
    text.catch(() => cache.delete(name));
  }
  return { body: await text, type: ASSETS[name]! };
}
