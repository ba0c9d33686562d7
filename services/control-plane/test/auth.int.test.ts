import { createHmac } from 'node:crypto';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { ADMIN_PASSWORD, bearer, createHarness, type Harness } from './harness';

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('auth', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness({ auth: { throttleUserFailures: 3, throttleAddressFailures: 1000 } });
  });
  afterAll(() => h.close());

  const events = async (action: string) => (await h.db.query<{ outcome: string; details: Record<string, unknown>; actor_name: string }>('SELECT * FROM audit_events WHERE action = $1 ORDER BY time', [action])).rows;

  it('logs in with the right password and returns tokens and the user', async () => {
    const res = await h.request.post('/api/v1/auth/login').send({ username: 'admin', password: ADMIN_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body.tokenType).toBe('Bearer');
    expect(res.body.accessToken.split('.')).toHaveLength(3);
    expect(res.body.refreshToken).toMatch(/^pa_rt_/);
    expect(res.body.expiresIn).toBe(900);
    expect(res.body.user.username).toBe('admin');
    expect(JSON.stringify(res.body)).not.toContain('password');
    const me = await h.request.get('/api/v1/auth/me').set(bearer(res.body.accessToken));
    expect(me.status).toBe(200);
    expect(me.body.permissions).toContain('users:write');
    const logins = await events('auth.login');
    expect(logins.some((e) => e.outcome === 'success' && e.actor_name === 'admin')).toBe(true);
  });

  it('refuses a wrong password with 401 and audits the failure without the password', async () => {
    const res = await h.request.post('/api/v1/auth/login').send({ username: 'admin', password: 'not-the-password-1' });
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body.code).toBe('AUTH_INVALID_CREDENTIALS');
    const failures = (await events('auth.login')).filter((e) => e.outcome === 'failure');
    expect(failures.length).toBeGreaterThan(0);
    expect(JSON.stringify(failures)).not.toContain('not-the-password-1');
    expect(h.logs.join('')).not.toContain('not-the-password-1');
  });

  it('gives the same answer for an unknown user as for a wrong password', async () => {
    const res = await h.request.post('/api/v1/auth/login').send({ username: 'nobody-here', password: 'whatever-password' });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('AUTH_INVALID_CREDENTIALS');
  });

  it('throttles a username after repeated failures (in Redis) with 429 and Retry-After', async () => {
    const create = await h.request.post('/api/v1/users').set(bearer(await h.adminToken())).send({ username: 'victim', password: 'victim-password-1' });
    expect(create.status).toBe(201);
    for (let i = 0; i < 3; i += 1) {
      expect((await h.request.post('/api/v1/auth/login').send({ username: 'victim', password: `wrong-password-${i}` })).status).toBe(401);
    }
    const blocked = await h.request.post('/api/v1/auth/login').send({ username: 'victim', password: 'victim-password-1' });
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('AUTH_THROTTLED');
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    const keys = await h.redis.client.keys(`${h.redis.prefix}login:user*`);
    expect(keys.length).toBeGreaterThan(0);
    expect((await events('auth.login')).some((e) => e.outcome === 'denied' && e.details.reason === 'throttled')).toBe(true);
  });

  describe('access tokens', () => {
    let token: string;
    beforeAll(async () => {
      token = await h.adminToken();
    });
    const me = (t: string) => h.request.get('/api/v1/auth/me').set(bearer(t));

    it('requires a token', async () => {
      const res = await h.request.get('/api/v1/auth/me');
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('AUTH_REQUIRED');
      expect(res.headers['www-authenticate']).toContain('Bearer');
    });

    it('rejects a tampered payload', async () => {
      const [head, body, sig] = token.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
      const forged = `${head}.${b64url({ ...claims, sub: 'usr_someoneelse' })}.${sig}`;
      const res = await me(forged);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('AUTH_TOKEN_INVALID');
    });

    it('rejects alg none', async () => {
      const [, body] = token.split('.') as [string, string];
      const res = await me(`${b64url({ alg: 'none', typ: 'at+jwt' })}.${body}.`);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('AUTH_TOKEN_INVALID');
    });

    it('rejects HS256 signed with the public key as the HMAC secret', async () => {
      const [head, body] = token.split('.') as [string, string, string];
      const kid = JSON.parse(Buffer.from(head, 'base64url').toString()).kid;
      const jwks = await h.request.get('/api/v1/auth/jwks');
      const jwk = jwks.body.keys.find((k: { kid: string }) => k.kid === kid);
      for (const secret of [JSON.stringify(jwk), String(jwk.x), Buffer.from(String(jwk.x), 'base64url').toString('latin1')]) {
        const h2 = b64url({ alg: 'HS256', kid, typ: 'at+jwt' });
        const sig = createHmac('sha256', secret).update(`${h2}.${body}`).digest('base64url');
        const res = await me(`${h2}.${body}.${sig}`);
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('AUTH_TOKEN_INVALID');
      }
    });

    it('rejects a token signed by a key that is not ours, whatever kid it names', async () => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const claims = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
      for (const kid of ['key_00000000000000000000000000', 'https://evil.example/jwks.json', '../../etc/passwd', (await exportSPKI(publicKey)).slice(0, 40)]) {
        const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).sign(privateKey);
        const res = await me(forged);
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('AUTH_TOKEN_INVALID');
      }
    });

    it('expires tokens by the clock', async () => {
      const fresh = (await h.login('admin', ADMIN_PASSWORD)).token;
      expect((await me(fresh)).status).toBe(200);
      h.clock.advance(901);
      try {
        const res = await me(fresh);
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('AUTH_TOKEN_EXPIRED');
      } finally {
        h.clock.advance(-901);
      }
    });
  });

  describe('refresh tokens', () => {
    it('rotates on every use and detects reuse by revoking the whole family', async () => {
      const first = (await h.login('admin', ADMIN_PASSWORD)).body;
      const r1 = await h.request.post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken });
      expect(r1.status).toBe(200);
      expect(r1.body.refreshToken).not.toBe(first.refreshToken);
      expect(r1.body.sessionId).toBe(first.sessionId);
      // The new access token works.
      expect((await h.request.get('/api/v1/auth/me').set(bearer(r1.body.accessToken))).status).toBe(200);
      // Presenting the spent token again: reuse detected, family revoked.
      const reuse = await h.request.post('/api/v1/auth/refresh').send({ refreshToken: first.refreshToken });
      expect(reuse.status).toBe(401);
      expect(reuse.body.code).toBe('AUTH_REFRESH_REUSED');
      // Even the newest token of the family no longer works, nor its access token.
      const next = await h.request.post('/api/v1/auth/refresh').send({ refreshToken: r1.body.refreshToken });
      expect(next.status).toBe(401);
      expect(next.body.code).toBe('AUTH_SESSION_REVOKED');
      const meAfter = await h.request.get('/api/v1/auth/me').set(bearer(r1.body.accessToken));
      expect(meAfter.status).toBe(401);
      expect(meAfter.body.code).toBe('AUTH_SESSION_REVOKED');
      expect((await events('auth.refresh_reuse')).length).toBeGreaterThan(0);
    });

    it('refuses unknown and malformed refresh tokens', async () => {
      for (const refreshToken of ['pa_rt_' + 'A'.repeat(43), 'garbage']) {
        const res = await h.request.post('/api/v1/auth/refresh').send({ refreshToken });
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('AUTH_REFRESH_INVALID');
      }
    });

    it('stores refresh tokens only as hashes', async () => {
      const { body } = await h.login('admin', ADMIN_PASSWORD);
      const { rows } = await h.db.query<{ token_hash: Buffer }>('SELECT token_hash FROM refresh_tokens');
      expect(rows.some((r) => r.token_hash.toString('utf8').includes(String(body.refreshToken)))).toBe(false);
      expect(rows.every((r) => r.token_hash.length === 32)).toBe(true);
    });
  });

  it('logout ends the session: the access and refresh tokens stop working', async () => {
    const { body } = await h.login('admin', ADMIN_PASSWORD);
    const token = String(body.accessToken);
    expect((await h.request.post('/api/v1/auth/logout').set(bearer(token))).status).toBe(204);
    expect((await h.request.get('/api/v1/auth/me').set(bearer(token))).body.code).toBe('AUTH_SESSION_REVOKED');
    expect((await h.request.post('/api/v1/auth/refresh').send({ refreshToken: body.refreshToken })).body.code).toBe('AUTH_SESSION_REVOKED');
    expect((await events('auth.logout')).length).toBeGreaterThan(0);
  });

  it('publishes the verification keys and keeps a rotated key valid for the overlap', async () => {
    const before = (await h.login('admin', ADMIN_PASSWORD)).token;
    const rot = await h.request.post('/api/v1/keys/rotate').set(bearer(before)).send({ use: 'access' });
    expect(rot.status).toBe(200);
    const jwks = await h.request.get('/api/v1/auth/jwks');
    expect(jwks.body.keys.map((k: { kid: string }) => k.kid)).toContain(rot.body.kid);
    expect(jwks.body.keys.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(jwks.body)).not.toMatch(/"d":/);
    // A token signed by the old key still verifies during the overlap …
    expect((await h.request.get('/api/v1/auth/me').set(bearer(before))).status).toBe(200);
    // … and new tokens carry the new kid.
    const after = (await h.login('admin', ADMIN_PASSWORD)).token;
    expect(JSON.parse(Buffer.from(after.split('.')[0] as string, 'base64url').toString()).kid).toBe(rot.body.kid);
  });

  it('changes the own password with the current one, ending other sessions', async () => {
    await h.request.post('/api/v1/users').set(bearer(await h.adminToken())).send({ username: 'carol', password: 'carol-password-1' });
    const a = await h.login('carol', 'carol-password-1');
    const b = await h.login('carol', 'carol-password-1');
    const wrong = await h.request.post('/api/v1/auth/password').set(bearer(a.token)).send({ currentPassword: 'nope-nope-nope', newPassword: 'carol-password-2' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.code).toBe('AUTH_PASSWORD_MISMATCH');
    const weak = await h.request.post('/api/v1/auth/password').set(bearer(a.token)).send({ currentPassword: 'carol-password-1', newPassword: 'short' });
    expect(weak.status).toBe(400);
    expect(weak.body.errors[0].path).toBe('body.newPassword');
    const ok = await h.request.post('/api/v1/auth/password').set(bearer(a.token)).send({ currentPassword: 'carol-password-1', newPassword: 'carol-password-2' });
    expect(ok.status).toBe(204);
    expect((await h.request.get('/api/v1/auth/me').set(bearer(a.token))).status).toBe(200);
    expect((await h.request.get('/api/v1/auth/me').set(bearer(b.token))).body.code).toBe('AUTH_SESSION_REVOKED');
    expect((await h.request.post('/api/v1/auth/login').send({ username: 'carol', password: 'carol-password-1' })).status).toBe(401);
    await h.login('carol', 'carol-password-2');
  });

  it('allows self-registration only when an admin enabled it', async () => {
    const off = await h.request.post('/api/v1/auth/register').send({ username: 'newbie', password: 'newbie-password-1' });
    expect(off.status).toBe(403);
    expect(off.body.code).toBe('AUTH_REGISTRATION_DISABLED');
    const admin = await h.adminToken();
    const on = await h.request.patch('/api/v1/settings').set(bearer(admin)).send({ registration: { enabled: true } });
    expect(on.status).toBe(200);
    expect(on.body.registration).toEqual({ enabled: true, defaultRoles: ['user'] });
    const reg = await h.request.post('/api/v1/auth/register').send({ username: 'newbie', password: 'newbie-password-1' });
    expect(reg.status).toBe(201);
    expect(reg.body.roles).toEqual(['user']);
    const again = await h.request.post('/api/v1/auth/register').send({ username: 'NEWBIE', password: 'newbie-password-1' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CONFLICT');
    await h.request.patch('/api/v1/settings').set(bearer(admin)).send({ registration: { enabled: false } });
  });

  it('refuses passwords bcrypt would truncate', async () => {
    const res = await h.request.post('/api/v1/users').set(bearer(await h.adminToken())).send({ username: 'longpw', password: 'é'.repeat(40) });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe('body.password');
  });
});
