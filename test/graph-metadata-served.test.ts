// $metadata against what vppd actually serves, from three sides:
//  - the official beta SDK's Kiota models (an independent copy of Graph's schema) know every declared
//    property under the same wire name with a compatible type, and the same derivations;
//  - the routes registered under each version are exactly the paths $metadata describes;
//  - over a real socket, after a real sync against the Apple simulator, every response body (apps,
//    licenses, tokens, function results) conforms to the type its `@odata.context` names, and the
//    full entities carry exactly the declared properties.
import * as kiotaModels from '@microsoft/msgraph-beta-sdk/models/index.js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/server/app.js';
import { createTestApp, type TestApp } from './helpers/graph-test-app.js';
import { type SurfaceFixture, startSurfaceFixture, surfaceTenantA } from './helpers/vpp-surface-fixture.js';

// ---- a small XML reader and a CSDL view over it (independent of the code that writes the document) --

interface XmlElement {
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: XmlElement[];
}

const unescapeXml = (text: string) =>
  text
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

/** Parses element structure; throws on anything malformed (stray text, unbalanced or unknown markup). */
function parseXml(xml: string): XmlElement {
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|(\s+)/y;
  const root: XmlElement = { name: '#document', attrs: {}, children: [] };
  const stack: XmlElement[] = [root];
  while (token.lastIndex < xml.length) {
    const at = token.lastIndex;
    const m = token.exec(xml);
    if (!m) throw new Error(`malformed XML at ${at}: ${xml.slice(at, at + 40)}`);
    const [, closing, name, rawAttrs, selfClosing] = m;
    if (name === undefined) continue;
    const top = stack[stack.length - 1] as XmlElement;
    if (closing) {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
      continue;
    }
    const attrs = Object.fromEntries(
      [...(rawAttrs ?? '').matchAll(/([\w:.-]+)="([^"]*)"/g)].map((a) => [a[1], unescapeXml(a[2] ?? '')]),
    );
    const element: XmlElement = { name, attrs, children: [] };
    top.children.push(element);
    if (!selfClosing) stack.push(element);
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]?.name}>`);
  return root;
}

interface TypeView {
  readonly kind: 'EnumType' | 'EntityType' | 'ComplexType';
  readonly name: string;
  readonly baseType?: string;
  readonly abstract: boolean;
  readonly properties: Map<string, { type: string; nullable: boolean }>;
  readonly navigation: Map<string, string>;
  readonly members: string[];
}

interface OperationView {
  readonly kind: 'Action' | 'Function';
  readonly name: string;
  readonly bindingType: string;
  readonly returnType?: string;
}

interface Csdl {
  readonly types: Map<string, TypeView>;
  readonly operations: OperationView[];
  readonly singletons: Map<string, string>;
}

/** `microsoft.graph.x` and `graph.x` are the same name; this keeps the alias form. */
const qualified = (name: string) => name.replace(/^microsoft\.graph\./, 'graph.');
const collectionOf = (type: string) => /^Collection\((.+)\)$/.exec(type)?.[1];

function readCsdl(xml: string): Csdl {
  const edmx = parseXml(xml).children.find((e) => e.name === 'edmx:Edmx');
  const schema = edmx?.children
    .find((e) => e.name === 'edmx:DataServices')
    ?.children.find((e) => e.name === 'Schema');
  if (schema?.attrs.Namespace !== 'microsoft.graph' || schema.attrs.Alias !== 'graph')
    throw new Error('no microsoft.graph Schema');
  const types = new Map<string, TypeView>();
  const operations: OperationView[] = [];
  const singletons = new Map<string, string>();
  for (const e of schema.children) {
    const name = e.attrs.Name as string;
    if (e.name === 'EnumType' || e.name === 'EntityType' || e.name === 'ComplexType') {
      const child = (kind: string) => e.children.filter((c) => c.name === kind);
      types.set(`graph.${name}`, {
        kind: e.name,
        name,
        ...(e.attrs.BaseType ? { baseType: e.attrs.BaseType } : {}),
        abstract: e.attrs.Abstract === 'true',
        properties: new Map(
          child('Property').map((p) => [
            p.attrs.Name as string,
            { type: p.attrs.Type as string, nullable: p.attrs.Nullable !== 'false' },
          ]),
        ),
        navigation: new Map(
          child('NavigationProperty').map((p) => {
            if (p.attrs.ContainsTarget !== 'true')
              throw new Error(`${name}.${p.attrs.Name} is not contained`);
            return [p.attrs.Name as string, p.attrs.Type as string];
          }),
        ),
        members: child('Member').map((m) => m.attrs.Name as string),
      });
    } else if (e.name === 'Action' || e.name === 'Function') {
      if (e.attrs.IsBound !== 'true') throw new Error(`${name} is not bound`);
      const [binding] = e.children.filter((c) => c.name === 'Parameter');
      const returnType = e.children.find((c) => c.name === 'ReturnType')?.attrs.Type;
      operations.push({
        kind: e.name,
        name,
        bindingType: binding?.attrs.Type as string,
        ...(returnType ? { returnType } : {}),
      });
    } else if (e.name === 'EntityContainer') {
      for (const s of e.children) {
        if (s.name !== 'Singleton') throw new Error(`unexpected ${s.name} in the container`);
        singletons.set(s.attrs.Name as string, s.attrs.Type as string);
      }
    } else {
      throw new Error(`unexpected ${e.name} in the schema`);
    }
  }
  return { types, operations, singletons };
}

function typeOf(csdl: Csdl, name: string): TypeView {
  const type = csdl.types.get(qualified(name));
  if (!type) throw new Error(`$metadata declares no ${name}`);
  return type;
}

/** The type and its base types, most derived first. */
function lineage(csdl: Csdl, name: string): TypeView[] {
  const chain: TypeView[] = [];
  for (let t: string | undefined = name; t !== undefined; ) {
    const type = typeOf(csdl, t);
    chain.push(type);
    t = type.baseType;
  }
  return chain;
}

const allProperties = (csdl: Csdl, name: string) =>
  new Map(lineage(csdl, name).flatMap((t) => [...t.properties]));
const allNavigation = (csdl: Csdl, name: string) =>
  new Map(lineage(csdl, name).flatMap((t) => [...t.navigation]));
const derivesFrom = (csdl: Csdl, name: string, base: string) =>
  lineage(csdl, name).some((t) => `graph.${t.name}` === qualified(base));
const derivedTypes = (csdl: Csdl, base: string) =>
  [...csdl.types.keys()].filter((n) => n !== qualified(base) && derivesFrom(csdl, n, base));

// ---- conformance of JSON values to CSDL types ---------------------------------------------------------

const int32 = { min: -2147483648, max: 2147483647 };
const isoDateTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface ConformOptions {
  /** The body is a full entity (no $select): it must carry every declared property. */
  readonly complete: boolean;
}

/** Problems of `value` as a `type` (empty when it conforms). */
function conform(
  csdl: Csdl,
  value: unknown,
  type: string,
  nullable: boolean,
  at: string,
  options: ConformOptions,
): string[] {
  if (value === null) return nullable ? [] : [`${at}: null, but ${type} is Nullable="false"`];
  const itemType = collectionOf(type);
  if (itemType !== undefined) {
    if (!Array.isArray(value)) return [`${at}: ${JSON.stringify(value)} is not a collection`];
    return value.flatMap((item, i) => conform(csdl, item, itemType, false, `${at}[${i}]`, options));
  }
  const fail = (what: string) => [`${at}: ${JSON.stringify(value)} is not ${what}`];
  switch (type) {
    case 'Edm.String':
      return typeof value === 'string' ? [] : fail(type);
    case 'Edm.Boolean':
      return typeof value === 'boolean' ? [] : fail(type);
    case 'Edm.Int32':
      return Number.isInteger(value) && (value as number) >= int32.min && (value as number) <= int32.max
        ? []
        : fail(type);
    case 'Edm.DateTimeOffset':
      return typeof value === 'string' && isoDateTime.test(value) && !Number.isNaN(Date.parse(value))
        ? []
        : fail(type);
    case 'Edm.Binary':
      return typeof value === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(value) ? [] : fail(type);
  }
  if (type.startsWith('Edm.')) return [`${at}: the test does not know ${type}`];
  const declared = typeOf(csdl, type);
  if (declared.kind === 'EnumType') {
    return typeof value === 'string' && declared.members.includes(value) ? [] : fail(`a member of ${type}`);
  }
  if (typeof value !== 'object' || Array.isArray(value)) return fail(`an instance of ${type}`);
  const body = value as Record<string, unknown>;
  let actual = qualified(type);
  const odataType = body['@odata.type'];
  if (odataType !== undefined) {
    if (typeof odataType !== 'string' || !odataType.startsWith('#microsoft.graph.'))
      return [`${at}: @odata.type ${JSON.stringify(odataType)} is not '#microsoft.graph.<type>'`];
    actual = qualified(odataType.slice(1));
    if (!csdl.types.has(actual))
      return [`${at}: @odata.type names ${actual}, which $metadata does not declare`];
    if (!derivesFrom(csdl, actual, type)) return [`${at}: ${actual} does not derive from ${type}`];
  }
  if (typeOf(csdl, actual).abstract) return [`${at}: an abstract ${actual} without a concrete @odata.type`];
  const properties = allProperties(csdl, actual);
  const problems: string[] = [];
  for (const [name, propertyValue] of Object.entries(body)) {
    if (name.startsWith('@odata.')) continue;
    const property = properties.get(name);
    if (!property) {
      problems.push(`${at}.${name}: not a property of ${actual} in $metadata`);
      continue;
    }
    problems.push(
      ...conform(csdl, propertyValue, property.type, property.nullable, `${at}.${name}`, options),
    );
  }
  if (options.complete) {
    for (const name of properties.keys())
      if (!(name in body)) problems.push(`${at}: declared ${actual}.${name} is not sent`);
  }
  return problems;
}

/**
 * The type an `@odata.context` fragment names: a singleton followed by navigation properties, keys,
 * type casts and `$entity`; or a type (`Edm.Int32`, `microsoft.graph.vppToken`, `Collection(...)`).
 */
function contextType(csdl: Csdl, context: string): { type: string; collection: boolean; selected?: boolean } {
  const fragment = context.slice(context.indexOf('#') + 1);
  if (fragment.startsWith('Edm.')) return { type: fragment, collection: false };
  const collectionItem = collectionOf(fragment);
  if (collectionItem !== undefined) return { type: qualified(collectionItem), collection: true };
  if (fragment.startsWith('microsoft.graph.')) return { type: qualified(fragment), collection: false };
  let selected = false;
  const [first, ...rest] = fragment.split('/');
  const singleton = csdl.singletons.get(first ?? '');
  if (!singleton) throw new Error(`${fragment}: ${first} is no singleton`);
  let current = { type: qualified(singleton), collection: false };
  for (const raw of rest) {
    if (raw === '$entity') {
      current = { ...current, collection: false };
      continue;
    }
    const m = /^([^(]+)(?:\((.*)\))?$/.exec(raw);
    const segment = m?.[1] ?? raw;
    const parens = m?.[2];
    if (segment.startsWith('microsoft.graph.')) {
      const cast = qualified(segment);
      if (!derivesFrom(csdl, cast, current.type))
        throw new Error(`${fragment}: ${cast} is no ${current.type}`);
      current = { ...current, type: cast };
      continue;
    }
    const navigation = allNavigation(csdl, current.type).get(segment);
    if (!navigation) throw new Error(`${fragment}: ${current.type} has no navigation property ${segment}`);
    const item = collectionOf(navigation);
    // `name('key')` addresses one entity; `name(a,b)` is a $select list.
    const keyed = parens?.startsWith("'") === true;
    if (parens !== undefined && !keyed) selected = true;
    current = { type: qualified(item ?? navigation), collection: item !== undefined && !keyed };
  }
  return { ...current, selected };
}

/** Checks a whole response body against its `@odata.context`. */
function conformResponse(csdl: Csdl, body: Record<string, unknown>, at: string): string[] {
  const context = body['@odata.context'];
  if (typeof context !== 'string') return [`${at}: no @odata.context`];
  const { type, collection, selected } = contextType(csdl, context);
  const complete = { complete: selected !== true };
  if (collection || type.startsWith('Edm.')) {
    // A collection or a primitive travels in `value`.
    return conform(
      csdl,
      body.value,
      collection ? `Collection(${type})` : type,
      false,
      `${at}.value`,
      complete,
    );
  }
  return conform(csdl, body, type, false, at, complete);
}

// ---- Kiota's view of a type ------------------------------------------------------------------------

type KiotaRead = { method: string; args: unknown[] };
const kiota = kiotaModels as unknown as Record<string, unknown>;
const pascal = (name: string) => `${name[0]?.toUpperCase()}${name.slice(1)}`;
const camel = (name: string) => `${name[0]?.toLowerCase()}${name.slice(1)}`;

/** What Kiota's deserializer of a type reads for each wire name: `{name: 'Edm.String' | 'graph.x' | ...}`. */
function kiotaProperties(typeName: string): Map<string, string> {
  const deserializeInto = kiota[`deserializeInto${pascal(typeName)}`];
  if (typeof deserializeInto !== 'function') throw new Error(`the beta SDK has no ${pascal(typeName)}`);
  const readers = deserializeInto({}) as Record<string, (node: unknown) => void>;
  const out = new Map<string, string>();
  for (const [wireName, read] of Object.entries(readers)) {
    if (wireName === '@odata.type' || wireName === 'backingStoreEnabled') continue;
    const calls: KiotaRead[] = [];
    read(
      new Proxy(
        {},
        {
          get:
            (_target, method) =>
            (...args: unknown[]) => {
              calls.push({ method: String(method), args });
              return undefined;
            },
        },
      ),
    );
    const [call] = calls;
    if (call) out.set(wireName, kiotaType(call));
  }
  return out;
}

function kiotaType({ method, args }: KiotaRead): string {
  const [arg] = args;
  const factoryType = () =>
    `graph.${camel(String((arg as { name: string }).name).replace(/^create|FromDiscriminatorValue$/g, ''))}`;
  const enumType = () => {
    const entry = Object.entries(kiota).find(([name, value]) => value === arg && name.endsWith('Object'));
    return `graph.${camel((entry?.[0] ?? '?').replace(/Object$/, ''))}`;
  };
  switch (method) {
    case 'getStringValue':
      return 'Edm.String';
    case 'getBooleanValue':
      return 'Edm.Boolean';
    case 'getDateValue':
      return 'Edm.DateTimeOffset';
    case 'getByteArrayValue':
      return 'Edm.Binary';
    case 'getNumberValue':
      return 'number';
    case 'getEnumValue':
      return enumType();
    case 'getObjectValue':
      return factoryType();
    case 'getCollectionOfObjectValues':
      return `Collection(${factoryType()})`;
    case 'getCollectionOfEnumValues':
      return `Collection(${enumType()})`;
    case 'getCollectionOfPrimitiveValues':
      return `Collection(${arg === 'string' ? 'Edm.String' : String(arg)})`;
    default:
      return method;
  }
}

/** CSDL numeric types a Kiota `number` may carry. */
const kiotaNumbers = new Set(['Edm.Int32', 'Edm.Int64', 'Edm.Double', 'Edm.Single', 'Edm.Int16', 'Edm.Byte']);

// ---- the tests -----------------------------------------------------------------------------------

describe('$metadata types against the beta SDK’s Kiota models', () => {
  let csdl: Csdl;
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    csdl = readCsdl((await t.app.inject({ method: 'GET', url: '/beta/$metadata' })).body);
  });
  afterAll(async () => {
    await t.close();
  });

  it('declares the VPP app, license and onboarding types vppd serves', () => {
    for (const name of [
      'mobileApp',
      'iosVppApp',
      'macOsVppApp',
      'vppLicensingType',
      'iosDeviceType',
      'iosVppAppAssignedLicense',
      'iosVppAppAssignedDeviceLicense',
      'iosVppAppAssignedUserLicense',
      'macOsVppAppAssignedLicense',
      'depOnboardingSetting',
      'mobileAppPublishingState',
    ])
      expect(csdl.types.has(`graph.${name}`), name).toBe(true);
    expect(typeOf(csdl, 'graph.mobileApp').abstract).toBe(true);
    expect(derivedTypes(csdl, 'graph.mobileApp').sort()).toEqual(['graph.iosVppApp', 'graph.macOsVppApp']);
  });

  it('every property and navigation property has Kiota’s wire name and a compatible type', () => {
    const problems: string[] = [];
    for (const type of csdl.types.values()) {
      if (type.kind === 'EnumType') continue;
      const known = kiotaProperties(type.name);
      const declared = [
        ...allProperties(csdl, `graph.${type.name}`),
        ...allNavigation(csdl, `graph.${type.name}`),
      ];
      for (const [name, property] of declared) {
        const declaredType = typeof property === 'string' ? property : property.type;
        const kiotaSays = known.get(name);
        if (kiotaSays === undefined) problems.push(`${type.name}.${name}: unknown to the SDK`);
        else if (kiotaSays === 'number' ? !kiotaNumbers.has(declaredType) : kiotaSays !== declaredType)
          problems.push(`${type.name}.${name}: ${declaredType} in $metadata, ${kiotaSays} in the SDK`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every derivation is one the SDK’s discriminator knows', () => {
    for (const type of csdl.types.values()) {
      // Kiota's `entity` discriminator leaves out some entity types (the singletons' among them); that
      // every entity has an `id` is part of the property check above.
      if (type.kind === 'EnumType' || type.baseType === undefined || type.baseType === 'graph.entity')
        continue;
      const base = typeOf(csdl, type.baseType).name;
      const create = kiota[`create${pascal(base)}FromDiscriminatorValue`] as (node: unknown) => unknown;
      const node = { getChildNode: () => ({ getStringValue: () => `#microsoft.graph.${type.name}` }) };
      expect(create(node), `${type.name} as a ${base}`).toBe(kiota[`deserializeInto${pascal(type.name)}`]);
    }
  });

  it('enums outside Microsoft’s extract have the SDK’s members in order', () => {
    const members = Object.values(kiota.MobileAppPublishingStateObject as Record<string, string>);
    expect(typeOf(csdl, 'graph.mobileAppPublishingState').members).toEqual(members);
  });
});

