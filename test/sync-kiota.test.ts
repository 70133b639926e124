import { HttpMethod, RequestInformation } from '@microsoft/kiota-abstractions';
import {
  createVppTokenFromDiscriminatorValue,
  type VppToken,
} from '@microsoft/msgraph-beta-sdk/models/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBetaAdapter, graphErrorMappings, vppTokensClient } from './helpers/kiota-vpp-tokens.js';
import { createSyncHarness, type SyncHarness } from './helpers/sync-harness.js';

// An independent client reads the new response shapes: the official beta SDK's Kiota models
// deserialize syncLicenses' answer and the token after each outcome (completed, failed, and the
// beta-only state duplicateLocationId), over real HTTP.

/** The generator's URL template of the syncLicenses action request builder. */
const syncLicensesUriTemplate = '{+baseurl}/deviceAppManagement/vppTokens/{vppToken%2Did}/syncLicenses';

let h: SyncHarness;
let baseUrl: string;

beforeAll(async () => {
  h = await createSyncHarness();
  const address = await h.app.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `${address}/beta`;
});
afterAll(async () => {
  await h.close();
});

function adapter() {
  return createBetaAdapter(baseUrl, h.auth.replace(/^Bearer /, ''));
}

async function syncLicenses(id: string): Promise<VppToken | undefined> {
  const a = adapter();
  const info = new RequestInformation(HttpMethod.POST, syncLicensesUriTemplate, {
    baseurl: a.baseUrl,
    'vppToken%2Did': id,
  });
  info.headers.tryAdd('Accept', 'application/json');
  return a.send<VppToken>(info, createVppTokenFromDiscriminatorValue, graphErrorMappings);
}

describe('Kiota models read the sync shapes', () => {
  it('syncLicenses answer, then the completed token', async () => {
    const created = await h.upload('small');
    await h.syncNow();
    const answer = await syncLicenses(created.id as string);
    expect(answer?.lastSyncStatus).toBe('inProgress');
    expect(answer?.tokenActionResults?.[0]?.actionName).toBe('syncLicenses');
    expect(answer?.tokenActionResults?.[0]?.actionState).toBe('pending');
    expect(answer?.additionalData?.['@odata.context']).toMatch(/\$metadata#microsoft\.graph\.vppToken$/);
    h.clock.advance(1000);
    await h.syncNow();
    const read = await vppTokensClient(adapter()).get(created.id as string);
    expect(read?.lastSyncStatus).toBe('completed');
    expect(read?.state).toBe('valid');
    expect(read?.locationName).toBe('Springfield Elementary');
    expect(read?.countryOrRegion).toBe('us');
    expect(read?.lastSyncDateTime?.toISOString()).toBe(h.clock.now().toISOString());
    expect(read?.tokenActionResults?.[0]?.actionState).toBe('done');
    expect(read?.tokenActionResults?.[0]?.lastUpdatedDateTime?.toISOString()).toBe(
      h.clock.now().toISOString(),
    );
  });

  it('failed syncs: invalid and duplicateLocationId states', async () => {
    const revoked = await h.upload('revoked');
    const first = await h.upload('duplicate', {}, 0);
    await h.syncNow();
    const second = await h.upload('duplicate', {}, 1);
    await h.syncNow();
    const client = vppTokensClient(adapter());
    const r = await client.get(revoked.id as string);
    expect([r?.lastSyncStatus, r?.state, r?.tokenActionResults?.[0]?.actionState]).toEqual([
      'failed',
      'invalid',
      'failed',
    ]);
    expect((await client.get(first.id as string))?.lastSyncStatus).toBe('completed');
    const d = await client.get(second.id as string);
    expect([d?.lastSyncStatus, d?.state]).toEqual(['failed', 'duplicateLocationId']);
  });
});
