import type { Permission } from '../src/domain/permissions';
import { bearer, type Harness } from './harness';

/** Shared helpers for control-plane integration tests: create things as the admin, read audit rows. */

export interface AuditRow {
  id: string;
  time: Date;
  actor_id: string | null;
  actor_name: string | null;
  action: string;
  outcome: string;
  target_type: string | null;
  target_id: string | null;
  connection_id: string | null;
  session_id: string | null;
  details: Record<string, unknown>;
}

/**
 * Audit rows straight from the table, optionally for one action, in the order
 * they were written (recorded_at has microseconds; event times only milliseconds).
 */
export const auditRows = async (h: Harness, action?: string): Promise<AuditRow[]> =>
  (
    await h.db.query<AuditRow>(
      `SELECT * FROM audit_events ${action ? 'WHERE action = $1' : ''} ORDER BY recorded_at, id`,
      action ? [action] : [],
    )
  ).rows;

/** Runs `fn`; returns its result and the audit rows for `action` it added. */
export const auditRowsAddedBy = async <T>(h: Harness, action: string, fn: () => PromiseLike<T>): Promise<{ result: T; rows: AuditRow[] }> => {
  const before = new Set((await auditRows(h, action)).map((r) => r.id));
  const result = await fn();
  return { result, rows: (await auditRows(h, action)).filter((r) => !before.has(r.id)) };
};

let seq = 0;
/** A unique name for this test process (letters, digits, -). */
export const uniqueName = (prefix: string): string => {
  seq += 1;
  return `${prefix}-${Date.now().toString(36)}-${seq}`;
};

export const passwordFor = (username: string): string => `pw-${username}-long-enough`;

/** Creates a user through the API as the admin; password is `passwordFor(username)`. */
export const createUser = async (h: Harness, username: string, roles: string[] = [], extra: Record<string, unknown> = {}) => {
  const res = await h.request
    .post('/api/v1/users')
    .set(bearer(await h.adminToken()))
    .send({ username, password: passwordFor(username), roles, ...extra });
  if (res.status !== 201) throw new Error(`creating user ${username}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; username: string; email: string | null; displayName: string; disabled: boolean; roles: string[]; createdAt: string; updatedAt: string };
};

/** Creates a user and logs in as them; returns the user and an access token. */
export const userWithToken = async (h: Harness, username: string, roles: string[] = []) => {
  const user = await createUser(h, username, roles);
  const { token, body } = await h.login(username, passwordFor(username));
  return { user, token, refreshToken: String(body.refreshToken) };
};

/** Creates a role through the API as the admin. */
export const createRole = async (h: Harness, name: string, permissions: Permission[]) => {
  const res = await h.request.post('/api/v1/roles').set(bearer(await h.adminToken())).send({ name, permissions });
  if (res.status !== 201) throw new Error(`creating role ${name}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; name: string; permissions: Permission[]; builtIn: boolean };
};

/** Creates a connection through the API as the admin. */
export const createConnection = async (h: Harness, body: Record<string, unknown>) => {
  const res = await h.request.post('/api/v1/connections').set(bearer(await h.adminToken())).send(body);
  if (res.status !== 201) throw new Error(`creating connection: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; name: string; protocol: string };
};

/** Creates a policy through the API as the admin. */
export const createPolicy = async (h: Harness, body: Record<string, unknown>) => {
  const res = await h.request.post('/api/v1/policies').set(bearer(await h.adminToken())).send(body);
  if (res.status !== 201) throw new Error(`creating policy: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; name: string; version: number; rules: Array<{ id: string }> };
};

/** Follows `nextCursor` through every page of a list endpoint, returning all items and the page count. */
export const allPages = async <T>(h: Harness, token: string, path: string, limit: number): Promise<{ items: T[]; pages: number }> => {
  const items: T[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const res = await h.request.get(`${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).set(bearer(token));
    if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    expect(res.body.items.length).toBeLessThanOrEqual(limit);
    items.push(...(res.body.items as T[]));
    cursor = res.body.nextCursor as string | null;
    pages += 1;
    if (pages > 10_000) throw new Error('pagination does not end');
  } while (cursor);
  return { items, pages };
};
