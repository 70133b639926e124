import type { LocationSeed } from './sim-location.js';

/**
 * The default scenario (demo, `vppd apple-sim`): one location for every situation vppd must report —
 * healthy small and large libraries, an expired token, a revoked one, a location another MDM manages,
 * and a location with two valid token files (a renewal uploaded next to the original: duplicate).
 */
export function defaultSimLocations(): LocationSeed[] {
  return [
    {
      id: 'small',
      name: 'Springfield Elementary',
      orgName: 'Springfield Public Schools',
      countryCode: 'US',
      assets: 40,
      assignments: 600,
      users: 120,
    },
    {
      id: 'large',
      name: 'Shelbyville High School',
      orgName: 'Shelbyville Unified',
      countryCode: 'US',
      assets: 400,
      assignments: 50_000,
      users: 4000,
    },
    {
      id: 'expired',
      name: 'Ogdenville Library',
      orgName: 'Ogdenville County',
      countryCode: 'US',
      assets: 12,
      assignments: 80,
      users: 20,
      state: 'expired',
    },
    {
      id: 'revoked',
      name: 'North Haverbrook Campus',
      orgName: 'North Haverbrook College',
      countryCode: 'CA',
      assets: 15,
      assignments: 90,
      users: 25,
      state: 'revoked',
    },
    {
      id: 'external-mdm',
      name: 'Capital City Office',
      orgName: 'Capital City Corp',
      countryCode: 'GB',
      assets: 20,
      assignments: 150,
      users: 30,
      mdmInfo: {
        id: '6f1d7c52-2b1e-4c0e-9a55-0d5c1f4e8b21',
        name: 'OtherMDM',
        metadata: 'othermdm.example 4.2',
      },
    },
    {
      id: 'duplicate',
      name: 'Brockway Branch',
      orgName: 'Brockway Industries',
      countryCode: 'DE',
      assets: 18,
      assignments: 120,
      users: 30,
      tokens: 2,
    },
  ];
}
