// The admin API's errors: `{"error": {"code", "message", "location"?}}` with the status that
// fits the code (docs/ADMIN_API.md, "Errors").

export type ApiErrorCode = 'invalid' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'too_large' | 'internal';

export const STATUS_OF: Record<ApiErrorCode, number> = {
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  internal: 500,
};

export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly location: string | undefined;
  constructor(code: ApiErrorCode, message: string, location?: string) {
    super(message);
    this.code = code;
    this.location = location;
  }
  get status(): number {
    return STATUS_OF[this.code];
  }
  toJSON(): { error: { code: ApiErrorCode; message: string; location?: string } } {
    return { error: { code: this.code, message: this.message, ...(this.location === undefined ? {} : { location: this.location }) } };
  }
}
