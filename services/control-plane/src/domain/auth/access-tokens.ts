import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AppError, newId } from '@pa/kit';
import type { KeyRing } from './key-ring';

export interface AccessTokenClaims {
  userId: string;
  username: string;
  sessionId: string;
}

export interface AccessTokenOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  clock?: () => Date;
}

/**
 * Short-lived access tokens: JWS (EdDSA only, `typ` at+jwt) with `iss`, `aud`,
 * `sub`, `sid` (login session), `jti`, `iat`, `exp`. The algorithm is pinned, so
 * `none`, HS* (public key as an HMAC secret) and RS/ES tokens are refused, and
 * `kid` only selects among the ring's own keys.
 */
export class AccessTokens {
  private readonly clock: () => Date;

  constructor(
    private readonly keys: KeyRing,
    private readonly options: AccessTokenOptions,
  ) {
    this.clock = options.clock ?? (() => new Date());
  }

  get ttlSeconds(): number {
    return this.options.ttlSeconds;
  }

  async sign(claims: AccessTokenClaims): Promise<{ token: string; expiresAt: Date }> {
    const { kid, privateKey } = this.keys.signingKey();
    const now = Math.floor(this.clock().getTime() / 1000);
    const exp = now + this.options.ttlSeconds;
    const token = await new SignJWT({ sid: claims.sessionId, name: claims.username })
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(claims.userId)
      .setJti(newId('jti'))
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .sign(privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }

  async verify(token: string): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          const key = await this.keys.publicKey(header.kid);
          if (!key) throw new AppError('AUTH_TOKEN_INVALID', { message: 'The access token was not signed by a known key.' });
          return key;
        },
        {
          algorithms: ['EdDSA'],
          issuer: this.options.issuer,
          audience: this.options.audience,
          typ: 'at+jwt',
          currentDate: this.clock(),
          requiredClaims: ['sub', 'exp', 'iat', 'jti'],
        },
      );
      if (typeof payload.sid !== 'string' || typeof payload.sub !== 'string' || typeof payload.name !== 'string') {
        throw new AppError('AUTH_TOKEN_INVALID');
      }
      return { userId: payload.sub, username: payload.name, sessionId: payload.sid };
    } catch (err) {
      if (err instanceof AppError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new AppError('AUTH_TOKEN_EXPIRED', { cause: err });
      throw new AppError('AUTH_TOKEN_INVALID', { cause: err });
    }
  }
}
