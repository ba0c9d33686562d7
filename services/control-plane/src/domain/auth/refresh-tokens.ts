import { createHash, randomBytes } from 'node:crypto';
import { newId } from '@pa/kit';
import type { Queryable } from '../../db/pool';

const PREFIX = 'pa_rt_';

/** SHA-256 of a refresh token: what the database stores. */
export const hashRefreshToken = (token: string): Buffer => createHash('sha256').update(token).digest();

/** A new opaque refresh token (256 random bits). */
export const newRefreshToken = (): string => PREFIX + randomBytes(32).toString('base64url');

export const isRefreshTokenShaped = (token: string): boolean => token.startsWith(PREFIX) && token.length === PREFIX.length + 43;

export interface RefreshRow {
  id: string;
  family_id: string;
  user_id: string;
  issued_at: Date;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
}

/** Stores a new refresh token of `familyId` and returns the clear token (shown once). */
export const insertRefreshToken = async (
  tx: Queryable,
  args: { familyId: string; userId: string; expiresAt: Date },
): Promise<string> => {
  const token = newRefreshToken();
  await tx.query(
    'INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)',
    [newId('tok'), args.familyId, args.userId, hashRefreshToken(token), args.expiresAt],
  );
  return token;
};
