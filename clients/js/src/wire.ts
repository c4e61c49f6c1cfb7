// The JSON bodies of Ferry's wire protocol v1 (DESIGN.md, "Wire protocol
// v1"; the Go side is package framework/wire).

/** A record as the server stores and sends it. */
export interface WireRecord {
  model: string
  uid: string
  /** Set by the server. */
  owner?: string
  /** RFC 3339 in UTC; answers carry microseconds. */
  modify_at: string
  is_deleted: boolean
  /** Set by the server; grows with every accepted write of the record's scope. */
  version?: number
  /** The shared space the record lives in; absent for a personal record. */
  space?: string
  data: unknown
  /**
   * When top-level fields were last edited, where that is not modify_at
   * (a field not named: at modify_at when data has it, never when it lacks
   * it). Sent by the server for models whose policy merges field by field.
   */
  fields_modify_at?: Record<string, string>
}

/** One change of a push. */
export interface WireChange {
  op_id?: string
  model: string
  uid: string
  modify_at: string
  is_deleted?: boolean
  /** The shared space the change is to; absent for the personal space. */
  space?: string
  data?: unknown
  /** When the device last edited top-level fields (none after modify_at); see WireRecord. */
  fields_modify_at?: Record<string, string>
}

/** The four outcomes of a pushed change. */
export type Status = 'applied' | 'stale' | 'rejected' | 'forbidden'

/** A field's error, at a JSON pointer such as /data/title. */
export interface FieldError {
  path: string
  message: string
}

/** The answer to one pushed change, in the order of the push. */
export interface WireResult {
  op_id?: string
  model: string
  uid: string
  status: Status
  /** 'merged' when the policy merged the change with the stored record (record is the merge). */
  resolution?: 'merged'
  record?: WireRecord
  errors?: FieldError[]
  code?: string
}

export interface PushRequest {
  device_id: string
  cursor?: string
  changes: WireChange[]
}

export interface PushResponse {
  results: WireResult[]
  cursor?: string
}

/** POST /sync/pull's body: GET's parameters, for a cursor too long for a URL. */
export interface PullRequest {
  cursor?: string
  limit?: number
  device_id?: string
}

/** Past this many characters of query, a pull goes as POST /sync/pull (proxies refuse long request lines). */
export const maxPullURL = 4096

export interface PullResponse {
  changes: WireRecord[]
  cursor: string
  has_more: boolean
  /** Last page only: shared spaces the user can no longer read; drop their records, then store the cursor. */
  removed?: string[]
  /** Last page only: every shared space the returned cursor covers; forget the synced records of any other. */
  spaces?: string[]
}

/** POST /sync/stream/token's answer (the realtime plugin). */
export interface StreamToken {
  token: string
  expires_at: string
  /** The stream's URL with the token, relative to the server's origin. */
  url: string
}

/** Every non-2xx answer's body. */
export interface ErrorBody {
  error: { code: string; message: string; details?: FieldError[] }
}

/** The protocol's error codes. */
export const Codes = {
  invalid: 'invalid',
  unknownModel: 'unknown_model',
  invalidCursor: 'invalid_cursor',
  unauthenticated: 'unauthenticated',
  forbidden: 'forbidden',
  notFound: 'not_found',
  methodNotAllowed: 'method_not_allowed',
  conflict: 'conflict',
  resetRequired: 'reset_required',
  tooLarge: 'too_large',
  quotaExceeded: 'quota_exceeded',
  unsupportedMediaType: 'unsupported_media_type',
  rateLimited: 'rate_limited',
  internal: 'internal',
  unavailable: 'unavailable',
} as const
