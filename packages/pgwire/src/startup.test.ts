import { frontend } from './index';
import { FrontendDecoder } from './frontend-decoder';
import type { StartupMessage } from './frontend-messages';
import { checkBackendParameter, checkStartupParameters, isUtf8EncodingName, protocolNegotiation } from './startup';

const startup = (params: [string, string][], minor = 0): StartupMessage => {
  let out: StartupMessage | undefined;
  const err = new FrontendDecoder().write(frontend.startupMessage(new Map(params), minor), (m) => {
    if (m.type === 'StartupMessage') out = m;
  });
  if (err || !out) throw new Error('test startup message did not decode');
  return out;
};

describe('checkStartupParameters', () => {
  it('accepts what psql, libpq, pgJDBC and node-postgres send', () => {
    const r = checkStartupParameters(
      startup([
        ['user', 'alice'],
        ['database', 'app'],
        ['application_name', 'psql'],
        ['client_encoding', 'UTF8'],
        ['DateStyle', 'ISO, MDY'],
        ['TimeZone', 'Europe/Berlin'],
        ['extra_float_digits', '3'],
        ['IntervalStyle', 'iso_8601'],
        ['standard_conforming_strings', 'on'],
        ['statement_timeout', '5000'],
      ]),
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.user).toBe('alice');
    expect(r.value.database).toBe('app');
    expect([...r.value.settings.keys()]).toContain('DateStyle');
    expect(r.value.settings.has('user')).toBe(false);
  });

  it('defaults the database to the user name', () => {
    const r = checkStartupParameters(startup([['user', 'bob']]));
    expect(r.ok && r.value.database).toBe('bob');
  });

  it.each<[string, [string, string][]]>([
    ['replication', [['user', 'u'], ['replication', 'database']]],
    ['options', [['user', 'u'], ['options', '-c standard_conforming_strings=off']]],
    ['an unknown parameter', [['user', 'u'], ['session_authorization', 'postgres']]],
    ['search_path by default', [['user', 'u'], ['search_path', 'evil,public']]],
    ['a non-UTF8 client_encoding', [['user', 'u'], ['client_encoding', 'SJIS']]],
    ['GBK', [['user', 'u'], ['client_encoding', 'gbk']]],
    ['standard_conforming_strings off', [['user', 'u'], ['standard_conforming_strings', 'off']]],
    ['standard_conforming_strings false', [['user', 'u'], ['standard_conforming_strings', 'false']]],
    ['a setting twice in other case', [['user', 'u'], ['TimeZone', 'UTC'], ['timezone', 'UTC']]],
    ['REPLICATION in upper case', [['user', 'u'], ['REPLICATION', 'true']]],
    ['no user', [['database', 'd']]],
    ['an empty user', [['user', '']]],
    ['a bad extra_float_digits', [['user', 'u'], ['extra_float_digits', '9']]],
  ])('refuses %s with PG_STARTUP_REFUSED (08004)', (_name, params) => {
    const r = checkStartupParameters(startup(params));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe('PG_STARTUP_REFUSED');
    expect(r.error.spec.sqlstate).toBe('08004');
  });

  it('never echoes a refused value', () => {
    const r = checkStartupParameters(startup([['user', 'u'], ['client_encoding', 'SECRET-LOOKING-VALUE']]));
    expect(!r.ok && r.error.message).not.toContain('SECRET');
  });

  it('accepts search_path when a deployment adds it', () => {
    const r = checkStartupParameters(startup([['user', 'u'], ['search_path', 'app']]), {
      extraParameters: new Map([['search_path', (v: string) => /^[a-z_]+$/.test(v)]]),
    });
    expect(r.ok).toBe(true);
  });

  it('reports _pq_ protocol options and later minor versions for negotiation', () => {
    const msg = startup([['user', 'u'], ['_pq_.compression', 'on']], 2);
    const r = checkStartupParameters(msg);
    expect(r.ok && r.value.protocolOptions).toEqual(['_pq_.compression']);
    expect(protocolNegotiation(msg, ['_pq_.compression'])).toEqual({ needed: true, newestMinor: 0, unrecognizedOptions: ['_pq_.compression'] });
    expect(protocolNegotiation(startup([['user', 'u']]), []).needed).toBe(false);
  });
});

describe('UTF8 encoding names and backend parameter changes', () => {
  it.each(['UTF8', 'utf8', 'UTF-8', 'utf-8', 'Unicode', 'utf_8'])('%s is UTF8', (v) => expect(isUtf8EncodingName(v)).toBe(true));
  it.each(['LATIN1', 'SQL_ASCII', 'BIG5', 'utf16', ''])('%s is not', (v) => expect(isUtf8EncodingName(v)).toBe(false));

  it('flags a backend reporting client_encoding or standard_conforming_strings changed', () => {
    expect(checkBackendParameter('client_encoding', 'UTF8')).toBeNull();
    expect(checkBackendParameter('standard_conforming_strings', 'on')).toBeNull();
    expect(checkBackendParameter('DateStyle', 'German')).toBeNull();
    expect(checkBackendParameter('client_encoding', 'SJIS')?.code).toBe('PG_UNSAFE_PARAMETER_CHANGE');
    expect(checkBackendParameter('standard_conforming_strings', 'off')?.code).toBe('PG_UNSAFE_PARAMETER_CHANGE');
  });
});
