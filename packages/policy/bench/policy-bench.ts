/**
 * Policy engine benchmark: decisions per second for typical SQL (uncached and
 * cached), for statements with a new literal each time (pgbench's simple
 * protocol: exact-text cache only versus the shape cache) and for HTTP
 * requests, and how long parsing a 1 MiB query blocks the event loop inline
 * versus on the worker pool.
 *
 *   npx tsx packages/policy/bench/policy-bench.ts
 */
import { compilePolicy, createPolicyEngine, initPolicyEngine, type CompiledPolicy } from '../src/index';

const out = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const TYPICAL_SQL = [
  'SELECT id, name, email FROM public.accounts WHERE id = 42',
  "SELECT a.id, count(o.id) FROM accounts a LEFT JOIN orders o ON o.account_id = a.id WHERE a.created_at > now() - interval '1 day' GROUP BY a.id ORDER BY 2 DESC LIMIT 20",
  "INSERT INTO audit_log (msg, at) VALUES ('login', now())",
  'UPDATE accounts SET balance = balance - 10 WHERE id = 7',
  'WITH recent AS (SELECT * FROM orders WHERE total > 100) SELECT * FROM recent r JOIN accounts a ON a.id = r.account_id',
  'BEGIN',
  'COMMIT',
  'DELETE FROM secret.keys WHERE k = $1',
];

const HTTP = [
  { method: 'GET', target: '/api/items/17?expand=owner', headers: { accept: 'application/json' } },
  { method: 'POST', target: '/api/items', headers: { 'content-type': 'application/json' } },
  { method: 'GET', target: '/api/admin/users', headers: {} },
  { method: 'GET', target: '/api/v1/../v2/items/%7Euser/./x', headers: {} },
];

const sqlPolicy = (): CompiledPolicy =>
  compilePolicy({
    roles: ['app'],
    connection: { name: 'db', tags: { env: 'prod' }, protocol: 'postgres', searchPath: ['public'] },
    policies: [
      {
        id: 'pol_app', version: 1, name: 'app', roles: ['app'], selector: { tags: { env: 'prod' } },
        rules: [
          { id: 'dml', effect: 'allow', type: 'sql', kinds: ['select', 'insert', 'update', 'delete'], relations: ['public.*'] },
          { id: 'tx', effect: 'allow', type: 'sql', kinds: ['transaction'] },
          { id: 'no-secrets', effect: 'deny', type: 'sql', relations: ['secret.*'] },
          { id: 'no-ddl', effect: 'deny', type: 'sql', kinds: ['ddl', 'truncate', 'grant'] },
        ],
      },
    ],
  });

const httpPolicy = (): CompiledPolicy =>
  compilePolicy({
    roles: ['app'],
    connection: { name: 'api', tags: {}, protocol: 'http' },
    policies: [
      {
        id: 'pol_api', version: 1, name: 'api', roles: ['app'], selector: { tags: {}, connections: ['api'] },
        rules: [
          { id: 'read', effect: 'allow', type: 'http', methods: ['GET', 'HEAD'], paths: ['/api/**'] },
          { id: 'create', effect: 'allow', type: 'http', methods: ['POST'], paths: ['/api/items'], headers: { 'content-type': '^application/json' } },
          { id: 'no-admin', effect: 'deny', type: 'http', paths: ['/api/admin/**'] },
        ],
      },
    ],
  });

/** Runs `fn` for about `ms` milliseconds; returns calls per second. */
const rate = (ms: number, fn: (i: number) => void): number => {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 100; k += 1) fn(n++);
    now = performance.now();
  }
  return (n / (now - start)) * 1000;
};

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const perCall = (perSec: number): string => `${(1e6 / perSec).toFixed(1)} µs each`;

