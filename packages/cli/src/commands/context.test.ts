/** `pa context …`, run as the real CLI process. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeControlPlane } from '../testing/fake-control-plane';
import { makeConfigDir, runPa, seedLogin } from '../testing/run-cli';

jest.setTimeout(120_000);

let a: FakeControlPlane;
let b: FakeControlPlane;
let cfg: { dir: string; cleanup: () => void };
beforeEach(async () => {
  a = await FakeControlPlane.start();
  b = await FakeControlPlane.start();
  cfg = makeConfigDir();
});
afterEach(async () => {
  await a.close();
  await b.close();
  cfg.cleanup();
});
const pa = (args: string[]) => runPa(args, { configDir: cfg.dir });
const stored = () => JSON.parse(readFileSync(join(cfg.dir, 'config.json'), 'utf8')) as { currentContext: string | null; contexts: Record<string, { server: string }> };

describe('pa context', () => {
  it('lists, switches, renames and deletes contexts; --context picks one for a single command', async () => {
    const first = await seedLogin(cfg.dir, a.url);
    const second = await seedLogin(cfg.dir, b.url);
    expect(stored().currentContext).toBe(second);

    const list = await pa(['context', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^CURRENT\s+NAME\s+SERVER\s+USER\s+LOGGED IN$/);
    expect(list.stdout).toMatch(new RegExp(`\\*\\s+${second.replace(/\./g, '\\.')}\\s+${b.url.replace(/\./g, '\\.')}\\s+alice\\s+yes`));

    // One command against the other control plane, without switching.
    expect((await pa(['--context', first, 'list', '-q'])).code).toBe(0);
    expect(a.callsTo('GET', '/connections')).toHaveLength(1);
    expect(b.callsTo('GET', '/connections')).toHaveLength(0);

    const use = await pa(['context', 'use', first]);
    expect(use.stdout).toBe(`Switched to context "${first}" (${a.url}).\n`);
    expect((await pa(['context', 'current'])).stdout).toBe(`${first}\n`);

    const renamed = await pa(['context', 'rename', first, 'prod']);
    expect(renamed.code).toBe(0);
    expect(stored().currentContext).toBe('prod');
    expect(stored().contexts.prod?.server).toBe(a.url);

    const del = await pa(['context', 'delete', 'prod']);
    expect(del.code).toBe(0);
    expect(stored().currentContext).toBeNull();
    expect(Object.keys(stored().contexts)).toEqual([second]);
  });

  it('explains unknown contexts with a suggestion', async () => {
    await seedLogin(cfg.dir, a.url);
    const name = `alice@${new URL(a.url).host}`;
    const r = await pa(['context', 'use', `${name}x`]);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(`pa: there is no context named "${name}x" (did you mean ${name}?): see \`pa context list\`\n`);
    const bad = await pa(['--context', 'nope', 'list']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('there is no context named "nope"');
  });
});
