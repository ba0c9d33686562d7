#!/usr/bin/env node
// Fails when code generated from proto/ is not what the generator produces now.
// Until proto/ holds contracts, there is nothing to check.
import { existsSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const protos = existsSync('proto') ? readdirSync('proto', { recursive: true }).filter((f) => String(f).endsWith('.proto')) : [];
if (protos.length === 0) process.exit(0);
const gen = spawnSync('pnpm', ['run', '-s', 'generate'], { stdio: 'inherit' });
if (gen.status !== 0) process.exit(1);
const diff = spawnSync('git', ['status', '--porcelain', '--', 'packages/contracts/src/gen'], { encoding: 'utf8' });
if (diff.stdout.trim() !== '') {
  process.stderr.write(`generated code differs from proto/:\n${diff.stdout}`);
  process.exit(1);
}
