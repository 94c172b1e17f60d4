/**
 * Explicit tensor lifetimes: `tidy(fn)` disposes every tensor created inside
 * `fn` that is not returned or {@link keep}-ed.
 *
 * Ownership rules:
 * - A tensor created outside any scope belongs to its creator, who must call
 *   `dispose()` (or wrap the work in `tidy`).
 * - A tensor created inside `tidy` is disposed when the scope ends, unless it
 *   is (part of) the return value — then it moves to the enclosing scope — or
 *   `keep(t)` was called, which detaches it from every scope.
 * - Tensors saved by the autograd tape hold their own reference to the
 *   storage, so disposing or tidying the forward tensors is always safe; the
 *   tape frees its references when `backward` finishes (or `releaseTape()`).
 * - `param.grad` belongs to the parameter; `zeroGrad` disposes it.
 *
 * Scopes are a stack: do not interleave two `tidyAsync` calls concurrently.
 *
 * @module
 */

/** Anything a scope can dispose. */
export interface Disposable {
  /** Frees the resource; idempotent. */
  dispose(): void;
}

const stack: Set<Disposable>[] = [];

/** Registers a fresh object in the innermost scope (internal). */
export function track(t: Disposable): void {
  stack[stack.length - 1]?.add(t);
}

/** Detaches `t` from every scope so that no `tidy` disposes it; returns `t`. */
export function keep<T extends Disposable>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, into: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 3) return;
  if (typeof (value as Disposable).dispose === "function") {
    into.add(value as Disposable);
    return;
  }
  const items = Array.isArray(value)
    ? value
    : value instanceof Map
    ? [...value.values()]
    : Object.values(value);
  for (const v of items) collect(v, into, depth + 1);
}

function close(scope: Set<Disposable>, result: unknown): void {
  const returned = new Set<Disposable>();
  collect(result, returned);
  const parent = stack[stack.length - 1];
  for (const t of scope) {
    if (returned.has(t)) parent?.add(t);
    else t.dispose();
  }
}

/**
 * Runs `fn` in a new scope and disposes the tensors it created, except those
 * in its return value (a tensor, or arrays/objects/maps of them up to 3 deep).
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.pop();
  close(scope, result);
  return result;
}

/** Async variant of {@link tidy}; do not run two concurrently. */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Disposable>();
  stack.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    stack.splice(stack.indexOf(scope), 1);
    for (const t of scope) t.dispose();
    throw e;
  }
  stack.splice(stack.indexOf(scope), 1);
  close(scope, result);
  return result;
}
