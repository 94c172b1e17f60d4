/**
 * `deno task dashboard`: not built yet.
 *
 * @module
 */

if (import.meta.main) {
  console.log("The dashboard (apps/dashboard) has not landed yet.");
}
