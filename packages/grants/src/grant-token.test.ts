import { createHmac } from 'node:crypto';
import { SignJWT, base64url, exportJWK, generateKeyPair } from 'jose';
import { AppError, type ErrorCode } from '@pa/kit';
import {
  GRANT_AUDIENCE,
  GRANT_TOKEN_TYPE,
  KeyStore,
  decryptCredentials,
  encryptCredentials,
  generateNodeKeyPair,
  generateSigningKeyPair,
  signGrant,
  verifyGrant,
  GrantVerifier,
  type GrantContentInput,
  type KeyPairWithId,
} from './index';

const ISSUER = 'https://cp.example.test';
const DEFAULT_TOLERANCE = 30;
const T0 = new Date('2030-01-01T00:00:00Z');
const T0_S = T0.getTime() / 1000;
const at = (secondsAfterT0: number) => () => new Date(T0.getTime() + secondsAfterT0 * 1000);
const PASSWORD = 'hunter2-Very-Secret-Backend-Password';

let signer: KeyPairWithId;
let node: KeyPairWithId;
let store: KeyStore;

/** Stands in for @pa/policy's CompiledPolicy: an interface, so it has no index signature. */
interface PolicyLike {
  readonly version: number;
  readonly hash: string;
  readonly rules: readonly { effect: string; kinds: readonly string[] }[];
}
const policy: PolicyLike = { version: 7, hash: 'sha256:abc', rules: [{ effect: 'allow', kinds: ['select'] }] };

const content = async (): Promise<GrantContentInput> => ({
  sessionId: 'ses_01hzz00000000000000000000a',
  user: { id: 'usr_01hzz00000000000000000000a', name: 'alice', roles: ['analyst'] },
  connection: { id: 'con_01hzz00000000000000000000a', name: 'billing-db', protocol: 'postgres', host: 'db.internal', port: 5432, tlsMode: 'verify-full', database: 'billing' },
  policy,
  limits: { maxConnections: 4, sessionEndsAt: T0_S + 8 * 3600, idleTimeoutSeconds: 900 },
  credentials: await encryptCredentials({ kind: 'password', username: 'app_ro', password: PASSWORD }, node.publicKey, node.kid),
});

const sign = async (overrides: { clock?: () => Date; ttlSeconds?: number; issuer?: string; audience?: string; key?: KeyPairWithId } = {}) => {
  const key = overrides.key ?? signer;
  return signGrant(await content(), {
    privateKey: key.privateKey,
    kid: key.kid,
    issuer: overrides.issuer ?? ISSUER,
    ttlSeconds: overrides.ttlSeconds ?? 300,
    clock: overrides.clock ?? at(0),
    ...(overrides.audience ? { audience: overrides.audience } : {}),
  });
};

const verify = (token: string, overrides: { clock?: () => Date; keyStore?: KeyStore; issuer?: string; audience?: string; clockToleranceSec?: number } = {}) =>
  verifyGrant(token, {
    keyStore: overrides.keyStore ?? store,
    issuer: overrides.issuer ?? ISSUER,
    clock: overrides.clock ?? at(1),
    clockToleranceSec: overrides.clockToleranceSec ?? 0,
    ...(overrides.audience ? { audience: overrides.audience } : {}),
  });

