/** Plain-text output helpers: aligned tables, durations, key/value blocks. */

/** One table column: a header and how to read the cell from a row. */
export interface Column<T> {
  header: string;
  value: (row: T) => string;
  /** Cap on the width; longer cells are cut with an ellipsis (default 60). */
  maxWidth?: number;
}

const cut = (text: string, max: number): string => {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, Math.max(1, max - 1))}…` : oneLine;
};

/** An aligned table with an upper-case header row; no trailing spaces. */
export const formatTable = <T>(rows: readonly T[], columns: readonly Column<T>[]): string => {
  const cells = rows.map((r) => columns.map((c) => cut(c.value(r), c.maxWidth ?? 60)));
  const headers = columns.map((c) => c.header.toUpperCase());
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join('\n')}\n`;
};

/** `1h 2m`, `14m 3s`, `45s` (largest two units). */
export const formatDuration = (ms: number): string => {
  const total = Math.max(0, Math.round(ms / 1000));
  const units: [string, number][] = [
    ['d', Math.floor(total / 86_400)],
    ['h', Math.floor((total % 86_400) / 3600)],
    ['m', Math.floor((total % 3600) / 60)],
    ['s', total % 60],
  ];
  const first = units.findIndex(([, n]) => n > 0);
  if (first === -1) return '0s';
  return units
    .slice(first, first + 2)
    .filter(([, n]) => n > 0)
    .map(([u, n]) => `${n}${u}`)
    .join(' ');
};

/** `in 14m 3s` / `3m ago`. */
export const formatRelative = (when: Date | number, now: number): string => {
  const t = typeof when === 'number' ? when : when.getTime();
  return t >= now ? `in ${formatDuration(t - now)}` : `${formatDuration(now - t)} ago`;
};

/** A local wall-clock time for humans, e.g. `2025-01-31 14:05:09`. */
export const formatTime = (when: Date | number | string): string => {
  const d = new Date(when);
  if (Number.isNaN(d.getTime())) return String(when);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
};

/** `k=v, k2=v2` for a tags map. */
export const formatTags = (tags: Readonly<Record<string, string>> | undefined): string =>
  Object.entries(tags ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

const scalar = (v: unknown): string => {
  if (v === null || v === undefined || v === '') return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.length ? v.join(', ') : '-';
  if (typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string')) {
    return formatTags(v as Record<string, string>) || '-';
  }
  return JSON.stringify(v);
};

/** `Key:  value` lines for an object's fields (nested objects as compact JSON). */
export const formatObject = (obj: Readonly<Record<string, unknown>>): string => {
  const entries = Object.entries(obj);
  if (entries.length === 0) return '';
  const width = Math.max(...entries.map(([k]) => k.length)) + 1;
  return `${entries.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${scalar(v)}`).join('\n')}\n`;
};

/** Pretty JSON with a final newline. */
export const formatJson = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;
