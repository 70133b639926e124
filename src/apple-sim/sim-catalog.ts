import { mixHash, unitHash } from './sim-random.js';

// The store catalog the simulator sells from. Catalog item `c` is a pure function of (seed, c), so a
// location's assets and the content-metadata lookup agree without any shared table.

export const productTypes = ['App', 'Book'] as const;
export type ProductType = (typeof productTypes)[number];

/** What the content-metadata lookup knows about one adamId. */
export interface CatalogItem {
  readonly catalogIndex: number;
  readonly adamId: string;
  readonly productType: ProductType;
  readonly name: string;
  /** Apps only; books have no bundle id in Apple's lookup. */
  readonly bundleId: string | undefined;
  /** Lookup `kind`: `iosSoftware`, `macSoftware` or `ebook`. */
  readonly kind: string;
  readonly deviceFamilies: readonly string[];
  /** Platforms as the v2 `assets` endpoint reports them. */
  readonly supportedPlatforms: readonly string[];
  readonly artistName: string;
  /** Price in USD; 0 for free items. */
  readonly price: number;
}

const adjectives = [
  'Swift',
  'Bright',
  'Quiet',
  'Clever',
  'Daily',
  'Blue',
  'Open',
  'Simple',
  'Smart',
  'Happy',
  'Secure',
  'Rapid',
  'Little',
  'Grand',
  'Pocket',
  'Silver',
];
const nouns = [
  'Notes',
  'Planner',
  'Math',
  'Reader',
  'Atlas',
  'Scanner',
  'Studio',
  'Tasks',
  'Keyboard',
  'Lab',
  'Journal',
  'Maps',
  'Classroom',
  'Timer',
  'Canvas',
  'Words',
];
const vendors = ['example', 'acme', 'globex', 'initech', 'umbrella', 'hooli', 'contoso', 'fabrikam'];

interface PlatformProfile {
  readonly kind: string;
  readonly deviceFamilies: readonly string[];
  readonly supportedPlatforms: readonly string[];
}

const appProfiles: readonly { readonly upTo: number; readonly profile: PlatformProfile }[] = [
  {
    upTo: 0.55,
    profile: { kind: 'iosSoftware', deviceFamilies: ['iphone', 'ipad'], supportedPlatforms: ['iOS'] },
  },
  { upTo: 0.68, profile: { kind: 'iosSoftware', deviceFamilies: ['iphone'], supportedPlatforms: ['iOS'] } },
  { upTo: 0.83, profile: { kind: 'macSoftware', deviceFamilies: ['mac'], supportedPlatforms: ['macOS'] } },
  {
    upTo: 0.95,
    profile: {
      kind: 'iosSoftware',
      deviceFamilies: ['iphone', 'ipad', 'mac'],
      supportedPlatforms: ['iOS', 'macOS'],
    },
  },
  {
    upTo: 1,
    profile: {
      kind: 'iosSoftware',
      deviceFamilies: ['iphone', 'ipad', 'tvos'],
      supportedPlatforms: ['iOS', 'tvOS'],
    },
  },
];
const bookProfile: PlatformProfile = {
  kind: 'ebook',
  deviceFamilies: ['iphone', 'ipad', 'mac'],
  supportedPlatforms: ['iOS', 'macOS'],
};

const adamIdBase = 300_000_000;
// Stride larger than the seed offset range keeps adamIds unique per catalog index.
const adamIdStride = 1009;

/** The adamId of catalog item `c` under a seed key. */
export function adamIdFor(seedKey: number, c: number): string {
  return String(adamIdBase + c * adamIdStride + (seedKey % 1000));
}

/** Inverse of {@link adamIdFor}: the catalog index, or undefined when the id is not from this catalog. */
export function catalogIndexOf(seedKey: number, adamId: string): number | undefined {
  if (!/^\d{1,15}$/.test(adamId)) return undefined;
  const offset = Number(adamId) - adamIdBase - (seedKey % 1000);
  if (offset < 0 || offset % adamIdStride !== 0) return undefined;
  return offset / adamIdStride;
}

/** Computes catalog item `c` (deterministic in seed and index). */
export function catalogItem(seedKey: number, c: number): CatalogItem {
  const isBook = unitHash(seedKey, c, 1) < 0.15;
  const adj = adjectives[mixHash(seedKey, c, 2) % adjectives.length]!;
  const noun = nouns[mixHash(seedKey, c, 3) % nouns.length]!;
  const vendor = vendors[mixHash(seedKey, c, 4) % vendors.length]!;
  const artistName = `${vendor.charAt(0).toUpperCase()}${vendor.slice(1)} ${isBook ? 'Press' : 'Software'}`;
  const priceRoll = unitHash(seedKey, c, 5);
  const price = priceRoll < 0.35 ? 0 : [0.99, 1.99, 4.99, 9.99, 14.99][mixHash(seedKey, c, 6) % 5]!;
  if (isBook) {
    return {
      catalogIndex: c,
      adamId: adamIdFor(seedKey, c),
      productType: 'Book',
      name: `The ${adj} ${noun} Book ${c}`,
      bundleId: undefined,
      ...bookProfile,
      artistName,
      price,
    };
  }
  const roll = unitHash(seedKey, c, 7);
  const profile = (appProfiles.find((p) => roll < p.upTo) ?? appProfiles[0]!).profile;
  return {
    catalogIndex: c,
    adamId: adamIdFor(seedKey, c),
    productType: 'App',
    name: `${adj} ${noun} ${c}`,
    bundleId: `com.${vendor}.app${c}`,
    ...profile,
    artistName,
    price,
  };
}

/** The lockup record of the content-metadata lookup for one item (the fields MDMs read). */
export function lookupRecord(item: CatalogItem): Record<string, unknown> {
  const record: Record<string, unknown> = {
    id: item.adamId,
    name: item.name,
    kind: item.kind,
    artistName: item.artistName,
    deviceFamilies: item.deviceFamilies,
    artwork: {
      url: `https://artwork.example/${item.adamId}/{w}x{h}bb.{f}`,
      width: 512,
      height: 512,
    },
    offers: [
      {
        type: item.price === 0 ? 'get' : 'buy',
        price: item.price,
        priceFormatted: item.price === 0 ? 'Free' : `$${item.price.toFixed(2)}`,
        currencyCode: 'USD',
      },
    ],
    url: `https://apps.example/item/id${item.adamId}`,
  };
  if (item.bundleId !== undefined) record.bundleId = item.bundleId;
  return record;
}
