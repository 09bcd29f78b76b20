import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A throw-away public-key infrastructure for a local secured broker, made with the openssl
 * command line into a directory: a CA, a broker certificate for 127.0.0.1/localhost signed by
 * it, a client certificate signed by it (its key encrypted with a passphrase), and a second,
 * unrelated CA that trusts nothing of the first (for "untrusted certificate" tests).
 * Everything is PEM; the broker reads its key store and trust store as PEM files.
 */
export interface TestPki {
  readonly dir: string;
  /** The CA certificate that signed the broker's and the client's certificates. */
  readonly caCert: string;
  /** The broker's PKCS#8 key followed by its certificate (Kafka's PEM key store file). */
  readonly brokerKeystore: string;
  /** The client's certificate (CN=qualm-client), signed by the CA. */
  readonly clientCert: string;
  /** The client's PKCS#8 key, encrypted (AES-256) with `clientKeyPassphrase`. */
  readonly clientKey: string;
  readonly clientKeyPassphrase: string;
  /** A CA certificate that signed nothing here: a client that trusts only it refuses the broker. */
  readonly otherCaCert: string;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`local-kafka: openssl ${args[0] ?? ''} failed: ${err.message}\n${stderr}`));
      else resolve();
    });
  });
}

async function selfSignedCa(dir: string, name: string): Promise<void> {
  await openssl(
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    dir,
  );
}

/** A key and a certificate signed by `ca`, with the given extensions (an openssl extfile). */
async function signedLeaf(dir: string, name: string, cn: string, ca: string, extensions: string, passphrase?: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${name}.plain.key`], dir);
  await openssl(['req', '-new', '-key', `${name}.plain.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
  await writeFile(join(dir, `${name}.ext`), extensions);
  await openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`],
    dir,
  );
  if (passphrase === undefined) return;
  await writeFile(join(dir, `${name}.pass`), passphrase);
  await openssl(['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', `${name}.plain.key`, '-out', `${name}.key`, '-passout', `file:${name}.pass`], dir);
}

/** Makes the CA, the broker's and the client's certificates and the unrelated CA in `dir`. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  await selfSignedCa(dir, 'ca');
  await selfSignedCa(dir, 'other-ca');
  await signedLeaf(dir, 'broker', 'localhost', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  const clientKeyPassphrase = 'client key passphrase ';
  await signedLeaf(dir, 'client', 'qualm-client', 'ca', 'extendedKeyUsage=clientAuth\n', clientKeyPassphrase);
  const keystore = join(dir, 'broker.keystore.pem');
  await writeFile(keystore, (await readFile(join(dir, 'broker.plain.key'), 'utf8')) + (await readFile(join(dir, 'broker.crt'), 'utf8')));
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    brokerKeystore: keystore,
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
    clientKeyPassphrase,
    otherCaCert: join(dir, 'other-ca.crt'),
  };
}
