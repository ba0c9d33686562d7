import { normalizeHttpTarget } from './normalize-target';

/**
 * Path globs: `*` matches within one segment (no `/`), `**` matches across
 * segments, and a trailing `/**` also matches the bare prefix (`/api/**`
 * matches `/api`, `/api/` and `/api/a/b`). Everything else is literal and is
 * compared with the normalised path (still percent-encoded for characters
 * other than the unreserved ones).
 */
export const compilePathGlob = (glob: string): RegExp => {
  let re = '';
  let i = 0;
  while (i < glob.length) {
    if (glob.startsWith('/**', i) && i + 3 === glob.length) {
      re += '(?:/.*)?';
      i += 3;
    } else if (glob.startsWith('**', i)) {
      re += '.*';
      i += 2;
    } else if (glob[i] === '*') {
      re += '[^/]*';
      i += 1;
    } else {
      re += (glob[i] as string).replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
      i += 1;
    }
  }
  return new RegExp(`^${re}$`);
};

/**
 * Why a glob can never match a normalised path, or undefined when it can.
 * Uses the request normaliser itself: a glob that normalisation would refuse
 * or rewrite names paths that never reach the matcher.
 */
export const pathGlobProblem = (glob: string): string | undefined => {
  if (glob.includes('?')) return 'a path glob cannot contain `?` (the query is matched with `query` conditions)';
  const n = normalizeHttpTarget(glob);
  if (!n.ok) return `can never match: ${n.reason}`;
  if (n.target !== glob) return `can never match a normalised path; write it as ${JSON.stringify(n.target)}`;
  return undefined;
};
