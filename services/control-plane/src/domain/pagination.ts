import { AppError } from '@pa/kit';

/** Opaque cursor: base64url of a small JSON object. */
export const encodeCursor = (value: Record<string, string>): string =>
  Buffer.from(JSON.stringify(value)).toString('base64url');

/** Decodes a cursor made by `encodeCursor`, requiring string `fields`; a bad one is a 400. */
export const decodeCursor = (cursor: string, fields: readonly string[]): Record<string, string> => {
  const bad = () => new AppError('VALIDATION_FAILED', { details: [{ path: 'cursor', message: 'not a cursor returned by this API' }] });
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (value === null || typeof value !== 'object') throw bad();
  const rec = value as Record<string, unknown>;
  for (const f of fields) if (typeof rec[f] !== 'string') throw bad();
  if ('t' in rec && Number.isNaN(Date.parse(rec.t as string))) throw bad();
  return rec as Record<string, string>;
};

/** A page of a list, as every list endpoint returns it. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** Slices `rows` (fetched with limit + 1) into a page, the cursor being the last item's id. */
export const pageById = <T extends { id: string }>(rows: T[], limit: number): Page<T> => {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  return { items, nextCursor: rows.length > limit && last ? encodeCursor({ id: last.id }) : null };
};
