import { describe, expect, it } from 'vitest';
import { createSegmentIndex } from './not-found.js';

describe('SegmentIndex.unknownSegmentOf', () => {
  const index = createSegmentIndex();
  for (const version of ['beta', 'v1.0']) {
    index.add(`/${version}/$metadata`);
    index.add(`/${version}/deviceAppManagement/vppTokens`);
    index.add(`/${version}/deviceAppManagement/vppTokens/$count`);
    index.add(`/${version}/deviceAppManagement/vppTokens/:id`);
    index.add(`/${version}/deviceAppManagement/vppTokens/:id/syncLicenses`);
  }
  index.add('/beta/deviceAppManagement/mobileApps');

  it.each([
    ['/beta/users', 'users'],
    ['/v1.0/deviceAppManagement/mobileApps', 'mobileApps'],
    ['/beta/deviceAppManagement/vppTokens/123/revokeLicenses', 'revokeLicenses'],
    ['/beta/deviceAppManagement/vppTokens/$count/extra', 'extra'],
    ['/beta/deviceAppManagement', 'deviceAppManagement'],
    ['/beta/deviceAppManagement/vppTokens%2Fx', 'vppTokens/x'],
    ['/gamma/x', 'gamma'],
    ['/beta/%E0%A4%A', '%E0%A4%A'],
    ['/', ''],
    ['/beta/deviceAppManagement/x?$filter=a', 'x'],
    ['/beta/deviceAppManagement/mobileApps/abc', 'abc'],
  ])('%s → %s', (url, segment) => {
    expect(index.unknownSegmentOf(url)).toBe(segment);
  });
});
