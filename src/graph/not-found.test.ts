import { describe, expect, it } from 'vitest';
import { unknownSegmentOf } from './not-found.js';

describe('unknownSegmentOf', () => {
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
  ])('%s → %s', (url, segment) => {
    expect(unknownSegmentOf(url)).toBe(segment);
  });
});
