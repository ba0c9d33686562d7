import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../errors';
import { ConfigStore } from './config-file';
import { withFileLock } from './file-lock';
import { RuntimeRegistry } from './runtime-registry';

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'pa-store-'));
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

describe('ConfigStore', () => {
  it('reads a missing file as an empty config', () => {
    expect(new ConfigStore(join(base, 'cfg')).read()).toEqual({ currentContext: null, contexts: {} });
  });

  it('writes atomically with mode 0600 in a 0700 directory, leaving no temporary files', async () => {
    const dir = join(base, 'cfg');
    const store = new ConfigStore(dir);
    await store.update((c) => {
      c.contexts.dev = { server: 'http://127.0.0.1:8080', accessToken: 'secret' };
      c.currentContext = 'dev';
    });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['config.json']);
    expect(store.read().contexts.dev?.accessToken).toBe('secret');
  });

  it('tightens a config directory that others can enter', () => {
    const dir = join(base, 'loose');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    new ConfigStore(dir).write({ currentContext: null, contexts: {} });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it.each([
    ['{not json', 'it is not valid JSON'],
    ['{"contexts": {"x": {"server": "not a url"}}}', 'contexts.x.server'],
    ['{"currentContext": 7}', 'currentContext'],
  ])('explains a corrupt file (%s) and what to do', (text, where) => {
    const dir = join(base, 'cfg');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), text);
    const err = (() => {
      try {
        new ConfigStore(dir).read();
      } catch (e) {
        return e as CliError;
      }
      throw new Error('expected an error');
    })();
    expect(err).toBeInstanceOf(CliError);
    expect(err.message).toContain(join(dir, 'config.json'));
    expect(err.message).toContain(where);
    expect(err.message).toContain('move it away and run `pa login` again');
  });

  it('does not write when the update fails', async () => {
    const store = new ConfigStore(join(base, 'cfg'));
    await expect(
      store.update((c) => {
        c.currentContext = 'x';
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(store.read().currentContext).toBeNull();
  });
});

describe('withFileLock', () => {
  it('serialises holders', async () => {
    const lock = join(base, 'l.lock');
    const order: string[] = [];
    const slow = withFileLock(lock, async () => {
      order.push('a-in');
      await new Promise((r) => setTimeout(r, 100));
      order.push('a-out');
    });
    await new Promise((r) => setTimeout(r, 10));
    await withFileLock(lock, async () => {
      order.push('b');
    });
    await slow;
    expect(order).toEqual(['a-in', 'a-out', 'b']);
  });

  it('takes over a lock left by a dead process', async () => {
    const lock = join(base, 'l.lock');
    writeFileSync(lock, '999999');
    await expect(withFileLock(lock, async () => 'ok', { isAlive: () => false })).resolves.toBe('ok');
  });

  it('gives up with a clear message when a live process keeps it', async () => {
    const lock = join(base, 'l.lock');
    writeFileSync(lock, '1');
    await expect(withFileLock(lock, async () => 'ok', { isAlive: () => true, timeoutMs: 100 })).rejects.toThrow(/another pa process holds .*l\.lock/);
  });
});

describe('RuntimeRegistry', () => {
  it('lists live records and removes stale or unreadable ones', () => {
    const alive = new Set([101]);
    const reg = new RuntimeRegistry(join(base, 'cfg'), (pid) => alive.has(pid));
    const entry = { connection: 'db', protocol: 'postgres', address: '127.0.0.1', port: 5432, context: 'dev', grantExpiresAt: null };
    reg.record({ ...entry, pid: 101, startedAt: '2025-01-01T00:00:01.000Z' });
    reg.record({ ...entry, pid: 102, startedAt: '2025-01-01T00:00:00.000Z' });
    writeFileSync(join(reg.dir, 'connect-103.json'), 'garbage');
    expect(reg.list().map((e) => e.pid)).toEqual([101]);
    expect(readdirSync(reg.dir)).toEqual(['connect-101.json']);
    expect(statSync(join(reg.dir, 'connect-101.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(join(reg.dir, 'connect-101.json'), 'utf8'))).toMatchObject({ port: 5432 });
    reg.remove(101);
    expect(reg.list()).toEqual([]);
  });
});