/** Resolves to the AppError code the promise rejects with (fails the test if it resolves). */
const codeOf = async (promise: Promise<unknown>): Promise<ErrorCode> => {
  try {
    await promise;
  } catch (err) {
    if (err instanceof AppError) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
};

const b64json = (value: unknown): string => base64url.encode(JSON.stringify(value));
const partsOf = (token: string): [string, string, string] => {
  const [h, p, s] = token.split('.');
  return [h ?? '', p ?? '', s ?? ''];
};
const payloadOf = (token: string): Record<string, unknown> => JSON.parse(new TextDecoder().decode(base64url.decode(partsOf(token)[1]))) as Record<string, unknown>;

beforeAll(async () => {
  signer = await generateSigningKeyPair('key_current');
  node = await generateNodeKeyPair('node_key_1');
  store = new KeyStore().addVerificationKey(signer.kid, signer.publicKey).addDecryptionKey(node.kid, node.privateKey);
});

describe('signGrant / verifyGrant', () => {
  it('round-trips: the verified claims are what was signed', async () => {
    const signed = await sign();
    const claims = await verify(signed.token);
    expect(claims).toEqual(signed.claims);
    expect(claims.jti).toMatch(/^grt_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(claims.jti).toBe(signed.grantId);
    expect(claims).toMatchObject({ iss: ISSUER, aud: GRANT_AUDIENCE, sub: 'usr_01hzz00000000000000000000a', iat: T0_S, nbf: T0_S, exp: T0_S + 300 });
    expect(claims.policy).toEqual({ version: 7, hash: 'sha256:abc', rules: [{ effect: 'allow', kinds: ['select'] }] });
    expect(signed.expiresAt.toISOString()).toBe('2030-01-01T00:05:00.000Z');
  });

  it('puts EdDSA, the kid and the grant typ in the protected header', async () => {
    const { token } = await sign();
    expect(JSON.parse(new TextDecoder().decode(base64url.decode(partsOf(token)[0])))).toEqual({ alg: 'EdDSA', kid: 'key_current', typ: GRANT_TOKEN_TYPE });
  });

  it('never puts the clear backend password in the token; only the node key reads it', async () => {
    const { token, claims } = await sign();
    const payloadBytes = Buffer.from(base64url.decode(partsOf(token)[1]));
    expect(payloadBytes.includes(Buffer.from(PASSWORD))).toBe(false);
    expect(payloadBytes.includes(Buffer.from('app_ro'))).toBe(false);
    expect(Buffer.from(token).includes(Buffer.from(PASSWORD))).toBe(false);
    expect(claims.credentials).not.toBeNull();
    await expect(decryptCredentials(claims.credentials ?? '', store)).resolves.toEqual({ kind: 'password', username: 'app_ro', password: PASSWORD });
  });

  it('caps exp at the absolute session end', async () => {
    const signed = await sign({ clock: at(8 * 3600 - 60) });
    expect(signed.claims.exp).toBe(T0_S + 8 * 3600);
    await expect(sign({ clock: at(8 * 3600) })).rejects.toMatchObject({ code: 'GRANT_EXPIRED' });
  });

  it('refuses to sign with a ttl beyond the maximum or with a non-Ed25519 key', async () => {
    await expect(sign({ ttlSeconds: 24 * 3600 })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(sign({ key: { ...node } })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });

  it('refuses to sign invalid content, reporting the field', async () => {
    const bad = { ...(await content()), connection: { ...(await content()).connection, port: 70000 } };
    await expect(signGrant(bad, { privateKey: signer.privateKey, kid: signer.kid, issuer: ISSUER, ttlSeconds: 60, clock: at(0) })).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      details: [expect.objectContaining({ path: 'connection.port' })],
    });
  });
});

describe('verifyGrant: time, with an injected clock', () => {
  it('accepts up to exp and rejects from exp on (no tolerance)', async () => {
    const { token } = await sign({ ttlSeconds: 300 });
    await expect(verify(token, { clock: at(299) })).resolves.toBeDefined();
    expect(await codeOf(verify(token, { clock: at(300) }))).toBe('GRANT_EXPIRED');
    expect(await codeOf(verify(token, { clock: at(3600) }))).toBe('GRANT_EXPIRED');
  });

  it('applies the clock tolerance to exp', async () => {
    const { token } = await sign({ ttlSeconds: 300 });
    await expect(verify(token, { clock: at(320), clockToleranceSec: 30 })).resolves.toBeDefined();
    expect(await codeOf(verify(token, { clock: at(331), clockToleranceSec: 30 }))).toBe('GRANT_EXPIRED');
  });

  it('rejects a grant that is not valid yet, unless within tolerance', async () => {
    const { token } = await sign({ clock: at(600) });
    expect(await codeOf(verify(token, { clock: at(0) }))).toBe('GRANT_NOT_YET_VALID');
    await expect(verify(token, { clock: at(590), clockToleranceSec: 30 })).resolves.toBeDefined();
  });
});

describe('verifyGrant: identity of issuer and audience', () => {
  it('rejects the wrong issuer', async () => {
    const { token } = await sign({ issuer: 'https://evil.example' });
    expect(await codeOf(verify(token))).toBe('GRANT_ISSUER_MISMATCH');
  });

  it('rejects the wrong audience', async () => {
    const { token } = await sign({ audience: 'pa-control-plane' });
    expect(await codeOf(verify(token))).toBe('GRANT_AUDIENCE_MISMATCH');
    const ok = await sign();
    expect(await codeOf(verify(ok.token, { audience: 'some-other-service' }))).toBe('GRANT_AUDIENCE_MISMATCH');
  });
});

describe('verifyGrant: forgeries and confusion', () => {
  it('rejects a tampered payload (role added, signature kept)', async () => {
    const { token } = await sign();
    const [h, , s] = partsOf(token);
    const payload = payloadOf(token);
    const user = payload.user as { roles: string[] };
    user.roles.push('admin');
    expect(await codeOf(verify(`${h}.${b64json(payload)}.${s}`))).toBe('GRANT_SIGNATURE_INVALID');
  });

  it('rejects a tampered header (kid swapped to another trusted key)', async () => {
    const other = await generateSigningKeyPair('key_other');
    const both = new KeyStore().addVerificationKey(signer.kid, signer.publicKey).addVerificationKey(other.kid, other.publicKey);
    const { token } = await sign();
    const [, p, s] = partsOf(token);
    expect(await codeOf(verify(`${b64json({ alg: 'EdDSA', kid: 'key_other', typ: GRANT_TOKEN_TYPE })}.${p}.${s}`, { keyStore: both }))).toBe('GRANT_SIGNATURE_INVALID');
  });

  it('rejects a grant signed by another Ed25519 key under a trusted kid', async () => {
    const attacker = await generateSigningKeyPair(signer.kid);
    const { token } = await sign({ key: attacker });
    expect(await codeOf(verify(token))).toBe('GRANT_SIGNATURE_INVALID');
  });

  it('rejects alg "none" (unsigned), with or without a signature part', async () => {
    const { token } = await sign();
    const p = partsOf(token)[1];
    for (const alg of ['none', 'None', 'NONE']) {
      const h = b64json({ alg, kid: signer.kid, typ: GRANT_TOKEN_TYPE });
      expect(await codeOf(verify(`${h}.${p}.`))).toBe('GRANT_ALGORITHM_REJECTED');
      expect(await codeOf(verify(`${h}.${p}.${partsOf(token)[2]}`))).toBe('GRANT_ALGORITHM_REJECTED');
    }
  });

  it('rejects HS256 signed with the public key as the HMAC secret (algorithm confusion)', async () => {
    const { token } = await sign();
    const p = partsOf(token)[1];
    const jwk = await exportJWK(signer.publicKey);
    const secrets: Uint8Array[] = [base64url.decode(jwk.x ?? ''), new TextEncoder().encode(JSON.stringify(jwk)), new TextEncoder().encode(jwk.x ?? '')];
    for (const secret of secrets) {
      const h = b64json({ alg: 'HS256', kid: signer.kid, typ: GRANT_TOKEN_TYPE });
      const sig = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
      expect(await codeOf(verify(`${h}.${p}.${sig}`))).toBe('GRANT_ALGORITHM_REJECTED');
    }
  });

  it.each(['RS256', 'ES256', 'PS256'] as const)('rejects %s even with a well-formed signature (algorithm pinned)', async (alg) => {
    const { privateKey } = await generateKeyPair(alg);
    const claims = payloadOf((await sign()).token);
    const forged = await new SignJWT(claims).setProtectedHeader({ alg, kid: signer.kid, typ: GRANT_TOKEN_TYPE }).sign(privateKey);
    expect(await codeOf(verify(forged))).toBe('GRANT_ALGORITHM_REJECTED');
  });

  it('rejects an unknown kid', async () => {
    const stranger = await generateSigningKeyPair('key_unknown');
    const { token } = await sign({ key: stranger });
    expect(await codeOf(verify(token))).toBe('GRANT_KEY_UNKNOWN');
  });

  it.each([
    'https://evil.example/jwks.json',
    '../../../etc/passwd',
    '/dev/null',
    'key_current/../key_current',
    'file:///tmp/key.pem',
    '',
  ])('rejects a kid that tries to point outside the store: %j', async (kid) => {
    const { token } = await sign();
    const [, p, s] = partsOf(token);
    const code = await codeOf(verify(`${b64json({ alg: 'EdDSA', kid, typ: GRANT_TOKEN_TYPE })}.${p}.${s}`));
    expect(code).toBe('GRANT_MALFORMED');
  });

  it('does not resolve prototype members of the store as keys', async () => {
    for (const kid of ['__proto__', 'constructor', 'hasOwnProperty']) {
      const { token } = await sign({ key: await generateSigningKeyPair(kid) });
      expect(await codeOf(verify(token))).toBe('GRANT_KEY_UNKNOWN');
    }
  });

  it('refuses a header that carries or points at a key (jwk, jku, x5u)', async () => {
    const attacker = await generateSigningKeyPair(signer.kid);
    const claims = payloadOf((await sign()).token);
    const jwk = await exportJWK(attacker.publicKey);
    for (const extra of [{ jwk }, { jku: 'https://evil.example/jwks.json' }, { x5u: 'https://evil.example/cert.pem' }]) {
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ: GRANT_TOKEN_TYPE, ...extra }).sign(attacker.privateKey);
      expect(await codeOf(verify(forged))).toBe('GRANT_MALFORMED');
    }
  });

  it('rejects another token type signed by the same key (an access token is not a grant)', async () => {
    const claims = payloadOf((await sign()).token);
    const accessToken = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ: 'at+jwt' }).sign(signer.privateKey);
    expect(await codeOf(verify(accessToken))).toBe('GRANT_MALFORMED');
  });

  it('rejects validly signed claims that do not match the schema', async () => {
    const claims = payloadOf((await sign()).token);
    delete claims.limits;
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ: GRANT_TOKEN_TYPE }).sign(signer.privateKey);
    await expect(verify(token)).rejects.toMatchObject({ code: 'GRANT_MALFORMED', details: [expect.objectContaining({ path: 'limits' })] });
  });

  it('rejects validly signed grants missing a required registered claim', async () => {
    const claims = payloadOf((await sign()).token);
    delete claims.nbf;
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: signer.kid, typ: GRANT_TOKEN_TYPE }).sign(signer.privateKey);
    expect(await codeOf(verify(token))).toBe('GRANT_MALFORMED');
  });

  it.each(['', 'garbage', 'a.b', 'a.b.c.d', '!!!.###.$$$', `${'a'.repeat(300 * 1024)}.b.c`])('rejects malformed input %#', async (token) => {
    expect(await codeOf(verify(token))).toBe('GRANT_MALFORMED');
  });
});

