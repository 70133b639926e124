import { describe, expect, it } from 'vitest';
import { parseConfig, parseTrustedProxies } from '../config.js';
import { isVppdError } from '../domain/errors.js';
import { createExternalBaseResolver, type ForwardedRequest, lastForwardedElement } from './external-base.js';

const request = (
  remoteAddress: string,
  headers: Record<string, string | string[]> = {},
  protocol = 'http',
  host = '10.0.0.5:8080',
): ForwardedRequest => ({ protocol, host, headers, socket: { remoteAddress } });

const resolver = (trustProxy?: string, publicUrl?: string) =>
  createExternalBaseResolver({
    trustedProxies: trustProxy === undefined ? [] : parseTrustedProxies(trustProxy),
    publicUrl,
  });

const forwarded = {
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'tools.example.com',
  'x-forwarded-prefix': '/vppd',
};

describe('external base of a request', () => {
  it('is the socket origin when no proxy is trusted, whatever the headers say', () => {
    expect(resolver()(request('10.0.0.9', forwarded))).toBe('http://10.0.0.5:8080');
    expect(resolver()(request('10.0.0.9', {}, 'https', 'h.example:443'))).toBe('https://h.example');
  });

  it('believes X-Forwarded-Proto/Host/Prefix from a trusted peer only (addresses and CIDRs, v4 and v6)', () => {
    const resolve = resolver('10.1.0.0/16, ::1, 192.168.7.7');
    expect(resolve(request('10.1.2.3', forwarded))).toBe('https://tools.example.com/vppd');
    expect(resolve(request('::ffff:10.1.2.3', forwarded))).toBe('https://tools.example.com/vppd');
    expect(resolve(request('::1', forwarded))).toBe('https://tools.example.com/vppd');
    expect(resolve(request('192.168.7.7', forwarded))).toBe('https://tools.example.com/vppd');
    expect(resolve(request('10.2.0.1', forwarded))).toBe('http://10.0.0.5:8080');
    expect(resolve(request('192.168.7.8', forwarded))).toBe('http://10.0.0.5:8080');
  });

  it('reads the rightmost value (the one the trusted peer added), drops default ports', () => {
    const resolve = resolver('127.0.0.1');
    const headers = {
      'x-forwarded-proto': 'http, https',
      'x-forwarded-host': ['evil.example', 'tools.example.com:443'],
      'x-forwarded-prefix': '/evil, /vppd/',
    };
    expect(resolve(request('127.0.0.1', headers))).toBe('https://tools.example.com/vppd');
  });

  it('prefers RFC 7239 Forwarded proto/host (rightmost element), keeps X-Forwarded-Prefix', () => {
    const resolve = resolver('127.0.0.1');
    const headers = {
      forwarded:
        'for=1.2.3.4;host=evil.example;proto=http, for=5.6.7.8;proto=https;host="tools.example.com:8443"',
      'x-forwarded-host': 'other.example',
      'x-forwarded-prefix': '/vppd',
    };
    expect(resolve(request('127.0.0.1', headers))).toBe('https://tools.example.com:8443/vppd');
    expect(lastForwardedElement(['for="[2001:db8::1]:80";Host="[2001:db8::2]"'])).toEqual({
      for: '[2001:db8::1]:80',
      host: '[2001:db8::2]',
    });
  });

  it('ignores malformed forwarded values part by part', () => {
    const resolve = resolver('127.0.0.1');
    expect(
      resolve(
        request('127.0.0.1', {
          'x-forwarded-proto': 'gopher',
          'x-forwarded-host': 'a/b@c',
          'x-forwarded-prefix': '/../x?y',
        }),
      ),
    ).toBe('http://10.0.0.5:8080');
    expect(resolve(request('127.0.0.1', { 'x-forwarded-host': 'ok.example' }))).toBe('http://ok.example');
  });

  it('VPPD_PUBLIC_URL wins outright', () => {
    const resolve = resolver('127.0.0.1', 'https://pinned.example/base');
    expect(resolve(request('127.0.0.1', forwarded))).toBe('https://pinned.example/base');
  });
});

describe('VPPD_TRUST_PROXY and VPPD_PUBLIC_URL settings', () => {
  const base = { encryptionKey: Buffer.alloc(32, 7).toString('base64'), jwtSecret: 'x'.repeat(32) };
  const message = (raw: Record<string, string>) => {
    try {
      parseConfig({ ...base, ...raw });
    } catch (error) {
      if (isVppdError(error, 'config')) return error.message;
      throw error;
    }
    return 'accepted';
  };

  it('parses addresses and CIDRs, and names the bad entry', () => {
    expect(parseTrustedProxies('10.0.0.0/8,fd00::/8, 127.0.0.1')).toEqual([
      { family: 'ipv4', address: '10.0.0.0', prefix: 8 },
      { family: 'ipv6', address: 'fd00::', prefix: 8 },
      { family: 'ipv4', address: '127.0.0.1', prefix: 32 },
    ]);
    expect(message({ trustProxy: '10.0.0.0/8,proxy.local' })).toMatch(
      /^VPPD_TRUST_PROXY \(--trust-proxy\): 'proxy.local' is not/,
    );
    expect(message({ trustProxy: '10.0.0.0/33' })).toMatch(/prefix length must be 0-32/);
  });

  it('validates the public URL: absolute http(s), no query or fragment; trailing slash dropped', () => {
    expect(parseConfig({ ...base, publicUrl: 'https://tools.example.com/vppd/' }).externalUrl.publicUrl).toBe(
      'https://tools.example.com/vppd',
    );
    for (const bad of ['tools.example.com/vppd', 'ftp://x/', 'https://x/?a=1', 'https://x/#f', '/vppd']) {
      expect(message({ publicUrl: bad }), bad).toMatch(
        /^VPPD_PUBLIC_URL \(--public-url\): must be an absolute/,
      );
    }
  });
});
