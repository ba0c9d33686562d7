import type { Selector, Tags } from './schema';

/** What a selector needs to know about a connection. */
export interface SelectableConnection {
  readonly name: string;
  readonly tags: Readonly<Tags>;
}

/**
 * Whether `selector` covers `connection`: named explicitly, or its tags match —
 * every selector tag (`all`) or at least one (`any`). A `*` value matches any
 * value of that key. A selector with no tags matches by name only.
 */
export const selectorMatches = (selector: Selector, connection: SelectableConnection): boolean => {
  if (selector.connections.includes(connection.name)) return true;
  const entries = Object.entries(selector.tags);
  if (entries.length === 0) return false;
  const hit = ([key, value]: [string, string]): boolean => {
    const actual = connection.tags[key];
    return actual !== undefined && (value === '*' || actual === value);
  };
  return selector.match === 'all' ? entries.every(hit) : entries.some(hit);
};
