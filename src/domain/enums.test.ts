import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vppEnums, vppTokenState, vppTokenSyncStatus } from './enums.js';
import { isVppdError } from './errors.js';
import type { GraphEnum } from './graph-enum.js';

/** Microsoft's definitions, parsed from the CSDL extract in test/fixtures (see its README.md). */
function readCsdlEnums(): Map<string, { name: string; value: number }[]> {
  const xml = readFileSync(
    fileURLToPath(new URL('../../test/fixtures/graph-beta-vpp.csdl.xml', import.meta.url)),
    'utf8',
  );
  const enums = new Map<string, { name: string; value: number }[]>();
  for (const match of xml.matchAll(/<EnumType Name="([^"]+)"[^>]*>([\s\S]*?)<\/EnumType>/g)) {
    const members = [...match[2]!.matchAll(/<Member Name="([^"]+)" Value="(\d+)"/g)].map((m) => ({
      name: m[1]!,
      value: Number(m[2]),
    }));
    enums.set(match[1]!, members);
  }
  return enums;
}

describe('Graph enums against Microsoft CSDL', () => {
  const csdl = readCsdlEnums();

  it('the CSDL extract defines exactly the six enums vppd implements', () => {
    expect([...csdl.keys()].sort()).toEqual(Object.keys(vppEnums).sort());
  });

  for (const [name, graphEnum] of Object.entries(vppEnums)) {
    it(`${name}: names and values match exactly, in order`, () => {
      const ours = graphEnum.members.map((m) => ({ name: m.name, value: m.value }));
      expect(ours).toEqual(csdl.get(name));
      expect(graphEnum.name).toBe(name);
    });

    it(`${name}: evolvable exactly when CSDL has unknownFutureValue`, () => {
      const hasSentinel = csdl.get(name)!.some((m) => m.name === 'unknownFutureValue');
      expect(graphEnum.evolvable).toBe(hasSentinel);
    });

    it(`${name}: every member has English and Russian descriptions`, () => {
      for (const m of graphEnum.members) {
        expect(m.description.en.length).toBeGreaterThan(5);
        expect(m.description.ru).toMatch(/[а-яё]/i);
        expect(m.description.ru).not.toBe(m.description.en);
      }
    });
  }

  it('vppTokenSyncStatus is none=0, inProgress=1, completed=2, failed=3', () => {
    expect(vppTokenSyncStatus.names.map((n) => [n, vppTokenSyncStatus.toValue(n)])).toEqual([
      ['none', 0],
      ['inProgress', 1],
      ['completed', 2],
      ['failed', 3],
    ]);
  });
});

const allEnums = Object.entries(vppEnums) as [string, GraphEnum<string>][];

describe('wire codecs', () => {
  it('decodes exact member names only', () => {
    expect(vppTokenSyncStatus.fromWire('inProgress')).toBe('inProgress');
    for (const bad of [
      'Completed',
      'INPROGRESS',
      'inprogress',
      ' failed',
      2,
      null,
      undefined,
      {},
      [],
      true,
    ]) {
      expect(() => vppTokenSyncStatus.fromWire(bad)).toThrowError(
        /Allowed members: none, inProgress, completed, failed/,
      );
    }
  });

  it('rejects with a typed error naming the enum', () => {
    try {
      vppTokenSyncStatus.fromWire('Failed');
      expect.unreachable();
    } catch (error) {
      expect(isVppdError(error, 'invalidEnumMember')).toBe(true);
      expect((error as Error).message).toContain("'vppTokenSyncStatus'");
      expect((error as Error).message).toContain("'Failed'");
    }
  });

  it('maps numeric values both ways and rejects others', () => {
    expect(vppTokenSyncStatus.fromValue(3)).toBe('failed');
    expect(vppTokenSyncStatus.toValue('failed')).toBe(3);
    for (const bad of [4, -1, 1.5, '3', Number.NaN, null]) {
      expect(() => vppTokenSyncStatus.fromValue(bad)).toThrowError(/not a valid member/);
    }
  });

  it('v1.0 does not accept beta-only members and sends their fallback', () => {
    expect(() => vppTokenState.fromWire('duplicateLocationId', { version: 'v1.0' })).toThrowError(
      /Allowed members: unknown, valid, expired, invalid, assignedToExternalMDM\./,
    );
    expect(vppTokenState.toWire('duplicateLocationId', { version: 'v1.0' })).toBe('invalid');
    expect(vppTokenState.toWire('duplicateLocationId')).toBe('duplicateLocationId');
  });

  for (const [name, graphEnum] of allEnums) {
    it(`${name}: every member round-trips through wire and value (property)`, () => {
      const options = { includeUnknownEnumMembers: true };
      fc.assert(
        fc.property(fc.constantFrom(...graphEnum.names), (member) => {
          expect(graphEnum.fromWire(graphEnum.toWire(member, options), options)).toBe(member);
          expect(graphEnum.fromValue(graphEnum.toValue(member), options)).toBe(member);
        }),
      );
    });

    it(`${name}: random strings never decode unless they are exactly a member (property)`, () => {
      fc.assert(
        fc.property(fc.string(), (text) => {
          if ((graphEnum.names as readonly string[]).includes(text)) return;
          expect(() => graphEnum.fromWire(text, { includeUnknownEnumMembers: true })).toThrow();
        }),
        { numRuns: 500 },
      );
    });

    it(`${name}: case variants of members never decode (property)`, () => {
      fc.assert(
        fc.property(fc.constantFrom(...graphEnum.names), fc.boolean(), (member, upper) => {
          const variant = upper ? member.toUpperCase() : member[0]!.toUpperCase() + member.slice(1);
          if (variant === member) return;
          expect(() => graphEnum.fromWire(variant)).toThrow();
        }),
      );
    });
  }
});
