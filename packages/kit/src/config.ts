import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { AppError } from './errors';
import { zodProblems } from './zod-problems';

/** Environment as read by a service's `loadConfig`; tests pass their own. */
export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Parses `input` with `schema`, reporting every problem at once (each with its
 * path) as a CONFIG_INVALID error, and returns a deeply frozen result.
 */
export const parseConfig = <T extends z.ZodType>(schema: T, input: unknown): Readonly<z.output<T>> => {
  const result = schema.safeParse(input);
  if (!result.success) {
    const details = zodProblems(result.error);
    throw new AppError('CONFIG_INVALID', {
      message: `Invalid configuration: ${details.map((d) => `${d.path || '(root)'}: ${d.message}`).join('; ')}`,
      details,
    });
  }
  return deepFreeze(result.data);
};

const deepFreeze = <T>(value: T): T => {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
};

/**
 * Reads a secret from `NAME` or from the file named by `NAME_FILE` (trailing
 * newline trimmed), as Docker and Kubernetes secrets are mounted.
 */
export const readSecret = (env: Env, name: string): string | undefined => {
  const direct = env[name];
  if (direct !== undefined && direct !== '') return direct;
  const file = env[`${name}_FILE`];
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new AppError('CONFIG_INVALID', { message: `Cannot read ${name}_FILE (${file}).`, cause });
  }
};

/** Sets `value` at a dotted path in a plain object tree, creating objects on the way. */
export const setPath = (target: Record<string, unknown>, path: string, value: unknown): void => {
  const keys = path.split('.');
  let node: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object') node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1] as string] = value;
};

/** Merges plain-object trees (later wins; arrays replaced, not merged). */
export const mergeDeep = (...trees: Record<string, unknown>[]): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  for (const tree of trees) {
    for (const [key, value] of Object.entries(tree)) {
      const prev = out[key];
      out[key] =
        isPlainObject(prev) && isPlainObject(value) ? mergeDeep(prev, value) : value;
    }
  }
  return out;
};

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** zod helpers for config values that arrive as strings from the environment. */
export const envBool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) =>
  typeof v === 'boolean' ? v : v === 'true' || v === '1' || v === 'yes',
);
export const envPort = z.coerce.number().int().min(0).max(65535);
export const envDurationSeconds = z.coerce.number().int().positive();
