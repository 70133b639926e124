import { describe, expect, it } from 'vitest';
import { defineGraphEnum } from './graph-enum.js';

// A synthetic evolvable enum with a member added after the sentinel, as Graph adds them.
const colour = defineGraphEnum('colour', [
  { name: 'red', value: 0, description: { en: 'Red colour.', ru: 'Красный цвет.' } },
  {
    name: 'unknownFutureValue',
    value: 1,
    description: { en: 'Sentinel value.', ru: 'Служебное значение.' },
  },
  { name: 'green', value: 2, description: { en: 'Green colour.', ru: 'Зелёный цвет.' } },
]);

describe('evolvable enums (unknownFutureValue rule)', () => {
  it('hides members past the sentinel from callers that did not opt in', () => {
    expect(colour.evolvable).toBe(true);
    expect(colour.toWire('green')).toBe('unknownFutureValue');
    expect(() => colour.fromWire('green')).toThrowError(/Allowed members: red, unknownFutureValue\./);
    expect(colour.allowed()).toEqual(['red', 'unknownFutureValue']);
  });

  it('shows them to callers that opted in', () => {
    const optIn = { includeUnknownEnumMembers: true };
    expect(colour.toWire('green', optIn)).toBe('green');
    expect(colour.fromWire('green', optIn)).toBe('green');
    expect(colour.fromValue(2, optIn)).toBe('green');
    expect(() => colour.fromValue(2)).toThrow();
  });

  it('refuses to define duplicate names or values', () => {
    expect(() =>
      defineGraphEnum('dup', [
        { name: 'a', value: 0, description: { en: 'a', ru: 'а' } },
        { name: 'b', value: 0, description: { en: 'b', ru: 'б' } },
      ]),
    ).toThrow(/duplicate/);
  });

  it('describes rejected non-string input without echoing it whole', () => {
    expect(() => colour.fromWire('x'.repeat(200))).toThrowError(/x{64}…/);
    expect(() => colour.fromWire({ a: 1 })).toThrowError(/of type object/);
    expect(() => colour.fromWire([1])).toThrowError(/of type array/);
    expect(() => colour.member('nope' as 'red')).toThrow();
    expect(() => colour.toWire('nope' as 'red')).toThrow();
    expect(() => colour.toValue('nope' as 'red')).toThrow();
  });

  it('is() checks membership under the options', () => {
    expect(colour.is('red')).toBe(true);
    expect(colour.is('green')).toBe(false);
    expect(colour.is('green', { includeUnknownEnumMembers: true })).toBe(true);
    expect(colour.is(0)).toBe(false);
  });
});
