import { vppEnums } from '../domain/enums.js';
import type { GraphEnum, GraphVersion } from '../domain/graph-enum.js';
import { betaOnlyTokenProperties } from '../domain/vpp-token.js';

/** One structural property of a CSDL type. */
export interface CsdlProperty {
  readonly name: string;
  readonly type: string;
  readonly nullable: boolean;
}

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

/** The complex types of the VPP surface, with their base types. */
export const vppComplexTypes: readonly {
  readonly name: string;
  readonly baseType?: string;
  readonly properties: readonly CsdlProperty[];
}[] = [
  {
    name: 'vppTokenActionResult',
    properties: [
      { name: 'actionName', type: 'Edm.String', nullable: true },
      { name: 'actionState', type: 'graph.actionState', nullable: false },
      { name: 'lastUpdatedDateTime', type: 'Edm.DateTimeOffset', nullable: false },
      { name: 'startDateTime', type: 'Edm.DateTimeOffset', nullable: false },
    ],
  },
  {
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
    name: 'vppTokenRevokeLicensesActionResult',
    baseType: 'graph.vppTokenActionResult',
    properties: [
      { name: 'actionFailureReason', type: 'graph.vppTokenActionFailureReason', nullable: false },
      { name: 'failedLicensesCount', type: 'Edm.Int32', nullable: false },
      { name: 'totalLicensesCount', type: 'Edm.Int32', nullable: false },
    ],
  },
];

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function propertyXml(p: CsdlProperty): string {
  const nullable = p.nullable ? '' : ' Nullable="false"';
  return `        <Property Name="${escapeXml(p.name)}" Type="${escapeXml(p.type)}"${nullable} />`;
}

function enumXml(graphEnum: GraphEnum<string>, version: GraphVersion): string {
  const members = graphEnum.members
    .filter((m) => !m.versions || m.versions.includes(version))
    .map((m) => `        <Member Name="${escapeXml(m.name)}" Value="${m.value}" />`);
  return [`      <EnumType Name="${escapeXml(graphEnum.name)}">`, ...members, '      </EnumType>'].join('\n');
}

/**
 * The CSDL (`$metadata`) of what vppd serves under a version: the `entity` base, `vppToken`, its enums
 * and complex types, and the `deviceAppManagement` singleton holding `vppTokens`. v1.0 omits beta-only
 * properties and enum members.
 */
export function buildMetadataDocument(version: GraphVersion): string {
  const tokenProperties = vppTokenCsdlProperties.filter(
    (p) => version === 'beta' || !betaOnlyTokenProperties.includes(p.name),
  );
  const enums = Object.values(vppEnums).map((e) => enumXml(e as GraphEnum<string>, version));
  const complex = vppComplexTypes.map((t) =>
    [
      `      <ComplexType Name="${t.name}"${t.baseType ? ` BaseType="${t.baseType}"` : ''}>`,
      ...t.properties.map(propertyXml),
      '      </ComplexType>',
    ].join('\n'),
  );
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
    '  <edmx:DataServices>',
    '    <Schema Namespace="microsoft.graph" Alias="graph" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ...enums,
    '      <EntityType Name="entity" Abstract="true">',
    '        <Key>',
    '          <PropertyRef Name="id" />',
    '        </Key>',
    '        <Property Name="id" Type="Edm.String" Nullable="false" />',
    '      </EntityType>',
    '      <EntityType Name="vppToken" BaseType="graph.entity">',
    ...tokenProperties.map(propertyXml),
    '      </EntityType>',
    '      <EntityType Name="deviceAppManagement" BaseType="graph.entity">',
    '        <NavigationProperty Name="vppTokens" Type="Collection(graph.vppToken)" ContainsTarget="true" />',
    '      </EntityType>',
    ...complex,
    '      <EntityContainer Name="GraphService">',
    '        <Singleton Name="deviceAppManagement" Type="graph.deviceAppManagement" />',
    '      </EntityContainer>',
    '    </Schema>',
    '  </edmx:DataServices>',
    '</edmx:Edmx>',
    '',
  ].join('\n');
}
