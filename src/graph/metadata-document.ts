import { vppEnums } from '../domain/enums.js';
import type { GraphEnum, GraphVersion } from '../domain/graph-enum.js';
import { betaOnlyTokenProperties } from '../domain/vpp-token.js';

// The `$metadata` of vppd as data (a CSDL model), per Graph version, then written as CSDL XML.
// Names, types and nullability are Microsoft's: from the CSDL extract in test/fixtures where it
// defines a type or operation, else from Graph's published schema as the beta SDK's models carry it
// (checked in tests). Only what vppd serves is declared: the properties its presenters write, the
// operations and containment paths its routes register under each version.

/** One structural property of a CSDL type. */
export interface CsdlProperty {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
  /** Versions that have the property (default: all). */
  readonly versions?: readonly GraphVersion[];
}

/** A containment navigation property (vppd serves no non-contained ones). */
export interface CsdlNavigationProperty {
  readonly name: string;
  readonly type: string;
  /** Versions whose routes serve the path (default: all). */
  readonly versions?: readonly GraphVersion[];
}

/** An entity or complex type. */
export interface CsdlStructuredType {
  readonly kind: 'EntityType' | 'ComplexType';
  readonly name: string;
  readonly baseType?: string;
  readonly abstract?: boolean;
  /** Key property names (only on a root entity type). */
  readonly key?: readonly string[];
  readonly properties: readonly CsdlProperty[];
  readonly navigationProperties?: readonly CsdlNavigationProperty[];
  /** Versions that have the type (default: all). */
  readonly versions?: readonly GraphVersion[];
}

/** An enum type with the members a version serves. */
export interface CsdlEnumType {
  readonly kind: 'EnumType';
  readonly name: string;
  readonly members: readonly { readonly name: string; readonly value: number }[];
}

export type CsdlType = CsdlStructuredType | CsdlEnumType;

/** A parameter of an action or function (the first one of a bound operation is its binding). */
export interface CsdlParameter {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
  /** `Unicode="false"`, as Graph writes on its string function parameters. */
  readonly nonUnicode?: boolean;
}

/** A bound action or function. */
export interface CsdlOperation {
  readonly kind: 'Action' | 'Function';
  readonly name: string;
  readonly parameters: readonly CsdlParameter[];
  readonly returnType?: { readonly type: string; readonly nullable: boolean };
  /** Versions whose routes serve it. */
  readonly versions: readonly GraphVersion[];
}

/** A singleton of the entity container. */
export interface CsdlSingleton {
  readonly name: string;
  readonly type: string;
  readonly versions: readonly GraphVersion[];
}

/** Everything one version's `$metadata` declares. */
export interface CsdlModel {
  readonly namespace: 'microsoft.graph';
  readonly alias: 'graph';
  readonly types: readonly CsdlType[];
  readonly operations: readonly CsdlOperation[];
  readonly singletons: readonly CsdlSingleton[];
}

const both: readonly GraphVersion[] = ['beta', 'v1.0'];
const betaOnly: readonly GraphVersion[] = ['beta'];

