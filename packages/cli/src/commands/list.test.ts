/** `pa list`, run as the real CLI process against a fake control plane. */
import { FakeControlPlane, problem } from '../testing/fake-control-plane';
import { makeConfigDir, runPa, seedLogin } from '../testing/run-cli';

jest.setTimeout(120_000);

let cp: FakeControlPlane;
let cfg: { dir: string; cleanup: () => void };
beforeEach(async () => {
  cp = await FakeControlPlane.start();
  cfg = makeConfigDir();
  await seedLogin(cfg.dir, cp.url);
});
afterEach(async () => {
  await cp.close();
  cfg.cleanup();
});
const pa = (args: string[]) => runPa(args, { configDir: cfg.dir });

describe('pa list', () => {
  it('prints a table of name, protocol, description and tags', async () => {
    const r = await pa(['list']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'NAME         PROTOCOL   DESCRIPTION         TAGS',
        'reports-db   postgres   Reporting replica   env=prod, team=analytics',
        'wiki         http       Team wiki           team=docs',
        'echo         tcp        Echo service        -',
        '',
      ].join('\n'),
    );
    expect(cp.callsTo('GET', '/connections')[0]?.query).toEqual({});
  });

  it('prints JSON with --json, and filters by protocol', async () => {
    const r = await pa(['list', '--json', '--protocol', 'http']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([expect.objectContaining({ name: 'wiki', protocol: 'http', tags: { team: 'docs' } })]);
    expect(cp.callsTo('GET', '/connections')[0]?.query).toEqual({ protocol: 'http' });
  });

  it('says so when there is nothing to reach, and shows problem details with their exit code', async () => {
    cp.reachable = [];
    const empty = await pa(['list']);
    expect(empty.code).toBe(0);
    expect(empty.stderr).toBe('No connections you may reach. Ask an administrator for access.\n');
    cp.on('GET', '/connections', problem(503, 'DATABASE_UNAVAILABLE', 'The database is unavailable.'));
    const down = await pa(['list']);
    expect(down.code).toBe(5);
    expect(down.stderr).toBe('pa: The database is unavailable.\n');
  });
});
