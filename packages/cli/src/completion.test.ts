import { spawnSync } from 'node:child_process';
import { GLOBAL_FLAGS, rootCommand } from './cli';
import { completionScript } from './completion';
import { makeConfigDir, runPa } from './testing/run-cli';

jest.setTimeout(120_000);

/** What bash completes for the words typed so far (the last one being completed). */
const complete = (words: string[]): string[] => {
  const script = completionScript(rootCommand, GLOBAL_FLAGS, 'bash');
  const program = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _pa_completion; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('/bin/bash', ['--norc', '--noprofile', '-c', program], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
  expect(r.stderr).toBe('');
  return r.stdout.split('\n').filter(Boolean).sort();
};

describe('completion', () => {
  it('completes commands, nested subcommands and flags in bash', () => {
    expect(complete(['pa', 'co'])).toEqual(['completion', 'connect', 'context']);
    expect(complete(['pa', 'admin', 'u'])).toEqual(['users']);
    expect(complete(['pa', 'admin', 'users', ''])).toEqual(['create', 'delete', 'get', 'list', 'ls', 'reset-password', 'rm', 'update']);
    expect(complete(['pa', 'connect', '--p'])).toEqual(['--port']);
    expect(complete(['pa', '--context', 'x', 'admin', 'audit', 'search', '--s'])).toEqual(['--since']);
  });

  it('prints both scripts from the real CLI, mentioning the commands', async () => {
    const cfg = makeConfigDir();
    try {
      const bash = await runPa(['completion', 'bash'], { configDir: cfg.dir });
      expect(bash.code).toBe(0);
      expect(bash.stdout).toContain('complete -F _pa_completion pa');
      for (const word of ['login', 'connect', 'admin', 'reset-password', '--credential-password-stdin']) expect(bash.stdout).toContain(word);
      const zsh = await runPa(['completion', 'zsh'], { configDir: cfg.dir });
      expect(zsh.stdout.startsWith('#compdef pa')).toBe(true);
      expect(zsh.stdout).toContain('compdef _pa pa');
      const bad = await runPa(['completion', 'fish'], { configDir: cfg.dir });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('<shell> must be one of: bash, zsh');
    } finally {
      cfg.cleanup();
    }
  });
});
