import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from './helpers/graph-test-app.js';

// Checks the served $metadata against Microsoft's CSDL extract, as data: every enum, the vppToken
// entity and the complex types must agree on names, values, types and nullability. The extract is a
// fixture of this repository (test/fixtures/README.md), found relative to this file, not the cwd.
const reference = readFileSync(
  fileURLToPath(new URL('./fixtures/graph-beta-vpp.csdl.xml', import.meta.url)),
  'utf8',
);

interface Property {
  type: string;
  nullable: boolean;
}

function block(xml: string, kind: string, name: string): string | undefined {
  const match = new RegExp(`<${kind} Name="${name}"[^>]*>([\\s\\S]*?)</${kind}>`).exec(xml);
  return match?.[0];
}

function enumMembers(xml: string, name: string): Record<string, number> {
  const body = block(xml, 'EnumType', name);
  if (!body) throw new Error(`no EnumType ${name}`);
  return Object.fromEntries(
    [...body.matchAll(/<Member Name="([^"]+)" Value="(\d+)"/g)].map((m) => [m[1], Number(m[2])]),
  );
}

function properties(xml: string, kind: 'EntityType' | 'ComplexType', name: string): Record<string, Property> {
  const body = block(xml, kind, name);
  if (!body) throw new Error(`no ${kind} ${name}`);
  return Object.fromEntries(
    [...body.matchAll(/<Property Name="([^"]+)" Type="([^"]+)"([^>]*)>/g)].map((m) => [
      m[1],
      { type: m[2] as string, nullable: !/Nullable="false"/.test(m[3] ?? '') },
    ]),
  );
}

interface Operation {
  isBound: boolean;
  parameters: Record<string, { type: string; nullable: boolean; unicode: boolean }>;
  parameterOrder: string[];
  returnType?: Property;
}

function operation(xml: string, kind: 'Action' | 'Function', name: string): Operation | undefined {
  const body = block(xml, kind, name);
  if (!body) return undefined;
  const parameters = [...body.matchAll(/<Parameter Name="([^"]+)" Type="([^"]+)"([^>]*)>/g)];
  const returnType = /<ReturnType Type="([^"]+)"([^>]*)>/.exec(body);
  return {
    isBound: /^<[A-Za-z]+ Name="[^"]+" IsBound="true"/.test(body),
    parameters: Object.fromEntries(
      parameters.map((m) => [
        m[1],
        {
          type: m[2] as string,
          nullable: !/Nullable="false"/.test(m[3] ?? ''),
          unicode: !/Unicode="false"/.test(m[3] ?? ''),
        },
      ]),
    ),
    parameterOrder: parameters.map((m) => m[1] as string),
    ...(returnType
      ? {
          returnType: {
            type: returnType[1] as string,
            nullable: !/Nullable="false"/.test(returnType[2] ?? ''),
          },
        }
      : {}),
  };
}

/** Every type name a document refers to (property, parameter, return, base and singleton types). */
function referencedTypes(xml: string): Set<string> {
  const names = new Set<string>();
  for (const m of xml.matchAll(/ (?:Type|BaseType)="([^"]+)"/g)) {
    const name = /^Collection\((.+)\)$/.exec(m[1] as string)?.[1] ?? (m[1] as string);
    names.add(name);
  }
  return names;
}

function declaredTypes(xml: string): Set<string> {
  return new Set(
    [...xml.matchAll(/<(?:EnumType|EntityType|ComplexType) Name="([^"]+)"/g)].map((m) => `graph.${m[1]}`),
  );
}

function baseType(xml: string, kind: string, name: string): string | undefined {
  return new RegExp(`<${kind} Name="${name}"(?: BaseType="([^"]+)")?`).exec(xml)?.[1];
}