/** Routes of one app, recorded as registered (`/beta/deviceAppManagement/vppTokens/:id`). */
async function servedRoutes(): Promise<{
  app: FastifyInstance;
  routes: { method: string; url: string }[];
  close(): Promise<void>;
}> {
  const t = await createTestApp();
  const routes: { method: string; url: string }[] = [];
  // The version scopes register when the plugin tree loads (at ready), after this hook is in place.
  const app = buildApp(t.context);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  await app.ready();
  return {
    app,
    routes,
    close: async () => {
      await app.close();
      await t.close();
    },
  };
}

describe('$metadata describes exactly the routes each version registers', () => {
  let served: Awaited<ReturnType<typeof servedRoutes>>;
  beforeAll(async () => {
    served = await servedRoutes();
  });
  afterAll(async () => {
    await served.close();
  });

  /**
   * Walks a registered path through the model: singleton → contained collection → key (`:id`) →
   * type cast / navigation / bound operation. Returns what the path reaches or why it cannot.
   */
  function walk(csdl: Csdl, method: string, path: string): string {
    const [first, ...segments] = path.split('/').filter((s) => s !== '');
    const singleton = csdl.singletons.get(first ?? '');
    if (!singleton) return `no singleton ${first}`;
    let current = { type: qualified(singleton), collection: false };
    for (const [i, segment] of segments.entries()) {
      const last = i === segments.length - 1;
      if (current.collection && segment === ':id') {
        current = { ...current, collection: false };
        continue;
      }
      if (current.collection && segment === '$count') return last && method === 'GET' ? 'ok' : 'bad $count';
      if (/^(microsoft\.)?graph\./.test(segment)) {
        const cast = qualified(segment);
        if (!csdl.types.has(cast) || !derivesFrom(csdl, cast, current.type)) return `bad cast ${segment}`;
        current = { ...current, type: cast };
        continue;
      }
      const binding = current.collection ? `Collection(${current.type})` : current.type;
      const name = segment.replace(/:args$/, '');
      const operation = csdl.operations.find(
        (o) =>
          o.name === name &&
          qualified(o.bindingType.replace(/^Collection\((.+)\)$/, '$1')) ===
            qualified(binding.replace(/^Collection\((.+)\)$/, '$1')) &&
          o.bindingType.startsWith('Collection(') === current.collection,
      );
      if (operation) {
        const expectedMethod = operation.kind === 'Action' ? 'POST' : 'GET';
        return last && method === expectedMethod ? 'ok' : `${method} ${operation.kind} ${name}`;
      }
      const navigation = allNavigation(csdl, current.type).get(segment);
      if (!navigation) return `${current.type} has no ${segment}`;
      const item = collectionOf(navigation);
      current = { type: qualified(item ?? navigation), collection: item !== undefined };
    }
    // Plain OData CRUD: read anything, create in a collection, update or delete one entity.
    const allowed = current.collection ? ['GET', 'POST'] : ['GET', 'PATCH', 'DELETE'];
    return allowed.includes(method) ? 'ok' : `${method} on ${current.type}`;
  }

  it.each(['beta', 'v1.0'])(
    '%s: every served path is in $metadata, every operation is served',
    async (version) => {
      const csdl = readCsdl((await served.app.inject({ method: 'GET', url: `/${version}/$metadata` })).body);
      const prefix = `/${version}/`;
      // Routes that answer 405 are registered for every other method; only the real handlers count.
      const probe = async (method: string, url: string) =>
        (
          await served.app.inject({
            method: method as 'GET',
            url: url.replace(':id', '00000000-0000-0000-0000-000000000000').replace(/:args$/, "(x='1')"),
          })
        ).statusCode;
      const problems: string[] = [];
      const reached = new Set<string>();
      for (const { method, url } of served.routes) {
        // $batch is a service endpoint, not a resource: Graph's own $metadata does not list it either.
        if (
          !url.startsWith(prefix) ||
          url === `${prefix}$metadata` ||
          url === `${prefix}$batch` ||
          method === 'HEAD'
        )
          continue;
        if ((await probe(method, url)) === 405) continue;
        const path = url.slice(prefix.length);
        const outcome = walk(csdl, method, path);
        if (outcome !== 'ok') problems.push(`${method} ${url}: ${outcome}`);
        reached.add(
          path
            .split('/')
            .pop()
            ?.replace(/:args$/, '') ?? '',
        );
      }
      expect(problems).toEqual([]);
      for (const operation of csdl.operations) expect(reached.has(operation.name), operation.name).toBe(true);
      for (const [name, type] of csdl.singletons)
        for (const navigation of allNavigation(csdl, type).keys())
          expect(
            served.routes.some((r) => r.url.startsWith(`${prefix}${name}/${navigation}`)),
            `${name}/${navigation}`,
          ).toBe(true);
    },
  );
});

