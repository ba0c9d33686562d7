import { AppError } from '@pa/kit';
import { analyzeSqlText } from './parse';

/**
 * The libpg-query fingerprint of one statement, as decisions report it (for
 * writing `fingerprints` rules from an example query). Needs
 * {@link initPolicyEngine}.
 *
 * @throws AppError `VALIDATION_FAILED` when the text is not exactly one valid statement.
 */
export const fingerprintSql = (sql: string): string => {
  const a = analyzeSqlText(sql, { maxBytes: 1024 * 1024, withNormalizedText: false });
  if (!a.ok) throw new AppError('VALIDATION_FAILED', { message: `Cannot fingerprint the query: ${a.reason}.` });
  const [only, ...rest] = a.statements;
  if (only === undefined || rest.length > 0) {
    throw new AppError('VALIDATION_FAILED', { message: `Cannot fingerprint the query: expected exactly one statement, found ${a.statements.length}.` });
  }
  return only.fingerprint;
};
