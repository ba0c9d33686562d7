/**
 * Shell completion scripts for bash and zsh, generated from the command tree so
 * they never drift from what the parser accepts. Connection and context names
 * are completed by calling `pa list -q` / `pa context list -q`.
 */
import type { CommandSpec, FlagSpec } from './args/parser';

export const SHELLS = ['bash', 'zsh'] as const;
export type Shell = (typeof SHELLS)[number];

interface Node {
  path: string;
  words: string[];
  flags: string[];
}

const walk = <T>(cmd: CommandSpec<T>, path: string, globals: readonly FlagSpec[], out: Node[]): void => {
  const words = (cmd.subcommands ?? []).flatMap((s) => [s.name, ...(s.aliases ?? [])]);
  const flags = [...(cmd.flags ?? []), ...globals].map((f) => `--${f.name}`).concat('--help');
  out.push({ path, words, flags });
  for (const sub of cmd.subcommands ?? []) {
    for (const name of [sub.name, ...(sub.aliases ?? [])]) walk(sub, path ? `${path} ${name}` : name, globals, out);
  }
};

/** Paths whose positional argument names something `pa` can list. */
const DYNAMIC: Record<string, string> = {
  connect: 'pa list -q 2>/dev/null',
  'context use': 'pa context list -q 2>/dev/null',
  'context delete': 'pa context list -q 2>/dev/null',
  'context rename': 'pa context list -q 2>/dev/null',
};

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

const caseTable = (fn: string, nodes: readonly Node[], pick: (n: Node) => string[]): string => {
  const arms = nodes
    .filter((n) => pick(n).length > 0)
    .map((n) => `    ${shellQuote(n.path)}) echo ${shellQuote(pick(n).join(' '))} ;;`)
    .join('\n');
  return `${fn}() {\n  case "$1" in\n${arms}\n  esac\n}`;
};

const dynamicTable = (fn: string): string => {
  const arms = Object.entries(DYNAMIC)
    .map(([path, cmd]) => `    ${shellQuote(path)}) ${cmd} ;;`)
    .join('\n');
  return `${fn}() {\n  case "$1" in\n${arms}\n  esac\n}`;
};

/** The completion script for `shell`. */
export const completionScript = <T>(root: CommandSpec<T>, globals: readonly FlagSpec[], shell: Shell): string => {
  const nodes: Node[] = [];
  walk(root, '', globals, nodes);
  const tables = [caseTable('_pa_words', nodes, (n) => n.words), caseTable('_pa_flags', nodes, (n) => n.flags), dynamicTable('_pa_dynamic')].join('\n\n');
  // Both scripts find the command path typed so far (words that name a
  // subcommand of the path before them), then offer its subcommands, its flags
  // after a dash, or names from `pa` itself for commands that take one.
  if (shell === 'bash') {
    return `# bash completion for pa (Port Authorizing). Load with: source <(pa completion bash)
${tables}

_pa_completion() {
  local cur cmdpath w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  cmdpath=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if [[ " $(_pa_words "$cmdpath") " == *" $w "* ]]; then
      cmdpath="\${cmdpath:+$cmdpath }$w"
    fi
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_pa_flags "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_pa_words "$cmdpath") $(_pa_dynamic "$cmdpath")" -- "$cur"))
  fi
}
complete -F _pa_completion pa
`;
  }
  return `#compdef pa
# zsh completion for pa (Port Authorizing). Load with: source <(pa completion zsh)
${tables}

_pa() {
  local cmdpath="" w i
  for ((i = 2; i < CURRENT; i++)); do
    w="\${words[i]}"
    [[ "$w" == -* ]] && continue
    if [[ " $(_pa_words "$cmdpath") " == *" $w "* ]]; then
      cmdpath="\${cmdpath:+$cmdpath }$w"
    fi
  done
  if [[ "\${words[CURRENT]}" == -* ]]; then
    compadd -- \${=$(_pa_flags "$cmdpath")}
  else
    compadd -- \${=$(_pa_words "$cmdpath")} \${=$(_pa_dynamic "$cmdpath")}
  fi
}
if (( $+functions[compdef] )); then compdef _pa pa; fi
`;
};
