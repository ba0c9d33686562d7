import { isAppError } from '@pa/kit';
import { loadConfig } from './config';

const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (err) {
    return isAppError(err) ? JSON.stringify(err.details ?? err.message) : String(err);
  }
  return 'no error';
};

describe('data-plane config: audit durability', () => {
  it('defaults to written durability with the group window left to the node', () => {
    const { audit } = loadConfig({});
    expect(audit.durability).toBe('written');
    expect(audit.groupCommitMs).toBeUndefined();
  });

  it('reads PA_AUDIT_DURABILITY and PA_AUDIT_GROUP_COMMIT_MS', () => {
    expect(loadConfig({ PA_AUDIT_DURABILITY: 'durable', PA_AUDIT_GROUP_COMMIT_MS: '5' }).audit).toMatchObject({ durability: 'durable', groupCommitMs: 5 });
  });

  it('names the setting that is wrong', () => {
    expect(problemsOf({ PA_AUDIT_DURABILITY: 'fsync' })).toContain('audit.durability');
    expect(problemsOf({ PA_AUDIT_GROUP_COMMIT_MS: '-1' })).toContain('audit.groupCommitMs');
  });
});

describe('data-plane config: direct PostgreSQL connections', () => {
  it('is off by default, and reads PA_PG_DIRECT_PORT and _HOST', () => {
    expect(loadConfig({}).postgresDirect.port).toBeUndefined();
    const c = loadConfig({ PA_PG_DIRECT_PORT: '5433', PA_PG_DIRECT_HOST: '0.0.0.0', PA_TUNNEL_TLS_CERT_FILE: '/tls/node.crt', PA_TUNNEL_TLS_KEY_FILE: '/tls/node.key' });
    expect(c.postgresDirect).toEqual({ port: 5433, host: '0.0.0.0' });
  });

  it('refuses a direct port without the TLS certificate (the grant is the password)', () => {
    expect(problemsOf({ PA_PG_DIRECT_PORT: '5433' })).toContain('postgresDirect.port');
  });
});
