import type { ZodError } from 'zod';
import type { FieldProblem } from './errors';

/** Flattens a ZodError into sorted field problems (`path` dotted, e.g. `rules.0.name`). */
export const zodProblems = (err: ZodError, prefix = ''): FieldProblem[] =>
  err.issues
    .map((issue) => ({
      path: [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.'),
      message: issue.message,
    }))
    .sort((a, b) => a.path.localeCompare(b.path));
