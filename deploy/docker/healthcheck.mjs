// Docker HEALTHCHECK for the Port Authorizing image: asks the readiness
// endpoint of whichever service this container runs, found among the
// container's processes (so it works under tini, docker-init or none).
//   control plane  GET http://127.0.0.1:$PA_HTTP_PORT/readyz   (database answers, migrations applied)
//   data plane     GET http://127.0.0.1:$PA_ADMIN_PORT/readyz  (key set, audit spool, Redis, not draining)
//   demo backends  GET http://127.0.0.1:$DEMO_HTTP_PORT/healthz
// PA_HEALTHCHECK_URL overrides the choice. Exit 0 when healthy, 1 otherwise.
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';

const env = process.env;
const local = (host) => (!host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);

const TARGETS = [
  { marker: 'services/control-plane/src/main.ts', url: () => `http://${local(env.PA_HTTP_HOST)}:${env.PA_HTTP_PORT || 8080}/readyz` },
  { marker: 'services/data-plane/src/main.ts', url: () => `http://${local(env.PA_ADMIN_HOST)}:${env.PA_ADMIN_PORT || 7001}/readyz` },
  { marker: 'demo-backends.mjs', url: () => `http://127.0.0.1:${env.DEMO_HTTP_PORT || 8081}/healthz` },
];

const findUrl = () => {
  if (env.PA_HEALTHCHECK_URL) return env.PA_HEALTHCHECK_URL;
  let pids = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return null;
  }
  for (const pid of pids) {
    let cmdline;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const target = TARGETS.find((t) => cmdline.includes(t.marker));
    if (target) return target.url();
  }
  return null;
};

const url = findUrl();
if (!url) {
  process.stderr.write('healthcheck: no Port Authorizing service found in this container\n');
  process.exit(1);
}
const req = get(url, { timeout: 4000 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => {
    if (body.length < 2000) body += d;
  });
  res.on('end', () => {
    const ok = res.statusCode === 200;
    (ok ? process.stdout : process.stderr).write(`healthcheck: ${url} ${res.statusCode} ${body}\n`);
    process.exit(ok ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${url} ${err.message}\n`);
  process.exit(1);
});
