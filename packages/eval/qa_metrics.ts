/**
 * QA answer metrics exactly as qa-expert computes them on HotpotQA
 * (khaimt/qa_expert, `eval_hotpot_qa.py`):
 *
 * - normalisation (SQuAD style): lowercase, delete ASCII punctuation,
 *   replace the words "a", "an", "the" with a space, collapse whitespace;
 * - token recall: |set(prediction tokens) ∩ set(gold tokens)| / number of
 *   gold tokens (if either side is empty: 1 when both are, else 0);
 * - containment: 1 when the normalised gold answer is a substring of the
 *   normalised prediction, else 0.
 *
 * @module
 */

// Python's string.punctuation.
const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
// Python's `\b(a|an|the)\b` with re.UNICODE: word chars are letters, digits, _.
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;

/** SQuAD/qa-expert answer normalisation. */
export function normalizeAnswer(text: string): string {
  let kept = "";
  for (const ch of text.toLowerCase()) if (!PUNCTUATION.has(ch)) kept += ch;
  return kept.replace(ARTICLES, " ").split(/\s+/u).filter((t) => t !== "").join(" ");
}

function tokens(text: string): string[] {
  const normalized = normalizeAnswer(text);
  return normalized === "" ? [] : normalized.split(" ");
}

/** qa-expert's token recall of `gold` in `prediction` (0..1). */
export function answerTokenRecall(prediction: string, gold: string): number {
  const predicted = tokens(prediction);
  const truth = tokens(gold);
  if (predicted.length === 0 || truth.length === 0) {
    return predicted.length === truth.length ? 1 : 0;
  }
  const predictedSet = new Set(predicted);
  let common = 0;
  for (const token of new Set(truth)) if (predictedSet.has(token)) common++;
  return common / truth.length;
}

/** qa-expert's containment accuracy: 1 if the normalised gold is inside the prediction. */
export function answerContainment(prediction: string, gold: string): number {
  return normalizeAnswer(prediction).includes(normalizeAnswer(gold)) ? 1 : 0;
}

/** Mean of both measures over examples. */
export interface QaScores {
  /** Mean token recall. */
  recall: number;
  /** Mean containment. */
  containment: number;
  /** Number of examples. */
  count: number;
}

/** Averages {@link answerTokenRecall} and {@link answerContainment}. */
export function scoreAnswers(
  examples: readonly { prediction: string; gold: string }[],
): QaScores {
  let recall = 0;
  let containment = 0;
  for (const { prediction, gold } of examples) {
    recall += answerTokenRecall(prediction, gold);
    containment += answerContainment(prediction, gold);
  }
  const n = examples.length;
  return { recall: n ? recall / n : 0, containment: n ? containment / n : 0, count: n };
}