const enumNames = [
  'vppTokenSyncStatus',
  'vppTokenState',
  'vppTokenAccountType',
  'vppTokenActionFailureReason',
  'actionState',
  'appleDeviceDeliveryProtocol',
];
const complexNames = ['vppTokenActionResult', 'vppTokenRevokeLicensesActionResult', 'vppTokenLicenseSummary'];
// Operations of the extract, with the versions whose routes serve them (v1.0 registers two of them).
const operations = [
  { kind: 'Action', name: 'syncLicenses', versions: ['beta', 'v1.0'] },
  { kind: 'Action', name: 'revokeLicenses', versions: ['beta'] },
  { kind: 'Action', name: 'syncLicenseCounts', versions: ['beta'] },
  { kind: 'Function', name: 'getLicensesForApp', versions: ['beta', 'v1.0'] },
  { kind: 'Function', name: 'getExpiringVppTokenCount', versions: ['beta'] },
] as const;

let t: TestApp;
const served: Record<string, string> = {};
beforeAll(async () => {
  t = await createTestApp();
  for (const version of ['beta', 'v1.0']) {
    const response = await t.app.inject({ method: 'GET', url: `/${version}/$metadata` });
    expect(response.statusCode).toBe(200);
    served[version] = response.body;
  }
});
afterAll(async () => {
  await t.close();
});

