import bcrypt from 'bcryptjs';
import { z } from 'zod';

/**
 * Password rules. bcrypt reads at most 72 bytes; longer passwords are refused
 * rather than silently truncated.
 */
export const passwordSchema = z
  .string()
  .min(12, 'must be at least 12 characters')
  .refine((p) => Buffer.byteLength(p, 'utf8') <= 72, 'must be at most 72 bytes');

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** Spends the same time as a real verification (for unknown users). */
  verifyDummy(password: string): Promise<false>;
}

export const createPasswordHasher = (cost: number): PasswordHasher => {
  const dummy = bcrypt.hashSync('dummy-password-for-timing', cost);
  return {
    hash: (password) => bcrypt.hash(password, cost),
    verify: (password, hash) => bcrypt.compare(password, hash),
    verifyDummy: async (password) => {
      await bcrypt.compare(password, dummy);
      return false;
    },
  };
};
