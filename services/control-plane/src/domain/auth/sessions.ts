import type { Queryable } from '../../db/pool';

/**
 * Revokes login sessions (refresh-token families). An access token whose
 * session is revoked stops working at once, because every request checks it.
 */
export const revokeSessions = async (
  tx: Queryable,
  where: { userId: string } | { familyId: string },
  reason: string,
): Promise<number> => {
  const [column, value] = 'userId' in where ? ['user_id', where.userId] : ['family_id', where.familyId];
  const { rowCount } = await tx.query(
    `UPDATE refresh_tokens SET revoked_at = now(), revoke_reason = $2 WHERE ${column} = $1 AND revoked_at IS NULL`,
    [value, reason],
  );
  return rowCount ?? 0;
};
