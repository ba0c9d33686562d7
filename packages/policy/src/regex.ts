/**
 * Regular expressions written by admins (SQL `pattern`, HTTP `pathRegex`,
 * query and header conditions). JavaScript syntax; a leading `(?i)` (as in Go,
 * which the original port-authorizing used) makes the match case-insensitive.
 * Matching is unanchored, like Go's `MatchString`: anchor with `^…$`.
 */

/** Compiles an admin regex; throws an Error with a human message when it is unusable. */
export const compileAdminRegex = (source: string): RegExp => {
  let body = source;
  let flags = '';
  if (body.startsWith('(?i)')) {
    body = body.slice(4);
    flags = 'i';
  }
  if (hasNestedQuantifier(body)) {
    throw new Error('a quantified group contains another quantifier (e.g. `(a+)+`), which can backtrack catastrophically');
  }
  try {
    return new RegExp(body, flags);
  } catch (err) {
    throw new Error(`not a valid regular expression: ${(err as Error).message}`);
  }
};

/**
 * A conservative check for star height above one: a group that contains a
 * quantifier and is itself repeated by `*`, `+` or `{n,}`. Such patterns are
 * refused because the text they run on comes from the (untrusted) client.
 */
export const hasNestedQuantifier = (re: string): boolean => {
  const stack: boolean[] = [];
  let i = 0;
  let inClass = false;
  let lastClosedHadQuantifier = false;
  const markQuantifier = (): void => {
    if (stack.length > 0) stack[stack.length - 1] = true;
  };
  while (i < re.length) {
    const ch = re[i];
    if (ch === '\\') {
      i += 2;
      lastClosedHadQuantifier = false;
      continue;
    }
    if (inClass) {
      if (ch === ']') inClass = false;
      i += 1;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      lastClosedHadQuantifier = false;
    } else if (ch === '(') {
      stack.push(false);
      lastClosedHadQuantifier = false;
    } else if (ch === ')') {
      lastClosedHadQuantifier = stack.pop() ?? false;
      // A group inside a quantified group makes the outer one "contain a quantifier" only if it is repeated itself.
      i += 1;
      const next = re[i];
      const unbounded = next === '*' || next === '+' || (next === '{' && /^\{\d*,\d*\}/.test(re.slice(i)) && !/^\{\d+\}/.test(re.slice(i)));
      if (next === '*' || next === '+' || next === '?' || next === '{') markQuantifier();
      if (unbounded && lastClosedHadQuantifier) return true;
      if (lastClosedHadQuantifier) markQuantifier();
      continue;
    } else if (ch === '*' || ch === '+' || ch === '{') {
      markQuantifier();
    }
    i += 1;
  }
  return false;
};