describe('key rotation with overlap', () => {
  it('verifies grants of the old and the new key while both are in the store, then only the new', async () => {
    const next = await generateSigningKeyPair('key_next');
    const oldGrant = await sign();
    const newGrant = await sign({ key: next });
    const overlap = new KeyStore().addVerificationKey(signer.kid, signer.publicKey).addVerificationKey(next.kid, next.publicKey);
    await expect(verify(oldGrant.token, { keyStore: overlap })).resolves.toBeDefined();
    await expect(verify(newGrant.token, { keyStore: overlap })).resolves.toBeDefined();
    overlap.remove(signer.kid);
    expect(await codeOf(verify(oldGrant.token, { keyStore: overlap }))).toBe('GRANT_KEY_UNKNOWN');
    await expect(verify(newGrant.token, { keyStore: overlap })).resolves.toBeDefined();
  });
});

describe('GrantVerifier (verified tokens remembered)', () => {
  const opts = (o: { clock?: () => Date; keyStore?: KeyStore; issuer?: string } = {}) => ({ keyStore: o.keyStore ?? store, issuer: o.issuer ?? ISSUER, clock: o.clock ?? at(1) });

  it('answers a token it has verified from memory, with the same claims', async () => {
    const v = new GrantVerifier();
    const { token } = await sign();
    const first = await v.verify(token, opts());
    expect(v.size).toBe(1);
    expect(await v.verify(token, opts())).toBe(first);
  });

  it('refuses a remembered token once it expires, and forgets it', async () => {
    const v = new GrantVerifier();
    const { token } = await sign({ ttlSeconds: 60 });
    await v.verify(token, opts());
    expect(await codeOf(v.verify(token, opts({ clock: at(60 + DEFAULT_TOLERANCE + 1) })))).toBe('GRANT_EXPIRED');
    expect(v.size).toBe(0);
  });

  it('refuses a remembered token once its key is removed or replaced', async () => {
    const v = new GrantVerifier();
    const own = new KeyStore().addVerificationKey(signer.kid, signer.publicKey);
    const { token } = await sign();
    await v.verify(token, opts({ keyStore: own }));
    own.remove(signer.kid);
    expect(await codeOf(v.verify(token, opts({ keyStore: own })))).toBe('GRANT_KEY_UNKNOWN');
    const other = await generateSigningKeyPair();
    own.addVerificationKey(signer.kid, other.publicKey); // the same kid, another key
    expect(await codeOf(v.verify(token, opts({ keyStore: own })))).toBe('GRANT_SIGNATURE_INVALID');
  });

  it('does not answer from memory for another issuer, nor for a token that differs by one character', async () => {
    const v = new GrantVerifier();
    const { token } = await sign();
    await v.verify(token, opts());
    expect(await codeOf(v.verify(token, opts({ issuer: 'https://other.example.test' })))).toBe('GRANT_ISSUER_MISMATCH');
    const tampered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(await codeOf(v.verify(tampered, opts()))).toBe('GRANT_SIGNATURE_INVALID');
  });

  it('keeps at most maxEntries tokens', async () => {
    const v = new GrantVerifier({ maxEntries: 2 });
    for (let i = 0; i < 3; i += 1) await v.verify((await sign({ clock: at(i) })).token, opts({ clock: at(3) }));
    expect(v.size).toBe(2);
  });
});
