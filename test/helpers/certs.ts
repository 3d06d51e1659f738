import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { makeTmpDir } from './tmp.js';

const run = promisify(execFile);

/** A PEM certificate and key, as files and as bytes. */
export interface KeyPair {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface TestCerts {
  dir: string;
  caFile: string;
  ca: Buffer;
  /** For 127.0.0.1 and localhost, signed by the CA. */
  server: KeyPair;
  /** A client certificate signed by the CA. */
  client: KeyPair;
  /** A client certificate from another CA: what mutual TLS must refuse. */
  stranger: KeyPair;
  /** That other CA, PEM: trusting it instead of `ca` must fail to verify the server. */
  otherCa: Buffer;
  cleanup(): Promise<void>;
}

/**
 * A throwaway CA with server and client certificates, made with the `openssl` CLI in a temp
 * dir (P-256 keys: fast to generate; valid one day).
 */
export async function makeCerts(): Promise<TestCerts> {
  const { dir, cleanup } = await makeTmpDir('neuromfa-certs-');
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = async (name: string) =>
    run('openssl', ['req', '-x509', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.pem`), '-days', '1', '-subj', `/CN=neuromfa test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const leaf = async (name: string, caName: string, ext: string): Promise<KeyPair> => {
    await writeFile(p(`${name}.ext`), ext);
    await run('openssl', ['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=neuromfa test ${name}`]);
    await run('openssl', ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${caName}.pem`), '-CAkey', p(`${caName}.key`), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '1', '-extfile', p(`${name}.ext`)]);
    return { certFile: p(`${name}.pem`), keyFile: p(`${name}.key`), cert: await readFile(p(`${name}.pem`)), key: await readFile(p(`${name}.key`)) };
  };
  try {
    await ca('ca');
    await ca('other-ca');
    const server = await leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
    const client = await leaf('client', 'ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
    const stranger = await leaf('stranger', 'other-ca', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
    return { dir, caFile: p('ca.pem'), ca: await readFile(p('ca.pem')), server, client, stranger, otherCa: await readFile(p('other-ca.pem')), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
