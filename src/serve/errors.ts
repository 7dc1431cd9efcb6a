/**
 * HTTP statuses and the JSON error body of the API: `{"error": {"code", "message", "hint"}}`.
 * The status follows the error's stable code first, then its exit-code class; no stack ever leaves.
 */
import { StemkitError } from '../errors.js';
import type { JobError } from './protocol.js';

const BY_CODE: Record<string, number> = {
  E_UNAUTHORIZED: 401,
  E_PATH_NOT_ALLOWED: 403,
  E_JOB_NOT_FOUND: 404,
  E_FILE_NOT_FOUND: 404,
  E_NOT_FOUND: 404,
  E_UNKNOWN_MODEL: 404,
  E_MODEL_NOT_FOUND: 404,
  E_INPUT_NOT_FOUND: 404,
  E_JOB_FINISHED: 409,
  E_UPLOAD_TOO_LARGE: 413,
  E_NOT_AUDIO: 415,
  E_UNSUPPORTED_MEDIA_TYPE: 415,
  E_RANGE: 416,
  E_SHUTTING_DOWN: 503,
};

const BY_EXIT: Record<number, number> = { 64: 400, 65: 422, 66: 422, 69: 503, 75: 429, 130: 409 };

/** The HTTP status for an error code and exit code. */
export function httpStatus(e: Pick<JobError, 'code' | 'exitCode'>): number {
  return BY_CODE[e.code] ?? BY_EXIT[e.exitCode] ?? 500;
}

export interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

export function errorBody(e: Pick<JobError, 'code' | 'message' | 'hint'>): ErrorBody {
  return { error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } };
}

/** An error raised by the HTTP layer itself, with its status. */
export class HttpError extends StemkitError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    hint?: string,
  ) {
    super(code, status === 413 || status === 415 ? 65 : 64, message, hint ? { hint } : {});
  }
}

export const ERROR_SCHEMA = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', description: 'stable code, e.g. E_BUSY' }, message: { type: 'string' }, hint: { type: 'string', description: 'the next step' } },
    },
  },
} as const;
