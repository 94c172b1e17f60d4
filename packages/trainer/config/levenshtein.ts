/**
 * Edit distance used to suggest the valid key closest to a misspelt one. One
 * implementation serves the whole workspace: the loss registry's
 * (Damerau–Levenshtein, optimal string alignment: `learnign_rate` is one edit
 * away from `learning_rate`; closest match case-insensitive, ties to the
 * earlier candidate, `undefined` without candidates).
 *
 * @module
 */

export { closest as closestMatch, editDistance as damerauLevenshtein } from "@irforge/losses";
