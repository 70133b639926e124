import { errorCodes, VppdError } from './errors.js';

/** A decoded `.vpptoken` file. See docs/apple.md, "The content token". */
export interface DecodedSToken {
  /** The whole file content, trimmed: what Apple expects as the bearer credential. Secret. */
  readonly content: string;
  /** The opaque `token` field that identifies one location. Secret. */
  readonly token: string;
  /** When Apple stops accepting the token. */
  readonly expDate: Date;
  /** The organization the token belongs to. */
  readonly orgName: string;
}

const base64Pattern = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** Largest `.vpptoken` content accepted (real files are well under 1 KiB). */
export const maxSTokenLength = 16 * 1024;

function invalid(problem: string): VppdError {
  // The message names the problem only; the secret content is never echoed.
  return new VppdError(errorCodes.invalidSToken, `The VPP token is not valid: ${problem}.`, {
    details: { problem },
  });
}

/**
 * Decodes `.vpptoken` content (base64 of `{token, expDate, orgName}`) after trimming whitespace.
 * The file text may also come base64-encoded once more (published create scripts encode the file
 * they read, which is already base64): when the decoded text is itself the base64 of a valid
 * sToken, that text is the content. Throws VppdError(invalidSToken) saying what is wrong, never
 * echoing the secret; garbage gets the same errors either way.
 */
export function decodeSToken(input: unknown): DecodedSToken {
  if (typeof input !== 'string') throw invalid('it must be a string');
  const content = input.trim();
  if (content.length === 0) throw invalid('it is empty');
  if (content.length > maxSTokenLength) throw invalid(`it is longer than ${maxSTokenLength} characters`);
  if (!base64Pattern.test(content)) throw invalid('not base64');
  const text = Buffer.from(content, 'base64').toString('utf8');
  try {
    return decodeFields(content, text);
  } catch (error) {
    const inner = text.trim();
    if (inner.length === 0 || !base64Pattern.test(inner)) throw error;
    try {
      return decodeFields(inner, Buffer.from(inner, 'base64').toString('utf8'));
    } catch {
      throw error;
    }
  }
}

/** The fields of `.vpptoken` content whose base64 decoded to `text`. */
function decodeFields(content: string, text: string): DecodedSToken {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('the decoded content is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw invalid('the decoded content is not a JSON object');
  }
  const fields = parsed as Record<string, unknown>;
  const token = fields.token;
  if (typeof token !== 'string' || token.trim().length === 0) throw invalid('token missing');
  const orgName = fields.orgName;
  if (typeof orgName !== 'string' || orgName.trim().length === 0) throw invalid('orgName missing');
  const expRaw = fields.expDate;
  if (typeof expRaw !== 'string' || expRaw.trim().length === 0) throw invalid('expDate missing');
  const expDate = parseAppleDateTime(expRaw.trim());
  if (!expDate) throw invalid('expDate is not a date');
  return { content, token, expDate, orgName: orgName.trim() };
}

const dateTimePattern =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$/;

/**
 * Parses an ISO-8601 date-time with an offset as Apple writes it: `+HHMM` (usually), `+HH:MM` or `Z`.
 * Returns undefined for anything else, including impossible dates like February 30.
 */
export function parseAppleDateTime(text: string): Date | undefined {
  const m = dateTimePattern.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, offset] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (day > daysInMonth(year, month)) return undefined;
  let offsetMinutes = 0;
  if (offset && offset !== 'Z') {
    const sign = offset.startsWith('-') ? -1 : 1;
    const digits = offset.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4));
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = sign * (oh * 60 + om);
  }
  const millis = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offsetMinutes * 60_000;
  const date = new Date(utc);
  // Date.UTC maps years 0-99 to 1900-1999; set the full year explicitly for those.
  if (year < 100) date.setUTCFullYear(date.getUTCFullYear() - 1900);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function daysInMonth(year: number, month: number): number {
  const days = [31, isLeapYear(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  return days[month - 1] ?? 0;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** Encodes `.vpptoken` content the way Apple writes it (used by the simulator and tests). */
export function encodeSToken(fields: { token: string; expDate: Date; orgName: string }): string {
  const json = JSON.stringify({
    token: fields.token,
    expDate: formatAppleDateTime(fields.expDate),
    orgName: fields.orgName,
  });
  return Buffer.from(json, 'utf8').toString('base64');
}

/** Formats a date as Apple does in `.vpptoken` files: `2030-11-08T22:33:22+0000`. */
export function formatAppleDateTime(date: Date): string {
  return `${date.toISOString().slice(0, 19)}+0000`;
}