describe('served bodies conform to $metadata (real sync against the Apple simulator, real socket)', () => {
  let f: SurfaceFixture;
  const csdl: Record<string, Csdl> = {};
  let tokenId: string;
  let apps: Record<string, unknown>[];
  const get = async (path: string) => {
    const response = await f.call('GET', path, f.auth.a);
    expect(response.status, `${path}: ${response.text}`).toBe(200);
    return response.body as Record<string, unknown>;
  };

  beforeAll(async () => {
    f = await startSurfaceFixture();
    tokenId = await f.upload(f.auth.a, 'small');
    await f.syncFromSim(surfaceTenantA, tokenId);
    for (const version of ['beta', 'v1.0']) {
      const response = await fetch(`${f.origin}/${version}/$metadata`);
      expect(response.status).toBe(200);
      csdl[version] = readCsdl(await response.text());
    }
    const list = await get('/beta/deviceAppManagement/mobileApps?$top=999');
    expect(list['@odata.nextLink']).toBeUndefined();
    apps = list.value as Record<string, unknown>[];
  });
  afterAll(async () => {
    await f?.close();
  });

  it('the app list and every app by id (plain and type-cast) conform, with every declared property sent', async () => {
    const beta = csdl.beta as Csdl;
    expect(apps.length).toBeGreaterThan(0);
    const problems = conformResponse(
      beta,
      await get('/beta/deviceAppManagement/mobileApps?$top=999'),
      'list',
    );
    const types = new Set<unknown>();
    for (const app of apps) {
      types.add(app['@odata.type']);
      const cast = String(app['@odata.type']).slice(1);
      for (const path of [`/${app.id}`, `/${app.id}/${cast}`, `/${cast}?$top=1`]) {
        problems.push(
          ...conformResponse(beta, await get(`/beta/deviceAppManagement/mobileApps${path}`), path),
        );
      }
    }
    expect(problems).toEqual([]);
    expect(types).toEqual(new Set(['#microsoft.graph.iosVppApp', '#microsoft.graph.macOsVppApp']));
  });

  it('v1.0: the app list, each app and its assignments conform to v1.0’s $metadata, every declared property sent', async () => {
    const v1 = csdl['v1.0'] as Csdl;
    expect(typeOf(v1, 'graph.mobileApp').navigation.get('assignments')).toBe(
      'Collection(graph.mobileAppAssignment)',
    );
    expect(v1.types.has('graph.macOsVppApp')).toBe(false);
    const list = await get('/v1.0/deviceAppManagement/mobileApps?$top=999');
    const problems = conformResponse(v1, list, 'v1.0 list');
    const items = list.value as Record<string, unknown>[];
    expect(items.length).toBeGreaterThan(0);
    for (const app of items) {
      for (const path of [`/${app.id}`, `/${app.id}/microsoft.graph.iosVppApp`, `/${app.id}/assignments`]) {
        problems.push(
          ...conformResponse(v1, await get(`/v1.0/deviceAppManagement/mobileApps${path}`), `v1.0 ${path}`),
        );
      }
    }
    problems.push(
      ...conformResponse(
        csdl.beta as Csdl,
        await get(`/beta/deviceAppManagement/mobileApps/${apps[0]?.id}/assignments`),
        'beta assignments',
      ),
    );
    expect(problems).toEqual([]);
  });

  it('every property the presenter writes for an app is declared with a compatible type (checked without $metadata help)', () => {
    const beta = csdl.beta as Csdl;
    for (const app of apps) {
      const type = qualified(String(app['@odata.type']).slice(1));
      const declared = allProperties(beta, type);
      for (const [name, value] of Object.entries(app)) {
        if (name === '@odata.type') continue;
        expect(declared.has(name), `${type}.${name}`).toBe(true);
        expect(conform(beta, value, declared.get(name)?.type ?? '', true, name, { complete: true })).toEqual(
          [],
        );
      }
      expect([...declared.keys()].filter((n) => !(n in app))).toEqual([]);
    }
  });

  it('$select narrows an app to declared properties and the context says so', async () => {
    const beta = csdl.beta as Csdl;
    const [app] = apps;
    const body = await get(`/beta/deviceAppManagement/mobileApps/${app?.id}?$select=bundleId,licensingType`);
    expect(conformResponse(beta, body, 'select')).toEqual([]);
    expect(Object.keys(body).sort()).toEqual([
      '@odata.context',
      '@odata.type',
      'bundleId',
      'id',
      'licensingType',
    ]);
  });

  it('assigned licenses (iOS device and user, macOS) conform to the license types', async () => {
    const beta = csdl.beta as Csdl;
    const problems: string[] = [];
    const seen = new Set<unknown>();
    for (const app of apps.filter((a) => (a.usedLicenseCount as number) > 0)) {
      const cast = String(app['@odata.type']).slice(1);
      const body = await get(
        `/beta/deviceAppManagement/mobileApps/${app.id}/${cast}/assignedLicenses?$top=50`,
      );
      problems.push(...conformResponse(beta, body, `${app.id} licenses`));
      for (const license of body.value as Record<string, unknown>[]) seen.add(license['@odata.type']);
    }
    expect(problems).toEqual([]);
    expect(seen).toEqual(
      new Set([
        '#microsoft.graph.iosVppAppAssignedDeviceLicense',
        '#microsoft.graph.iosVppAppAssignedUserLicense',
        '#microsoft.graph.macOsVppAppAssignedLicense',
      ]),
    );
  });

  it('tokens, syncLicenses and the two functions conform in both versions where served', async () => {
    const problems: string[] = [];
    const bundleId = apps.find((a) => typeof a.bundleId === 'string')?.bundleId as string;
    for (const version of ['beta', 'v1.0'] as const) {
      const model = csdl[version] as Csdl;
      const base = `/${version}/deviceAppManagement/vppTokens`;
      problems.push(...conformResponse(model, await get(base), `${version} list`));
      problems.push(...conformResponse(model, await get(`${base}/${tokenId}`), `${version} get`));
      problems.push(
        ...conformResponse(
          model,
          await get(`${base}/getLicensesForApp(bundleId='${bundleId}')`),
          `${version} fn`,
        ),
      );
      const sync = await f.call('POST', `${base}/${tokenId}/syncLicenses`, f.auth.a);
      expect(sync.status).toBe(200);
      problems.push(
        ...conformResponse(model, sync.body as Record<string, unknown>, `${version} syncLicenses`),
      );
    }
    const summaries = await get(
      `/beta/deviceAppManagement/vppTokens/getLicensesForApp(bundleId='${bundleId}')`,
    );
    expect((summaries.value as unknown[]).length).toBeGreaterThan(0);
    const count = await get(
      "/beta/deviceManagement/depOnboardingSettings/getExpiringVppTokenCount(expiringBeforeDateTime='2999-01-01T00:00:00Z')",
    );
    expect(count.value).toBe(1);
    problems.push(...conformResponse(csdl.beta as Csdl, count, 'getExpiringVppTokenCount'));
    expect(problems).toEqual([]);
  });

  it('the conformance check itself rejects what $metadata does not declare', () => {
    const beta = csdl.beta as Csdl;
    const app = apps.find((a) => a['@odata.type'] === '#microsoft.graph.macOsVppApp') as Record<
      string,
      unknown
    >;
    const check = (body: Record<string, unknown>) =>
      conform(beta, body, 'graph.mobileApp', false, 'app', { complete: true });
    expect(check(app)).toEqual([]);
    expect(check({ ...app, applicableDeviceType: null })).toEqual([
      'app.applicableDeviceType: not a property of graph.macOsVppApp in $metadata',
    ]);
    expect(check({ ...app, totalLicenseCount: 2 ** 31 })).toHaveLength(1);
    expect(check({ ...app, isFeatured: null })).toHaveLength(1);
    expect(check({ ...app, publishingState: 'live' })).toHaveLength(1);
    const { bundleId: _dropped, ...withoutBundleId } = app;
    expect(check(withoutBundleId)).toEqual(['app: declared graph.macOsVppApp.bundleId is not sent']);
    expect(check({ ...app, '@odata.type': undefined })).toEqual([
      'app: an abstract graph.mobileApp without a concrete @odata.type',
    ]);
  });
});
