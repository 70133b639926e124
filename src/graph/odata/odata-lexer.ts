import { errors } from '../../domain/errors.js';

/** One token of an OData expression (`$filter`, `$orderby`). `pos` is the 1-based character position. */
export type ODataToken =
  | { readonly kind: 'lparen' | 'rparen' | 'comma' | 'end'; readonly pos: number }
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  | { readonly kind: 'number'; readonly text: string; readonly pos: number }
  /** A full date-time literal; `text` is normalised (a space that was a decoded `+` is back to `+`). */
  | { readonly kind: 'dateTime'; readonly text: string; readonly pos: number }
  /** A date without time (Edm.Date): lexed only to give a precise error. */
  | { readonly kind: 'date'; readonly text: string; readonly pos: number }
  | { readonly kind: 'guid'; readonly text: string; readonly pos: number }
  /** A name: property, function, keyword; may be dotted (`microsoft.graph.x`). */
  | { readonly kind: 'identifier'; readonly text: string; readonly pos: number }
  /** `microsoft.graph.vppTokenSyncStatus'failed'`. */
  | {
      readonly kind: 'enumLiteral';
      readonly typeName: string;
      readonly value: string;
      readonly pos: number;
    };

const guidPattern = /[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/y;
// OData's dateTimeOffsetValue; the offset may arrive as ` hh:mm` when a client left `+` unencoded in
// the URL (form decoding turns it into a space): nothing else can follow a date that way, so it is safe.
const dateTimePattern = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+\- ]\d{2}:\d{2})/y;
const datePattern = /\d{4}-\d{2}-\d{2}/y;
const numberPattern = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const identifierPattern = /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/y;
const identifierChar = /[A-Za-z0-9_.\-:]/;
const operatorWords = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le', 'and', 'or', 'not', 'in', 'has']);

function matchAt(pattern: RegExp, text: string, at: number): string | undefined {
  pattern.lastIndex = at;
  const m = pattern.exec(text);
  return m ? m[0] : undefined;
}

/** Whether the character after a literal ends it (so `2026-01-01T00:00:00Zabc` is not a date). */
function endsToken(text: string, at: number): boolean {
  const next = text[at];
  return next === undefined || !identifierChar.test(next);
}

/**
 * Splits an OData expression into tokens. Throws VppdError(badRequest | notSupported) saying what is
 * wrong and where; `option` names the query option for the message.
 */
export function tokenizeOData(text: string, option: string): ODataToken[] {
  const tokens: ODataToken[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const pos = i + 1;
    if (/\s/.test(c)) {
      i += 1;
      continue;
    }
    if (c === '(' || c === ')' || c === ',') {
      tokens.push({ kind: c === '(' ? 'lparen' : c === ')' ? 'rparen' : 'comma', pos });
      i += 1;
      continue;
    }
    if (c === "'") {
      const { value, next } = readString(text, i, option);
      tokens.push({ kind: 'string', value, pos });
      i = next;
      continue;
    }
    const guid = matchAt(guidPattern, text, i);
    if (guid !== undefined && endsToken(text, i + guid.length)) {
      tokens.push({ kind: 'guid', text: guid, pos });
      i += guid.length;
      continue;
    }
    if (/[0-9-]/.test(c)) {
      const dateTime = matchAt(dateTimePattern, text, i);
      if (dateTime !== undefined && endsToken(text, i + dateTime.length)) {
        const normalised =
          dateTime.length > 6 && dateTime.at(-6) === ' '
            ? `${dateTime.slice(0, -6)}+${dateTime.slice(-5)}`
            : dateTime;
        tokens.push({ kind: 'dateTime', text: normalised, pos });
        i += dateTime.length;
        continue;
      }
      const date = matchAt(datePattern, text, i);
      if (date !== undefined && endsToken(text, i + date.length)) {
        tokens.push({ kind: 'date', text: date, pos });
        i += date.length;
        continue;
      }
      const number = matchAt(numberPattern, text, i);
      if (number !== undefined) {
        if (!endsToken(text, i + number.length)) {
          throw errors.badRequest(
            `Syntax error in ${option} at position ${pos}: '${clip(text.slice(i, i + number.length + 1))}' is not a valid literal.`,
          );
        }
        tokens.push({ kind: 'number', text: number, pos });
        i += number.length;
        continue;
      }
    }
    const identifier = matchAt(identifierPattern, text, i);
    if (identifier !== undefined) {
      i += identifier.length;
      // `name eq'x'`: an operator glued to a string is the operator, not a typed literal.
      if (text[i] === "'" && !operatorWords.has(identifier.toLowerCase())) {
        // A typed literal: Namespace.EnumType'member' (enum) or duration'…', binary'…' and the like.
        const { value, next } = readString(text, i, option);
        i = next;
        if (!identifier.includes('.')) {
          throw errors.notSupported(
            `${option}: the typed literal ${identifier}'…' at position ${pos} is not supported.`,
          );
        }
        tokens.push({ kind: 'enumLiteral', typeName: identifier, value, pos });
        continue;
      }
      tokens.push({ kind: 'identifier', text: identifier, pos });
      continue;
    }
    if (c === '/') {
      throw errors.notSupported(
        `${option}: property paths and lambda operators (any/all) are not supported (position ${pos}).`,
      );
    }
    if (c === '@') {
      throw errors.notSupported(`${option}: parameter aliases (@name) are not supported (position ${pos}).`);
    }
    if (c === '$') {
      throw errors.notSupported(
        `${option}: '${clip(text.slice(i).split(/[^$A-Za-z]/)[0] ?? c)}' is not supported (position ${pos}).`,
      );
    }
    if (c === '[' || c === ']') {
      throw errors.badRequest(
        `Syntax error in ${option} at position ${pos}: JSON array literals are not supported; write lists as ('a','b').`,
      );
    }
    if (c === '"') {
      throw errors.badRequest(
        `Syntax error in ${option} at position ${pos}: string literals use single quotes ('text'), with '' for a quote inside.`,
      );
    }
    throw errors.badRequest(`Syntax error in ${option} at position ${pos}: unexpected character '${c}'.`);
  }
  tokens.push({ kind: 'end', pos: text.length + 1 });
  return tokens;
}

/** Reads a single-quoted string starting at `start` (`''` is an escaped quote). */
function readString(text: string, start: number, option: string): { value: string; next: number } {
  let value = '';
  let i = start + 1;
  for (;;) {
    const quote = text.indexOf("'", i);
    if (quote < 0) {
      throw errors.badRequest(
        `Syntax error in ${option} at position ${start + 1}: the string literal is not terminated (a quote inside is written '').`,
      );
    }
    value += text.slice(i, quote);
    if (text[quote + 1] === "'") {
      value += "'";
      i = quote + 2;
      continue;
    }
    if (value.includes('\u0000')) {
      // PostgreSQL text cannot hold NUL; reject it for every database so behaviour is the same.
      throw errors.badRequest(`${option}: string literals cannot contain the NUL character.`);
    }
    return { value, next: quote + 1 };
  }
}

/** Shortens user text quoted back in an error message. */
export function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