/** `vppToken`'s properties as Microsoft's CSDL defines them (plus the newer beta property). */
export const vppTokenCsdlProperties: readonly CsdlProperty[] = [
  { name: 'appleDeviceAppDeliveryProtocolType', type: 'graph.appleDeviceDeliveryProtocol', nullable: true },
  { name: 'appleId', type: 'Edm.String', nullable: true },
  { name: 'automaticallyUpdateApps', type: 'Edm.Boolean', nullable: false },
  { name: 'claimTokenManagementFromExternalMdm', type: 'Edm.Boolean', nullable: false },
  { name: 'countryOrRegion', type: 'Edm.String', nullable: true },
  { name: 'dataSharingConsentGranted', type: 'Edm.Boolean', nullable: false },
  { name: 'displayName', type: 'Edm.String', nullable: true },
  { name: 'expirationDateTime', type: 'Edm.DateTimeOffset', nullable: false },
  { name: 'lastModifiedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
  { name: 'lastSyncDateTime', type: 'Edm.DateTimeOffset', nullable: false },
  { name: 'lastSyncStatus', type: 'graph.vppTokenSyncStatus', nullable: false },
  { name: 'locationName', type: 'Edm.String', nullable: true },
  { name: 'organizationName', type: 'Edm.String', nullable: true },
  { name: 'roleScopeTagIds', type: 'Collection(Edm.String)', nullable: true },
  { name: 'state', type: 'graph.vppTokenState', nullable: false },
  { name: 'token', type: 'Edm.String', nullable: true },
  { name: 'tokenActionResults', type: 'Collection(graph.vppTokenActionResult)', nullable: true },
  { name: 'vppTokenAccountType', type: 'graph.vppTokenAccountType', nullable: false },
];

/** Properties of Graph's revoke action results (tokens and apps share the counts and the reason). */
const actionResultProperties: readonly CsdlProperty[] = [
  { name: 'actionName', type: 'Edm.String', nullable: true },
  { name: 'actionState', type: 'graph.actionState', nullable: false },
  { name: 'lastUpdatedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
  { name: 'startDateTime', type: 'Edm.DateTimeOffset', nullable: false },
];
const revokeCountProperties: readonly CsdlProperty[] = [
  { name: 'actionFailureReason', type: 'graph.vppTokenActionFailureReason', nullable: false },
  { name: 'failedLicensesCount', type: 'Edm.Int32', nullable: false },
  { name: 'totalLicensesCount', type: 'Edm.Int32', nullable: false },
];

/** The complex types of the VPP surface, with their base types. */
export const vppComplexTypes: readonly CsdlStructuredType[] = [
  { kind: 'ComplexType', name: 'vppTokenActionResult', properties: actionResultProperties },
  {
    kind: 'ComplexType',
    name: 'vppTokenLicenseSummary',
    properties: [
      { name: 'appleId', type: 'Edm.String', nullable: true },
      { name: 'availableLicenseCount', type: 'Edm.Int32', nullable: false },
      { name: 'organizationName', type: 'Edm.String', nullable: true },
      { name: 'usedLicenseCount', type: 'Edm.Int32', nullable: false },
      { name: 'vppTokenId', type: 'Edm.String', nullable: true },
    ],
  },
  {
    kind: 'ComplexType',
    name: 'vppTokenRevokeLicensesActionResult',
    baseType: 'graph.vppTokenActionResult',
    properties: revokeCountProperties,
  },
  {
    kind: 'ComplexType',
    name: 'vppLicensingType',
    // v1.0 has only the `supports…` pair.
    properties: [
      { name: 'supportDeviceLicensing', type: 'Edm.Boolean', nullable: false, versions: betaOnly },
      { name: 'supportsDeviceLicensing', type: 'Edm.Boolean', nullable: false },
      { name: 'supportsUserLicensing', type: 'Edm.Boolean', nullable: false },
      { name: 'supportUserLicensing', type: 'Edm.Boolean', nullable: false, versions: betaOnly },
    ],
  },
  {
    kind: 'ComplexType',
    name: 'iosDeviceType',
    properties: [
      { name: 'iPad', type: 'Edm.Boolean', nullable: false },
      { name: 'iPhoneAndIPod', type: 'Edm.Boolean', nullable: false },
    ],
  },
  {
    kind: 'ComplexType',
    name: 'mimeContent',
    properties: [
      { name: 'type', type: 'Edm.String', nullable: true },
      { name: 'value', type: 'Edm.Binary', nullable: true },
    ],
  },
  // Graph's per-app revoke results are standalone types (not derived from vppTokenActionResult).
  ...(['iosVppAppRevokeLicensesActionResult', 'macOsVppAppRevokeLicensesActionResult'] as const).map(
    (name): CsdlStructuredType => ({
      kind: 'ComplexType',
      name,
      properties: [
        ...actionResultProperties,
        ...revokeCountProperties,
        { name: 'managedDeviceId', type: 'Edm.String', nullable: true },
        { name: 'userId', type: 'Edm.String', nullable: true },
      ],
    }),
  ),
];

/** `mobileAppPublishingState`: vppd writes `published` for every VPP app. */
const mobileAppPublishingState: CsdlEnumType = {
  kind: 'EnumType',
  name: 'mobileAppPublishingState',
  members: [
    { name: 'notPublished', value: 0 },
    { name: 'processing', value: 1 },
    { name: 'published', value: 2 },
  ],
};

/** The properties of an assigned license that every platform shares. */
const assignedLicenseProperties: readonly CsdlProperty[] = [
  { name: 'userEmailAddress', type: 'Edm.String', nullable: true },
  { name: 'userId', type: 'Edm.String', nullable: true },
  { name: 'userName', type: 'Edm.String', nullable: true },
  { name: 'userPrincipalName', type: 'Edm.String', nullable: true },
];

/**
 * The properties both VPP app types add to `mobileApp` (iOS adds `applicableDeviceType`); v1.0's
 * `iosVppApp` lacks the token id and display name and the delivery protocol.
 */
const vppAppProperties: readonly CsdlProperty[] = [
  {
    name: 'appleDeviceAppDeliveryProtocolType',
    type: 'graph.appleDeviceDeliveryProtocol',
    nullable: true,
    versions: betaOnly,
  },
  { name: 'appStoreUrl', type: 'Edm.String', nullable: true },
  { name: 'bundleId', type: 'Edm.String', nullable: true },
  { name: 'licensingType', type: 'graph.vppLicensingType', nullable: true },
  { name: 'releaseDateTime', type: 'Edm.DateTimeOffset', nullable: true },
  { name: 'totalLicenseCount', type: 'Edm.Int32', nullable: false },
  { name: 'usedLicenseCount', type: 'Edm.Int32', nullable: false },
  { name: 'vppTokenAccountType', type: 'graph.vppTokenAccountType', nullable: false },
  { name: 'vppTokenAppleId', type: 'Edm.String', nullable: true },
  { name: 'vppTokenDisplayName', type: 'Edm.String', nullable: true, versions: betaOnly },
  { name: 'vppTokenId', type: 'Edm.String', nullable: true, versions: betaOnly },
  { name: 'vppTokenOrganizationName', type: 'Edm.String', nullable: true },
];

/** The entity types of the surface (`entity` is the root every Graph entity derives from). */
export const vppEntityTypes: readonly CsdlStructuredType[] = [
  {
    kind: 'EntityType',
    name: 'entity',
    abstract: true,
    key: ['id'],
    properties: [{ name: 'id', type: 'Edm.String', nullable: false }],
  },
  { kind: 'EntityType', name: 'vppToken', baseType: 'graph.entity', properties: vppTokenCsdlProperties },
  // Graph's beta schema gives this singleton's type no base (and so no id); deviceManagement has one.
  {
    kind: 'EntityType',
    name: 'deviceAppManagement',
    properties: [],
    navigationProperties: [
      { name: 'mobileApps', type: 'Collection(graph.mobileApp)' },
      { name: 'vppTokens', type: 'Collection(graph.vppToken)' },
    ],
  },
  {
    kind: 'EntityType',
    name: 'deviceManagement',
    baseType: 'graph.entity',
    properties: [],
    navigationProperties: [
      { name: 'depOnboardingSettings', type: 'Collection(graph.depOnboardingSetting)', versions: betaOnly },
    ],
  },
  // vppd serves only the collection-bound getExpiringVppTokenCount here, no settings: the key only.
  { kind: 'EntityType', name: 'depOnboardingSetting', baseType: 'graph.entity', properties: [] },
  {
    kind: 'EntityType',
    name: 'mobileApp',
    baseType: 'graph.entity',
    abstract: true,
    // Only the mobileApp properties vppd writes for VPP apps (Graph has more, e.g. categories).
    navigationProperties: [{ name: 'assignments', type: 'Collection(graph.mobileAppAssignment)' }],
    properties: [
      { name: 'createdDateTime', type: 'Edm.DateTimeOffset', nullable: false },
      { name: 'description', type: 'Edm.String', nullable: true },
      { name: 'developer', type: 'Edm.String', nullable: true },
      { name: 'displayName', type: 'Edm.String', nullable: true },
      { name: 'informationUrl', type: 'Edm.String', nullable: true },
      { name: 'isFeatured', type: 'Edm.Boolean', nullable: false },
      { name: 'largeIcon', type: 'graph.mimeContent', nullable: true },
      { name: 'lastModifiedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
      { name: 'notes', type: 'Edm.String', nullable: true },
      { name: 'owner', type: 'Edm.String', nullable: true },
      { name: 'privacyInformationUrl', type: 'Edm.String', nullable: true },
      { name: 'publisher', type: 'Edm.String', nullable: true },
      { name: 'publishingState', type: 'graph.mobileAppPublishingState', nullable: false },
      { name: 'roleScopeTagIds', type: 'Collection(Edm.String)', nullable: true, versions: betaOnly },
    ],
  },
  // vppd assigns no app to groups (every `assignments` is empty): the key is all it declares.
  { kind: 'EntityType', name: 'mobileAppAssignment', baseType: 'graph.entity', properties: [] },
  {
    kind: 'EntityType',
    name: 'iosVppApp',
    baseType: 'graph.mobileApp',
    properties: [
      ...vppAppProperties,
      { name: 'applicableDeviceType', type: 'graph.iosDeviceType', nullable: true },
      {
        name: 'revokeLicenseActionResults',
        type: 'Collection(graph.iosVppAppRevokeLicensesActionResult)',
        nullable: true,
        versions: betaOnly,
      },
    ].sort(byName),
    // Graph v1.0's iosVppApp has no assignedLicenses.
    navigationProperties: [
      {
        name: 'assignedLicenses',
        type: 'Collection(graph.iosVppAppAssignedLicense)',
        versions: betaOnly,
      },
    ],
  },
  {
    kind: 'EntityType',
    name: 'macOsVppApp',
    baseType: 'graph.mobileApp',
    // Graph v1.0 has no macOsVppApp.
    versions: betaOnly,
    properties: [
      ...vppAppProperties,
      {
        name: 'revokeLicenseActionResults',
        type: 'Collection(graph.macOsVppAppRevokeLicensesActionResult)',
        nullable: true,
      },
    ].sort(byName),
    navigationProperties: [
      { name: 'assignedLicenses', type: 'Collection(graph.macOsVppAppAssignedLicense)' },
    ],
  },
  {
    kind: 'EntityType',
    name: 'iosVppAppAssignedLicense',
    baseType: 'graph.entity',
    properties: assignedLicenseProperties,
  },
  {
    kind: 'EntityType',
    name: 'iosVppAppAssignedDeviceLicense',
    baseType: 'graph.iosVppAppAssignedLicense',
    properties: [
      { name: 'deviceName', type: 'Edm.String', nullable: true },
      { name: 'managedDeviceId', type: 'Edm.String', nullable: true },
    ],
  },
  {
    kind: 'EntityType',
    name: 'iosVppAppAssignedUserLicense',
    baseType: 'graph.iosVppAppAssignedLicense',
    properties: [],
  },
  // macOS has one license type (Graph defines no device/user subtypes for it).
  {
    kind: 'EntityType',
    name: 'macOsVppAppAssignedLicense',
    baseType: 'graph.entity',
    properties: assignedLicenseProperties,
  },
];

/** The bound operations vppd serves, as Microsoft's CSDL declares them, with the versions serving them. */
export const vppOperations: readonly CsdlOperation[] = [
  {
    kind: 'Action',
    name: 'revokeLicenses',
    parameters: [
      { name: 'bindingParameter', type: 'graph.vppToken', nullable: true },
      { name: 'notifyManagedDevices', type: 'Edm.Boolean', nullable: false },
      { name: 'revokeUntrackedLicenses', type: 'Edm.Boolean', nullable: true },
    ],
    versions: betaOnly,
  },
  {
    kind: 'Action',
    name: 'syncLicenseCounts',
    parameters: [{ name: 'bindingParameter', type: 'Collection(graph.vppToken)', nullable: true }],
    versions: betaOnly,
  },
  {
    kind: 'Action',
    name: 'syncLicenses',
    parameters: [{ name: 'bindingParameter', type: 'graph.vppToken', nullable: true }],
    returnType: { type: 'graph.vppToken', nullable: true },
    versions: both,
  },
  {
    kind: 'Function',
    name: 'getExpiringVppTokenCount',
    parameters: [
      { name: 'bindingParameter', type: 'Collection(graph.depOnboardingSetting)', nullable: true },
      { name: 'expiringBeforeDateTime', type: 'Edm.String', nullable: true, nonUnicode: true },
    ],
    returnType: { type: 'Edm.Int32', nullable: false },
    versions: betaOnly,
  },
  {
    kind: 'Function',
    name: 'getLicensesForApp',
    parameters: [
      { name: 'bindingParameter', type: 'Collection(graph.vppToken)', nullable: true },
      { name: 'bundleId', type: 'Edm.String', nullable: true, nonUnicode: true },
    ],
    returnType: { type: 'Collection(graph.vppTokenLicenseSummary)', nullable: true },
    versions: both,
  },
];

/** The singletons whose paths vppd serves. */
export const vppSingletons: readonly CsdlSingleton[] = [
  { name: 'deviceAppManagement', type: 'graph.deviceAppManagement', versions: both },
  { name: 'deviceManagement', type: 'graph.deviceManagement', versions: betaOnly },
];

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The qualified names a type expression refers to (`Collection(graph.x)` → `graph.x`); Edm types excluded. */
export function referencedTypeNames(typeExpression: string): string[] {
  const inner = /^Collection\((.+)\)$/.exec(typeExpression)?.[1] ?? typeExpression;
  return inner.startsWith('Edm.') ? [] : [inner];
}

function enumType(graphEnum: GraphEnum<string>, version: GraphVersion): CsdlEnumType {
  return {
    kind: 'EnumType',
    name: graphEnum.name,
    members: graphEnum.members
      .filter((m) => !m.versions || m.versions.includes(version))
      .map((m) => ({ name: m.name, value: m.value })),
  };
}

/** A structured type as a version serves it: v1.0 drops beta-only properties and paths. */
function forVersion(type: CsdlStructuredType, version: GraphVersion): CsdlStructuredType {
  const properties = (
    type.name === 'vppToken' && version !== 'beta'
      ? type.properties.filter((p) => !betaOnlyTokenProperties.includes(p.name))
      : type.properties
  )
    .filter((p) => !p.versions || p.versions.includes(version))
    .map(({ versions: _versions, ...p }) => p);
  const navigationProperties = type.navigationProperties?.filter(
    (n) => !n.versions || n.versions.includes(version),
  );
  return { ...type, properties, ...(navigationProperties ? { navigationProperties } : {}) };
}

/**
 * Keeps the types a version can put on the wire: those the container, the operations and the kept
 * types refer to, plus the types derived from a kept one (a `mobileApp` is sent as an `iosVppApp`).
 * `entity` is the root of every entity type, so deriving from it alone keeps nothing.
 */
function reachableTypes(
  types: readonly CsdlType[],
  operations: readonly CsdlOperation[],
  singletons: readonly CsdlSingleton[],
): CsdlType[] {
  const byQualifiedName = new Map(types.map((t) => [`graph.${t.name}`, t]));
  const kept = new Set<string>();
  const pending = [
    ...singletons.map((s) => s.type),
    ...operations.flatMap((o) => [
      ...o.parameters.map((p) => p.type),
      ...(o.returnType ? [o.returnType.type] : []),
    ]),
  ].flatMap(referencedTypeNames);
  const visit = (name: string) => {
    if (kept.has(name)) return;
    const type = byQualifiedName.get(name);
    if (!type) throw new Error(`$metadata refers to ${name}, which it does not declare`);
    kept.add(name);
    if (type.kind === 'EnumType') return;
    if (type.baseType) pending.push(type.baseType);
    for (const p of type.properties) pending.push(...referencedTypeNames(p.type));
    for (const n of type.navigationProperties ?? []) pending.push(...referencedTypeNames(n.type));
    for (const derived of types) {
      if (derived.kind !== 'EnumType' && derived.baseType === name && name !== 'graph.entity')
        pending.push(`graph.${derived.name}`);
    }
  };
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) visit(next);
  return types.filter((t) => kept.has(`graph.${t.name}`));
}

/** The CSDL model of what vppd serves under a version (every declared type is reachable from it). */
export function buildMetadataModel(version: GraphVersion): CsdlModel {
  const operations = vppOperations.filter((o) => o.versions.includes(version));
  const singletons = vppSingletons.filter((s) => s.versions.includes(version));
  const all: CsdlType[] = [
    ...Object.values(vppEnums).map((e) => enumType(e as GraphEnum<string>, version)),
    mobileAppPublishingState,
    ...[...vppEntityTypes, ...vppComplexTypes]
      .filter((t) => !t.versions || t.versions.includes(version))
      .map((t) => forVersion(t, version)),
  ];
  return {
    namespace: 'microsoft.graph',
    alias: 'graph',
    types: reachableTypes(all, operations, singletons),
    operations,
    singletons,
  };
}

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const attr = (name: string, value: string) => ` ${name}="${escapeXml(value)}"`;

function propertyXml(p: CsdlProperty): string {
  return `        <Property${attr('Name', p.name)}${attr('Type', p.type)}${p.nullable ? '' : ' Nullable="false"'} />`;
}

function typeXml(type: CsdlType): string[] {
  if (type.kind === 'EnumType') {
    return [
      `      <EnumType${attr('Name', type.name)}>`,
      ...type.members.map((m) => `        <Member${attr('Name', m.name)} Value="${m.value}" />`),
      '      </EnumType>',
    ];
  }
  const head = `      <${type.kind}${attr('Name', type.name)}${type.baseType ? attr('BaseType', type.baseType) : ''}${
    type.abstract ? ' Abstract="true"' : ''
  }>`;
  const key = type.key
    ? [
        '        <Key>',
        ...type.key.map((k) => `          <PropertyRef${attr('Name', k)} />`),
        '        </Key>',
      ]
    : [];
  const navigation = (type.navigationProperties ?? []).map(
    (n) =>
      `        <NavigationProperty${attr('Name', n.name)}${attr('Type', n.type)} ContainsTarget="true" />`,
  );
  return [head, ...key, ...type.properties.map(propertyXml), ...navigation, `      </${type.kind}>`];
}

function operationXml(operation: CsdlOperation): string[] {
  const parameters = operation.parameters.map(
    (p) =>
      `        <Parameter${attr('Name', p.name)}${attr('Type', p.type)}${p.nullable ? '' : ' Nullable="false"'}${
        p.nonUnicode ? ' Unicode="false"' : ''
      } />`,
  );
  const returnType = operation.returnType
    ? [
        `        <ReturnType${attr('Type', operation.returnType.type)}${
          operation.returnType.nullable ? '' : ' Nullable="false"'
        } />`,
      ]
    : [];
  return [
    `      <${operation.kind}${attr('Name', operation.name)} IsBound="true">`,
    ...parameters,
    ...returnType,
    `      </${operation.kind}>`,
  ];
}

/** Writes a CSDL model as the `$metadata` XML document (OData CSDL XML 4.0). */
export function writeMetadataDocument(model: CsdlModel): string {
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
    '  <edmx:DataServices>',
    `    <Schema${attr('Namespace', model.namespace)}${attr('Alias', model.alias)} xmlns="http://docs.oasis-open.org/odata/ns/edm">`,
    ...model.types.flatMap(typeXml),
    ...model.operations.flatMap(operationXml),
    '      <EntityContainer Name="GraphService">',
    ...model.singletons.map((s) => `        <Singleton${attr('Name', s.name)}${attr('Type', s.type)} />`),
    '      </EntityContainer>',
    '    </Schema>',
    '  </edmx:DataServices>',
    '</edmx:Edmx>',
    '',
  ].join('\n');
}

/**
 * The CSDL (`$metadata`) of what vppd serves under a version: vppToken with its enums and complex
 * types and bound operations, the VPP app and license types, `depOnboardingSetting` for its
 * function, and the container's singletons. v1.0 declares only its subset (tokens, syncLicenses,
 * getLicensesForApp) and omits beta-only properties and enum members.
 */
export function buildMetadataDocument(version: GraphVersion): string {
  return writeMetadataDocument(buildMetadataModel(version));
}