/** pgbench's statements (simple protocol: literals inline), with the i-th set of random-looking values. */
const PGBENCH = [
  (i: number) => `UPDATE pgbench_accounts SET abalance = abalance + ${(i * 7919) % 10_001 - 5000} WHERE aid = ${(i * 104_729) % 10_000_000 + 1};`,
  (i: number) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${(i * 104_729) % 10_000_000 + 1};`,
  (i: number) => `UPDATE pgbench_tellers SET tbalance = tbalance + ${(i * 7919) % 10_001 - 5000} WHERE tid = ${(i % 1000) + 1};`,
  (i: number) => `UPDATE pgbench_branches SET bbalance = bbalance + ${(i * 7919) % 10_001 - 5000} WHERE bid = ${(i % 100) + 1};`,
  (i: number) => `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${(i % 1000) + 1}, ${(i % 100) + 1}, ${(i * 104_729) % 10_000_000 + 1}, ${(i * 7919) % 10_001 - 5000}, CURRENT_TIMESTAMP);`,
];

const main = async (): Promise<void> => {
  await initPolicyEngine();
  const pg = sqlPolicy();
  const http = httpPolicy();

  const uncached = createPolicyEngine({ cache: false });
  const cached = createPolicyEngine();
  // Distinct constants defeat the cache while keeping the statements typical.
  const uncachedRate = rate(2000, (i) => uncached.evaluateSql(pg, `${TYPICAL_SQL[i % TYPICAL_SQL.length] as string} /* ${i} */`));
  const cachedRate = rate(2000, (i) => cached.evaluateSql(pg, TYPICAL_SQL[i % TYPICAL_SQL.length] as string));
  const httpRate = rate(2000, (i) => cached.evaluateHttp(http, HTTP[i % HTTP.length] as (typeof HTTP)[number]));
  out(`SQL, typical statements, uncached (parse + fingerprint + judge): ${fmt(uncachedRate)} decisions/s (${perCall(uncachedRate)})`);
  out(`SQL, typical statements, decision cache hit:                    ${fmt(cachedRate)} decisions/s (${perCall(cachedRate)})`);
  out(`HTTP, normalise + judge:                                        ${fmt(httpRate)} decisions/s`);

  // A new literal each time: the exact-text cache never hits; the shape cache does after the first of each statement.
  const exactOnly = createPolicyEngine({ shapeCache: false });
  const shapes = createPolicyEngine();
  const pgbenchSql = (i: number): string => (PGBENCH[i % PGBENCH.length] as (n: number) => string)(Math.floor(i / PGBENCH.length));
  const exactRate = rate(2000, (i) => exactOnly.evaluateSql(pg, pgbenchSql(i)));
  const shapeRate = rate(2000, (i) => shapes.evaluateSql(pg, pgbenchSql(i)));
  out(`SQL, pgbench new literal each time, exact-text cache only:      ${fmt(exactRate)} decisions/s (${perCall(exactRate)})`);
  out(`SQL, pgbench new literal each time, shape cache:                ${fmt(shapeRate)} decisions/s (${perCall(shapeRate)})`);

  const one = 'SELECT a.id, b.name FROM public.accounts a JOIN public.orders b ON b.account_id = a.id WHERE a.id > 10;\n';
  const manyStatements = one.repeat(Math.floor((1024 * 1024) / one.length));
  const inList = `SELECT * FROM public.accounts WHERE id IN (${Array.from({ length: 170_000 }, (_, i) => i).join(',')})`.slice(0, 1024 * 1024 - 2).replace(/,\d*$/, ')');
  const big = createPolicyEngine({ cache: false, limits: { maxBytes: 2 * 1024 * 1024, syncMaxBytes: 2 * 1024 * 1024, parseTimeoutMs: 10_000, maxStatements: 20_000 } });
  await big.evaluateSqlAsync(pg, one.repeat(200)); // start and warm the pool

  for (const [label, sql] of [['one statement, 1 MiB IN list', inList], ['~10 000 statements', manyStatements]] as const) {
    let t = performance.now();
    const inline = big.evaluateSql(pg, sql);
    const inlineMs = performance.now() - t;
    let maxLag = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last);
      last = now;
    }, 1);
    t = performance.now();
    const pooled = await big.evaluateSqlAsync(pg, sql);
    const pooledMs = performance.now() - t;
    clearInterval(timer);
    out(`1 MiB query (${label}; ${sql.length} bytes, ${inline.statements.length} statements, ${inline.allowed ? 'allowed' : inline.reason}):`);
    out(`  inline (evaluateSql):           blocks the event loop for ${inlineMs.toFixed(0)} ms`);
    out(`  worker pool (evaluateSqlAsync): decided in ${pooledMs.toFixed(0)} ms (${pooled.allowed ? 'allowed' : pooled.reason}); longest event-loop stall ${maxLag.toFixed(1)} ms`);
  }
  const capped = await createPolicyEngine({ cache: false }).evaluateSqlAsync(pg, manyStatements);
  out(`  with the default limits the ~10 000-statement text is refused: ${capped.reason}`);
  await Promise.all([uncached.close(), cached.close(), exactOnly.close(), shapes.close(), big.close()]);
};

void main();
