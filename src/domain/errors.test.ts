import { describe, expect, it } from 'vitest';
import { errorCodes, errors, isVppdError, VppdError } from './errors.js';
import { failureOutcome, isTransientFailure, type SyncFailureKind } from './sync-failure.js';
import { transitionActionState } from './sync-lifecycle.js';
import { transitionTokenState } from './token-state.js';

describe('errors', () => {
  it('factories produce typed errors with codes and details', () => {
    const cases: [VppdError, string, RegExp][] = [
      [errors.badRequest('bad', { a: 1 }), errorCodes.badRequest, /^bad$/],
      [errors.badRequest('bad'), errorCodes.badRequest, /^bad$/],
      [errors.notFound('vppToken', 'abc'), errorCodes.notFound, /vppToken with id 'abc' was not found/],
      [errors.conflict('dup', { id: 'x' }), errorCodes.conflict, /^dup$/],
      [errors.conflict('dup'), errorCodes.conflict, /^dup$/],
      [errors.notSupported('$expand is not supported'), errorCodes.notSupported, /\$expand/],
      [
        errors.config('VPPD_PORT', 'must be a port number'),
        errorCodes.config,
        /^VPPD_PORT: must be a port number$/,
      ],
      [errors.internal('boom', new Error('inner')), errorCodes.internal, /^boom$/],
      [errors.internal('boom'), errorCodes.internal, /^boom$/],
    ];
    for (const [error, code, message] of cases) {
      expect(error).toBeInstanceOf(VppdError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
      expect(isVppdError(error)).toBe(true);
      expect(isVppdError(error, code as VppdError['code'])).toBe(true);
    }
    expect(errors.notFound('vppToken', 'abc').details).toEqual({ resource: 'vppToken', id: 'abc' });
    expect(errors.internal('boom', 'why').cause).toBe('why');
    expect(isVppdError(new Error('x'))).toBe(false);
    expect(isVppdError(errors.badRequest('x'), 'conflict')).toBe(false);
  });

  it('exhaustive switches refuse values outside their unions', () => {
    const bogus = 'bogus' as SyncFailureKind;
    expect(() => failureOutcome(bogus)).toThrow(/unhandled failure kind/);
    expect(() => isTransientFailure(bogus)).toThrow(/unhandled failure kind/);
    expect(() => transitionTokenState('valid', { type: 'bogus' } as never)).toThrow(
      /unhandled token state event/,
    );
    expect(() => transitionActionState('bogus' as never, 'requested')).toThrow(/no transition/);
  });
});
