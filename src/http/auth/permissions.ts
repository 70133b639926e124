/**
 * Graph permission names that grant access to the VPP token surface (docs/graph-api.md,
 * "Authentication and permissions").
 * Reads accept any of `readPermissions`; writes need one of `writePermissions`.
 */
export const writePermissions = [
  'DeviceManagementServiceConfig.ReadWrite.All',
  'DeviceManagementApps.ReadWrite.All',
] as const;

export const readPermissions = [
  'DeviceManagementServiceConfig.Read.All',
  'DeviceManagementApps.Read.All',
  ...writePermissions,
] as const;

export const accessLevels = ['read', 'write'] as const;
export type AccessLevel = (typeof accessLevels)[number];

/** True when the granted permissions allow the access level. */
export function allows(granted: ReadonlySet<string>, level: AccessLevel): boolean {
  const needed: readonly string[] = level === 'read' ? readPermissions : writePermissions;
  return needed.some((p) => granted.has(p));
}
