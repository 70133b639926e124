// What a simulated location is seeded from: plain data, shared by the location and its token files.

/** The MDM that claimed a location (`mdmInfo` of client/config). */
export interface MdmInfo {
  readonly id: string;
  readonly name: string;
  readonly metadata?: string;
}

export const simLocationStates = ['active', 'expired', 'revoked'] as const;
export type SimLocationState = (typeof simLocationStates)[number];

/** How a simulated location is seeded. Sizes are record counts; data is derived from the sim seed. */
export interface LocationSeed {
  /** Short id used in admin routes and token file names (`<id>.vpptoken`). */
  readonly id: string;
  /** `locationName` in client/config. */
  readonly name: string;
  /** `orgName` inside the token file. */
  readonly orgName: string;
  /** ISO 3166 alpha-2 country (`countryISO2ACode`). */
  readonly countryCode: string;
  readonly assets: number;
  readonly assignments: number;
  readonly users: number;
  /** When the tokens expire (the sim's clock decides). Default: one year after the sim starts; past for `expired`. */
  readonly expiresAt?: Date | string;
  readonly state?: SimLocationState;
  /** Seeds the location as already claimed by an MDM. */
  readonly mdmInfo?: MdmInfo;
  readonly defaultPlatform?: 'volumestore' | 'enterprisestore';
  readonly websiteURL?: string;
  /** How many distinct valid token files exist for the location (a renewal adds one). Default 1. */
  readonly tokens?: number;
}
