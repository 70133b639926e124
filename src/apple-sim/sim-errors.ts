/**
 * The errors the simulator answers with: Apple's numbers, messages and HTTP statuses from
 * docs/apple.md, "Errors, including inside HTTP 200". `service/config` publishes this table as
 * `errorCodes`.
 */
export const simErrors = {
  loginRequired: { errorNumber: 9601, httpStatus: 401, errorMessage: 'Login required' },
  invalidArgument: { errorNumber: 9602, httpStatus: 400, errorMessage: 'Invalid argument' },
  internalError: { errorNumber: 9603, httpStatus: 500, errorMessage: 'Internal error' },
  userNotFound: { errorNumber: 9609, httpStatus: 400, errorMessage: 'Registered user not found' },
  licenseNotFound: { errorNumber: 9610, httpStatus: 400, errorMessage: 'License not found' },
  tokenExpired: { errorNumber: 9621, httpStatus: 401, errorMessage: 'Authentication token has expired' },
  invalidToken: { errorNumber: 9622, httpStatus: 401, errorMessage: 'Invalid authentication token' },
  tokenRevoked: { errorNumber: 9625, httpStatus: 401, errorMessage: 'The server has revoked the sToken' },
  serviceRemoved: { errorNumber: 9634, httpStatus: 410, errorMessage: 'This service has been removed' },
  tooManyRequests: { errorNumber: 9646, httpStatus: 429, errorMessage: 'Too many requests' },
  badPageIndex: { errorNumber: 9650, httpStatus: 400, errorMessage: 'Invalid page index' },
  unknownEvent: { errorNumber: 9708, httpStatus: 400, errorMessage: 'Unknown eventId' },
  notEnoughLicenses: { errorNumber: 9709, httpStatus: 400, errorMessage: 'Not enough licenses' },
  badVersionId: { errorNumber: 9721, httpStatus: 400, errorMessage: 'Invalid sinceVersionId' },
  malformedAuthorization: {
    errorNumber: 9722,
    httpStatus: 401,
    errorMessage: 'The Authorization header is missing or malformed',
  },
  methodNotAllowed: { errorNumber: 9724, httpStatus: 405, errorMessage: 'Method not allowed' },
  unsupportedMediaType: {
    errorNumber: 9725,
    httpStatus: 415,
    errorMessage: 'Content-Type must be application/json',
  },
} as const;

export type SimErrorName = keyof typeof simErrors;

export interface SimErrorEntry {
  readonly errorNumber: number;
  readonly httpStatus: number;
  readonly errorMessage: string;
}

/** The HTTP status Apple uses for an error number (500 for numbers the table does not know). */
export function httpStatusForErrorNumber(errorNumber: number): number {
  for (const entry of Object.values(simErrors) as SimErrorEntry[]) {
    if (entry.errorNumber === errorNumber) return entry.httpStatus;
  }
  return 500;
}

/** Apple's message for an error number, or a generic one. */
export function messageForErrorNumber(errorNumber: number): string {
  for (const entry of Object.values(simErrors) as SimErrorEntry[]) {
    if (entry.errorNumber === errorNumber) return entry.errorMessage;
  }
  return `Error ${errorNumber}`;
}

/** An Apple error the simulator answers with; the HTTP layer renders it as `{errorNumber, errorMessage}`. */
export class SimApiError extends Error {
  override readonly name = 'SimApiError';
  readonly errorNumber: number;
  readonly httpStatus: number;

  constructor(entry: SimErrorEntry, message?: string) {
    super(message ?? entry.errorMessage);
    this.errorNumber = entry.errorNumber;
    this.httpStatus = entry.httpStatus;
  }
}
