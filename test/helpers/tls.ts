import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A PEM key and self-signed certificate; the certificate is also the only CA a client needs. */
export interface SelfSignedCertificate {
  readonly key: string;
  readonly cert: string;
}

export interface SelfSignedOptions {
  /** Subject alternative names (default: 127.0.0.1, ::1 and localhost). */
  readonly ipAddresses?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly days?: number;
}

/**
 * Creates a throw-away P-256 key and a self-signed certificate for the loopback names with the
 * openssl CLI (node:crypto can make keys but not X.509 certificates). Files live in a temp directory
 * that is removed before returning.
 */
export async function createSelfSignedCertificate(
  options: SelfSignedOptions = {},
): Promise<SelfSignedCertificate> {
  const ips = options.ipAddresses ?? ['127.0.0.1', '::1'];
  const dns = options.dnsNames ?? ['localhost'];
  const san = [...ips.map((ip) => `IP:${ip}`), ...dns.map((name) => `DNS:${name}`)].join(',');
  const dir = await mkdtemp(join(tmpdir(), 'vppd-tls-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      String(options.days ?? 2),
      '-subj',
      '/CN=vppd test',
      '-addext',
      `subjectAltName=${san}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,digitalSignature,keyCertSign',
      '-addext',
      'extendedKeyUsage=serverAuth',
    ]);
    return { key: await readFile(keyFile, 'utf8'), cert: await readFile(certFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
