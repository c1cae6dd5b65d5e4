// The admin API's errors: `{"error": {"code", "message", "location"?}}` with the status that
// fits the code (docs/ADMIN_API.md, "Errors").

export type ApiErrorCode = 'invalid' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'too_large' | 'rate_limited' | 'internal' | 'unavailable';

export const STATUS_OF: Record<ApiErrorCode, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
};

export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly location: string | undefined;
  /** Seconds after which a 'rate_limited' or 'unavailable' request may be tried again (the Retry-After header). */
  readonly retryAfter: number | undefined;
  constructor(code: ApiErrorCode, message: string, location?: string, retryAfter?: number) {
    super(message);
    this.code = code;
    this.location = location;
    this.retryAfter = retryAfter;
  }
  get status(): number {
    return STATUS_OF[this.code];
  }
  toJSON(): { error: { code: ApiErrorCode; message: string; location?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.location === undefined ? {} : { location: this.location }) } };
  }
}
