/**
 * The one error type of vppd. Every failure carries a `code` from {@link errorCodes}; only the HTTP
 * error handler and the CLI decide how a code is shown (status, exit code).
 */
export const errorCodes = {
  /** A request or input is malformed in a way not covered by a more precise code. */
  badRequest: 'badRequest',
  /** A value is not a member of the Graph enum it was given for. */
  invalidEnumMember: 'invalidEnumMember',
  /** A property the caller may not write (server-owned) was sent. */
  readOnlyProperty: 'readOnlyProperty',
  /** A property that the type does not have was sent. */
  unknownProperty: 'unknownProperty',
  /** The `.vpptoken` content cannot be decoded. */
  invalidSToken: 'invalidSToken',
  /** A state machine was asked for a transition its table does not allow (a bug, never user input). */
  illegalTransition: 'illegalTransition',
  /** The addressed resource does not exist (or belongs to another tenant). */
  notFound: 'notFound',
  /** The request conflicts with stored state (duplicate token, concurrent change). */
  conflict: 'conflict',
  /** No or invalid credentials. */
  unauthenticated: 'unauthenticated',
  /** Valid credentials without the needed permission. */
  forbidden: 'forbidden',
  /** A feature or query option that vppd does not implement. */
  notSupported: 'notSupported',
  /** Apple's service answered with an error (kept with its errorNumber in `details`). */
  appleFailure: 'appleFailure',
  /** Configuration is missing or malformed; start-up stops. */
  config: 'config',
  /** Unexpected failure inside vppd. */
  internal: 'internal',
} as const;

export type ErrorCode = (typeof errorCodes)[keyof typeof errorCodes];

export interface VppdErrorOptions {
  readonly cause?: unknown;
  /** Machine-readable facts about the failure (never secrets). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Base error: a code from {@link errorCodes}, a human message, optional details and cause. */
export class VppdError extends Error {
  override readonly name = 'VppdError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: VppdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** True when `error` is a {@link VppdError}, optionally with the given code. */
export function isVppdError(error: unknown, code?: ErrorCode): error is VppdError {
  return error instanceof VppdError && (code === undefined || error.code === code);
}

/** Factories for the common errors, so messages stay uniform. */
export const errors = {
  badRequest: (message: string, details?: Record<string, unknown>) =>
    new VppdError(errorCodes.badRequest, message, details ? { details } : {}),
  notFound: (resource: string, id: string) =>
    new VppdError(errorCodes.notFound, `The ${resource} with id '${id}' was not found.`, {
      details: { resource, id },
    }),
  conflict: (message: string, details?: Record<string, unknown>) =>
    new VppdError(errorCodes.conflict, message, details ? { details } : {}),
  notSupported: (message: string) => new VppdError(errorCodes.notSupported, message),
  readOnlyProperty: (typeName: string, property: string) =>
    new VppdError(
      errorCodes.readOnlyProperty,
      `The property '${property}' of type '${typeName}' is read-only and cannot be set.`,
      { details: { property } },
    ),
  unknownProperty: (typeName: string, property: string) =>
    new VppdError(
      errorCodes.unknownProperty,
      `The property '${property}' does not exist on type '${typeName}'. Make sure to only use property names that are defined by the type.`,
      { details: { property } },
    ),
  illegalTransition: (machine: string, from: string, event: string) =>
    new VppdError(errorCodes.illegalTransition, `${machine}: no transition from '${from}' on '${event}'.`, {
      details: { machine, from, event },
    }),
  config: (setting: string, problem: string) =>
    new VppdError(errorCodes.config, `${setting}: ${problem}`, { details: { setting } }),
  internal: (message: string, cause?: unknown) =>
    new VppdError(errorCodes.internal, message, cause === undefined ? {} : { cause }),
} as const;
