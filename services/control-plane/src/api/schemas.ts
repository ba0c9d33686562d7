import { z } from 'zod';

/** Common API schemas. */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().max(500).optional(),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() });

export const idParam = z.object({ id: z.string().min(1).max(100) });

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    instance: z.string().optional(),
    requestId: z.string().optional(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem details with a stable error code.' });

export const username = z.string().trim().min(3).max(63).regex(/^[a-z0-9][a-z0-9._-]*$/i, 'letters, digits, . _ - and starting with a letter or digit');
export const email = z.string().trim().toLowerCase().email().max(254);
export const name63 = z.string().trim().min(1).max(63).regex(/^[a-z0-9][a-z0-9_.-]*$/i, 'letters, digits, _ . - and starting with a letter or digit');