describe('$metadata', () => {
  it('is well-formed enough: one Schema in the microsoft.graph namespace with the container', () => {
    const beta = served.beta as string;
    expect(beta.startsWith('<?xml version="1.0" encoding="utf-8"?>')).toBe(true);
    expect(beta).toContain('<Schema Namespace="microsoft.graph" Alias="graph"');
    expect(beta).toContain('<Singleton Name="deviceAppManagement" Type="graph.deviceAppManagement" />');
    expect(beta).toContain(
      '<NavigationProperty Name="vppTokens" Type="Collection(graph.vppToken)" ContainsTarget="true" />',
    );
    // Balanced elements (a cheap well-formedness check without an XML parser).
    for (const tag of ['EnumType', 'EntityType', 'ComplexType', 'Schema', 'EntityContainer']) {
      expect(beta.split(`<${tag} `).length).toBe(beta.split(`</${tag}>`).length);
    }
  });

  it.each(enumNames)('beta enum %s matches Microsoft’s CSDL exactly', (name) => {
    expect(enumMembers(served.beta as string, name)).toEqual(enumMembers(reference, name));
  });

  it('v1.0 enums omit only beta-only members, and the enum only beta properties use', () => {
    for (const name of enumNames) {
      // v1.0's vppToken has no appleDeviceAppDeliveryProtocolType and v1.0 serves no apps: nothing
      // there is typed appleDeviceDeliveryProtocol, so v1.0 does not declare it.
      if (name === 'appleDeviceDeliveryProtocol') {
        expect(block(served['v1.0'] as string, 'EnumType', name)).toBeUndefined();
        continue;
      }
      const expected = enumMembers(reference, name);
      if (name === 'vppTokenState') delete expected.duplicateLocationId;
      expect(enumMembers(served['v1.0'] as string, name)).toEqual(expected);
    }
  });

  it('vppToken has every CSDL property with the same type and nullability (plus the newer beta property)', () => {
    const expected = properties(reference, 'EntityType', 'vppToken');
    const beta = properties(served.beta as string, 'EntityType', 'vppToken');
    const { appleDeviceAppDeliveryProtocolType, ...rest } = beta;
    expect(rest).toEqual(expected);
    expect(appleDeviceAppDeliveryProtocolType).toEqual({
      type: 'graph.appleDeviceDeliveryProtocol',
      nullable: true,
    });
    expect(properties(served['v1.0'] as string, 'EntityType', 'vppToken')).toEqual(expected);
    expect(baseType(served.beta as string, 'EntityType', 'vppToken')).toBe('graph.entity');
    expect(served.beta).toMatch(
      /<EntityType Name="entity" Abstract="true">\s*<Key>\s*<PropertyRef Name="id" \/>/,
    );
  });

  it.each(complexNames)('complex type %s matches Microsoft’s CSDL', (name) => {
    for (const version of ['beta', 'v1.0']) {
      const xml = served[version] as string;
      expect(properties(xml, 'ComplexType', name)).toEqual(properties(reference, 'ComplexType', name));
      expect(baseType(xml, 'ComplexType', name)).toBe(baseType(reference, 'ComplexType', name));
    }
  });

  it('vppLicensingType (the licensingType of VPP apps) matches Microsoft’s CSDL; v1.0 has the supports… pair', () => {
    expect(properties(served.beta as string, 'ComplexType', 'vppLicensingType')).toEqual(
      properties(reference, 'ComplexType', 'vppLicensingType'),
    );
    expect(properties(served['v1.0'] as string, 'ComplexType', 'vppLicensingType')).toEqual(
      Object.fromEntries(
        Object.entries(properties(reference, 'ComplexType', 'vppLicensingType')).filter(([name]) =>
          name.startsWith('supports'),
        ),
      ),
    );
  });

  it.each(operations)('$kind $name matches Microsoft’s CSDL where served, and is absent elsewhere', (op) => {
    const expected = operation(reference, op.kind, op.name);
    expect(expected).toBeDefined();
    for (const version of ['beta', 'v1.0'] as const) {
      const actual = operation(served[version] as string, op.kind, op.name);
      if ((op.versions as readonly string[]).includes(version)) expect(actual).toEqual(expected);
      else expect(actual).toBeUndefined();
    }
  });

  it('the container names the served singletons; deviceAppManagement contains the served collections', () => {
    const beta = served.beta as string;
    const v1 = served['v1.0'] as string;
    const singletons = (xml: string) =>
      [
        ...(block(xml, 'EntityContainer', 'GraphService') ?? '').matchAll(
          /<Singleton Name="([^"]+)" Type="([^"]+)"/g,
        ),
      ].map((m) => `${m[1]}: ${m[2]}`);
    expect(singletons(beta)).toEqual([
      'deviceAppManagement: graph.deviceAppManagement',
      'deviceManagement: graph.deviceManagement',
    ]);
    expect(singletons(v1)).toEqual(['deviceAppManagement: graph.deviceAppManagement']);
    const navigation = (xml: string, type: string) =>
      [
        ...(block(xml, 'EntityType', type) ?? '').matchAll(
          /<NavigationProperty Name="([^"]+)" Type="([^"]+)" ContainsTarget="true"/g,
        ),
      ].map((m) => `${m[1]}: ${m[2]}`);
    expect(navigation(beta, 'deviceAppManagement')).toEqual([
      'mobileApps: Collection(graph.mobileApp)',
      'vppTokens: Collection(graph.vppToken)',
    ]);
    expect(navigation(v1, 'deviceAppManagement')).toEqual([
      'mobileApps: Collection(graph.mobileApp)',
      'vppTokens: Collection(graph.vppToken)',
    ]);
    for (const xml of [beta, v1])
      expect(navigation(xml, 'mobileApp')).toEqual(['assignments: Collection(graph.mobileAppAssignment)']);
    expect(navigation(beta, 'deviceManagement')).toEqual([
      'depOnboardingSettings: Collection(graph.depOnboardingSetting)',
    ]);
    expect(block(v1, 'EntityType', 'deviceManagement')).toBeUndefined();
    // getExpiringVppTokenCount is bound to this collection; vppd serves no setting, so only the key.
    expect(properties(beta, 'EntityType', 'depOnboardingSetting')).toEqual({});
    expect(baseType(beta, 'EntityType', 'depOnboardingSetting')).toBe('graph.entity');
  });

  it('every type a document refers to is declared in it; v1.0 declares only the app types Graph v1.0 has', () => {
    for (const version of ['beta', 'v1.0']) {
      const xml = served[version] as string;
      const declared = declaredTypes(xml);
      const dangling = [...referencedTypes(xml)].filter((n) => !n.startsWith('Edm.') && !declared.has(n));
      expect(dangling, version).toEqual([]);
    }
    const v1 = declaredTypes(served['v1.0'] as string);
    for (const name of ['macOsVppApp', 'iosVppAppAssignedLicense', 'depOnboardingSetting'])
      expect(v1.has(`graph.${name}`), name).toBe(false);
    for (const name of ['mobileApp', 'iosVppApp', 'mobileAppAssignment'])
      expect(v1.has(`graph.${name}`), name).toBe(true);
  });
});
