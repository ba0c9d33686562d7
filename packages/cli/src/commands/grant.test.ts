/** `pa grant`, run as the real CLI process against a fake control plane (REST) and GrantService (gRPC) on real sockets. */
import { FakeControlPlane } from '../testing/fake-control-plane';
import { FakeGrantService } from '../testing/fake-grant-service';
import { makeConfigDir, runPa, seedLogin } from '../testing/run-cli';

jest.setTimeout(60_000);

let cp: FakeControlPlane;
let grants: FakeGrantService;
let cfg: { dir: string; cleanup: () => void };

beforeEach(async () => {
  cp = await FakeControlPlane.start();
  grants = await FakeGrantService.start(cp);
  cp.grpc = { url: grants.address, tls: false };
  grants.tunnelUrls = ['http://127.0.0.1:7000'];
  cfg = makeConfigDir();
  await seedLogin(cfg.dir, cp.url);
});
afterEach(async () => {
  await Promise.all([cp.close(), grants.close()]);
  cfg.cleanup();
});

describe('pa grant', () => {
  it('prints the issued grant alone on stdout (for PGPASSWORD), and its expiry on stderr', async () => {
    const r = await runPa(['grant', 'reports-db'], { configDir: cfg.dir });
    expect(r.code).toBe(0);
    expect(grants.issuedTokens).toHaveLength(1);
    expect(r.stdout).toBe(`${grants.issuedTokens[0]}\n`);
    expect(r.stderr).toMatch(/^Grant \S+ for reports-db \(postgres\), valid until .+ It is a password/);
  });

  it('prints JSON with --json', async () => {
    const r = await runPa(['grant', 'reports-db', '--json'], { configDir: cfg.dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ grant: grants.issuedTokens[0], connection: 'reports-db', protocol: 'postgres', expiresAt: expect.any(String) });
  });

  it('says what to do for an unknown connection, and issues nothing', async () => {
    const r = await runPa(['grant', 'reports-dbb'], { configDir: cfg.dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown connection "reports-dbb" (did you mean reports-db?)');
    expect(grants.issuedTokens).toHaveLength(0);
  });
});
