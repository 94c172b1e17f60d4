/**
 * Checking what a user asks `generate` for before any work starts: sampling
 * settings in range, and a token budget that fits the model's context
 * (`max_position_embeddings`), since positions past it were never trained.
 *
 * ```ts
 * import { generationBudget, parseGenerateFlags } from "@irforge/model/generate-options";
 *
 * const options = parseGenerateFlags({ "max-new-tokens": "100", "top-p": "0.9" });
 * const budget = generationBudget(10, options.maxNewTokens, 64);
 * budget.maxNewTokens; // 54: the prompt's 10 positions + 54 new reach the model's 64
 * ```
 *
 * @module
 */

/** The settings {@link parseGenerateFlags} checks. */
export interface GenerateFlags {
  /** Tokens to produce at most (positive integer; default 64). */
  maxNewTokens: number;
  /** 0 = greedy, otherwise > 0 (default 0). */
  temperature: number;
  /** Sample from the k most likely tokens (integer ≥ 1), or 0 when not given (all). */
  topK: number;
  /** Nucleus mass in (0, 1] (default 1). */
  topP: number;
  /** Sampler seed (integer ≥ 0, default 0). */
  seed: number;
}

/** A flag with a value out of range; the message is one sentence naming the flag. */
export class GenerateFlagError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "GenerateFlagError";
  }
}

/**
 * Parses `--max-new-tokens`, `--temperature`, `--top-k`, `--top-p` and
 * `--seed` (strings as given, absent for the defaults), refusing values that
 * would silently mean something else.
 */
export function parseGenerateFlags(values: Record<string, string | undefined>): GenerateFlags {
  const number = (name: string, fallback: number): number => {
    const text = values[name];
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n)) {
      throw new GenerateFlagError(`--${name}: "${text}" is not a number`);
    }
    return n;
  };
  const integer = (name: string, fallback: number, min: number, what: string): number => {
    const n = number(name, fallback);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new GenerateFlagError(`--${name} must be ${what}, got ${values[name]}`);
    }
    return n;
  };
  const maxNewTokens = integer("max-new-tokens", 64, 1, "a positive integer");
  const temperature = number("temperature", 0);
  if (temperature < 0) {
    throw new GenerateFlagError(
      `--temperature must be 0 (greedy) or positive, got ${values.temperature}`,
    );
  }
  const topK = values["top-k"] === undefined
    ? 0
    : integer("top-k", 0, 1, "an integer ≥ 1 (leave it out to sample from every token)");
  const topP = number("top-p", 1);
  if (!(topP > 0 && topP <= 1)) {
    throw new GenerateFlagError(`--top-p must be in (0, 1], got ${values["top-p"]}`);
  }
  const seed = integer("seed", 0, 0, "an integer ≥ 0");
  return { maxNewTokens, temperature, topK, topP, seed };
}

/** How many tokens fit after a prompt, from {@link generationBudget}. */
export interface GenerationBudget {
  /** New tokens allowed: the request, or fewer so the last position is the model's last. */
  maxNewTokens: number;
  /** Whether the request was cut to fit `max_position_embeddings`. */
  capped: boolean;
}

/**
 * New tokens that fit: the prompt takes `promptLength` positions and the
 * model knows `maxPositions`; a prompt that already fills them is an error.
 */
export function generationBudget(
  promptLength: number,
  maxNewTokens: number,
  maxPositions: number,
): GenerationBudget {
  const room = maxPositions - promptLength;
  if (room <= 0) {
    throw new GenerateFlagError(
      `the prompt is ${promptLength} tokens and the model's max_position_embeddings is ` +
        `${maxPositions}; shorten the prompt to leave room for new tokens`,
    );
  }
  return maxNewTokens > room
    ? { maxNewTokens: room, capped: true }
    : { maxNewTokens, capped: false };
}
