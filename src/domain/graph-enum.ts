import { errorCodes, VppdError } from './errors.js';

/** Languages in which vppd describes enum members. */
export const languages = ['en', 'ru'] as const;
export type Language = (typeof languages)[number];

/** One member of a Graph enum as written in a definition. */
export interface GraphEnumMemberSpec<N extends string = string> {
  readonly name: N;
  readonly value: number;
  readonly description: Readonly<Record<Language, string>>;
  /** Graph versions that serve the member (default: both). */
  readonly versions?: readonly GraphVersion[];
  /** The member sent instead where this one is not served (a version that lacks it). */
  readonly fallback?: N;
}

export const graphVersions = ['beta', 'v1.0'] as const;
export type GraphVersion = (typeof graphVersions)[number];

/** Options of the wire codecs. */
export interface EnumCodecOptions {
  /**
   * Graph's evolvable-enum rule: members past `unknownFutureValue` are only sent to, and accepted
   * from, callers that opted in (`Prefer: include-unknown-enum-members`).
   */
  readonly includeUnknownEnumMembers?: boolean;
  /** The Graph version the value travels in (default `beta`). */
  readonly version?: GraphVersion;
}

/** The sentinel member name of Graph's evolvable enums. */
export const unknownFutureValue = 'unknownFutureValue';

/** A Graph enum: its members as data plus the codecs that are the only way in and out of the wire. */
export interface GraphEnum<N extends string> {
  /** Graph's type name without namespace, e.g. `vppTokenSyncStatus`. */
  readonly name: string;
  readonly members: readonly GraphEnumMemberSpec<N>[];
  /** Whether the enum has the `unknownFutureValue` sentinel. */
  readonly evolvable: boolean;
  /** Member names in value order. */
  readonly names: readonly N[];
  /** The member, by name (exact). */
  member(name: N): GraphEnumMemberSpec<N>;
  /** True when `input` is exactly a member name available under `options`. */
  is(input: unknown, options?: EnumCodecOptions): input is N;
  /** The wire string of a member, honouring the evolvable rule and the version. */
  toWire(member: N, options?: EnumCodecOptions): string;
  /** Decodes a wire value: exactly a member name (case-sensitive) or a typed error listing the members. */
  fromWire(input: unknown, options?: EnumCodecOptions): N;
  /** The numeric value of a member. */
  toValue(member: N): number;
  /** The member with a numeric value, or a typed error. */
  fromValue(value: unknown, options?: EnumCodecOptions): N;
  /** Member names available under `options`, in value order. */
  allowed(options?: EnumCodecOptions): readonly N[];
}

/** Defines a Graph enum from its members; checks that names and values are unique. */
export function defineGraphEnum<const N extends string>(
  name: string,
  members: readonly GraphEnumMemberSpec<N>[],
): GraphEnum<N> {
  const byName = new Map<string, GraphEnumMemberSpec<N>>();
  const byValue = new Map<number, GraphEnumMemberSpec<N>>();
  for (const m of members) {
    if (byName.has(m.name) || byValue.has(m.value)) {
      throw new Error(`enum ${name}: duplicate member ${m.name}=${m.value}`);
    }
    byName.set(m.name, m);
    byValue.set(m.value, m);
  }
  const sentinel = byName.get(unknownFutureValue);
  const evolvable = sentinel !== undefined;

  const available = (m: GraphEnumMemberSpec<N>, options: EnumCodecOptions = {}): boolean => {
    const version = options.version ?? 'beta';
    if (m.versions && !m.versions.includes(version)) return false;
    if (sentinel && m.value > sentinel.value && !options.includeUnknownEnumMembers) return false;
    return true;
  };

  const allowed = (options?: EnumCodecOptions): N[] =>
    members.filter((m) => available(m, options)).map((m) => m.name);

  const reject = (input: unknown, options?: EnumCodecOptions): never => {
    const shown = describeInput(input);
    throw new VppdError(
      errorCodes.invalidEnumMember,
      `The value ${shown} is not a valid member of '${name}'. Allowed members: ${allowed(options).join(', ')}.`,
      { details: { enum: name, allowed: allowed(options) } },
    );
  };

  const sorted = [...members].sort((a, b) => a.value - b.value);

  return {
    name,
    members: sorted,
    evolvable,
    names: sorted.map((m) => m.name),
    member(memberName) {
      const m = byName.get(memberName);
      if (!m) return reject(memberName);
      return m;
    },
    is(input, options): input is N {
      if (typeof input !== 'string') return false;
      const m = byName.get(input);
      return m !== undefined && available(m, options);
    },
    toWire(member, options) {
      const m = byName.get(member);
      if (!m) return reject(member, options);
      if (available(m, options)) return m.name;
      // A member the caller cannot see: evolvable enums send the sentinel, closed ones have none.
      if (sentinel && m.value > sentinel.value) return sentinel.name;
      if (m.fallback !== undefined) return m.fallback;
      return reject(member, options);
    },
    fromWire(input, options) {
      if (typeof input === 'string') {
        const m = byName.get(input);
        if (m && available(m, options)) return m.name;
      }
      return reject(input, options);
    },
    toValue(member) {
      const m = byName.get(member);
      if (!m) return reject(member);
      return m.value;
    },
    fromValue(value, options) {
      if (typeof value === 'number' && Number.isInteger(value)) {
        const m = byValue.get(value);
        if (m && available(m, options)) return m.name;
      }
      return reject(value, options);
    },
    allowed,
  };
}

/** A short, safe rendering of a rejected value for an error message. */
function describeInput(input: unknown): string {
  if (input === null) return 'null';
  if (input === undefined) return 'undefined';
  if (typeof input === 'string') {
    const clipped = input.length > 64 ? `${input.slice(0, 64)}…` : input;
    return `'${clipped}'`;
  }
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  return `of type ${Array.isArray(input) ? 'array' : typeof input}`;
}
