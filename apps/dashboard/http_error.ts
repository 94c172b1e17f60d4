/**
 * An error that maps to an HTTP status: the API answers it as
 * `{"error": message}` with that status instead of a 500.
 *
 * @module
 */

/** A request that cannot be served, with the status to answer. */
export class HttpError extends Error {
  /** HTTP status code (400 bad request, 403 forbidden, 404 not found). */
  readonly status: 400 | 403 | 404;

  /** Creates an error answered with `status` and `message`. */
  constructor(status: 400 | 403 | 404, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}
