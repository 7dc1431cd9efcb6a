/**
 * `stemkit completion bash|zsh|fish`: a completion script generated from the command tree itself, so it
 * never falls behind the commands and options. Fixed option values (devices, formats, model ids, …)
 * complete too; everything else falls back to file names.
 */
import { Command, type Option } from 'commander';
import { UsageError } from '../../errors.js';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** One command path (`separate`, `models pull`) with what may follow it. */
export interface CompletionNode {
  path: string[];
  description: string;
  subcommands: Array<{ name: string; description: string }>;
  options: Array<{ flags: string[]; description: string; takesValue: boolean; values: string[] }>;
}

/** Values of options whose choices are not declared with commander's .choices(). */
const VALUE_HINTS: Readonly<Record<string, readonly string[]>> = {
  '--device': ['auto', 'cpu', 'cuda', 'webgpu'],
  '--profile': ['small', 'medium', 'large'],
  '--format': ['wav', 'flac', 'mp3', 'opus', 'ogg', 'm4a'],
  '--clip': ['rescale', 'clamp', 'none'],
  '--sample-rate': ['same', 'model'],
  '--channels': ['per-channel', 'downmix'],
  '--other-method': ['add', 'minus'],
  '--mode': ['2', '4', '6'],
  '--bits': ['16', '24', '32'],
  '--targets': ['auto', 'seed', 'off'],
  '--precision': ['auto', 'fp32', 'fp16', 'int8'],
};

function optionNode(o: Option, modelIds: readonly string[]): CompletionNode['options'][number] {
  const flags = [o.long, o.short].filter((f): f is string => typeof f === 'string');
  const takesValue = o.required || o.optional;
  const declared = (o as Option & { argChoices?: string[] }).argChoices;
  const values = declared ?? VALUE_HINTS[o.long ?? ''] ?? (o.long === '--model' || o.long === '--tts-model' ? modelIds : []);
  return { flags, description: o.description, takesValue, values: [...values] };
}

/** Walks the program: every command path with its subcommands and options (its own and the global ones). */
export function completionTree(program: Command, modelIds: readonly string[] = []): CompletionNode[] {
  const nodes: CompletionNode[] = [];
  const globals = program.options.map((o) => optionNode(o, modelIds));
  const visit = (cmd: Command, path: string[]): void => {
    const own = path.length === 0 ? [] : cmd.options.map((o) => optionNode(o, modelIds));
    nodes.push({
      path,
      description: cmd.description(),
      subcommands: cmd.commands.filter((c) => c.name() !== 'help').map((c) => ({ name: c.name(), description: c.description() })),
      options: [...own, ...globals, { flags: ['--help', '-h'], description: 'show help', takesValue: false, values: [] }],
    });
    for (const sub of cmd.commands) if (sub.name() !== 'help') visit(sub, [...path, sub.name()]);
  };
  visit(program, []);
  return nodes;
}

const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

function bashScript(nodes: readonly CompletionNode[]): string {
  const cases: string[] = [];
  for (const n of nodes) {
    const key = n.path.join(' ');
    const words = [...n.subcommands.map((s) => s.name), ...n.options.flatMap((o) => o.flags)].join(' ');
    cases.push(`    ${sq(key)}) words=${sq(words)} ;;`);
  }
  const valueCases = new Map<string, string>();
  for (const n of nodes) for (const o of n.options) if (o.values.length > 0) for (const f of o.flags) valueCases.set(f, o.values.join(' '));
  const takesValue = [...new Set(nodes.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags)))];
  return `# stemkit bash completion: source it, or save it as ~/.local/share/bash-completion/completions/stemkit
_stemkit() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]}
  local cmdpath="" w i words
  # The command path: leading words that name commands, skipping options and their values.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case " ${takesValue.join(' ')} " in *" $w "*) ((i++)); continue ;; esac
    [[ $w == -* ]] && continue
    case "$(_stemkit_words "\${cmdpath:+$cmdpath }$w")" in
      __none__) break ;;
      *) cmdpath="\${cmdpath:+$cmdpath }$w" ;;
    esac
  done
  case "$prev" in
${[...valueCases].map(([f, v]) => `    ${sq(f)}) COMPREPLY=($(compgen -W ${sq(v)} -- "$cur")); return ;;`).join('\n')}
  esac
  case " ${takesValue.join(' ')} " in *" $prev "*) COMPREPLY=($(compgen -f -- "$cur")); return ;; esac
  words=$(_stemkit_words "$cmdpath")
  if [[ $cur == -* || -n $(_stemkit_subcommands "$cmdpath") ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  [[ \${#COMPREPLY[@]} -eq 0 && $cur != -* ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
_stemkit_words() {
  local words=__none__
  case "$1" in
${cases.join('\n')}
  esac
  printf '%s' "$words"
}
_stemkit_subcommands() {
  case "$1" in
${nodes
  .filter((n) => n.subcommands.length > 0)
  .map((n) => `    ${sq(n.path.join(' '))}) printf '%s' ${sq(n.subcommands.map((s) => s.name).join(' '))} ;;`)
  .join('\n')}
  esac
}
complete -o default -F _stemkit stemkit
`;
}

function zshScript(nodes: readonly CompletionNode[]): string {
  // One _describe/_arguments-free function: the same walk as bash, with descriptions for commands.
  const cases = nodes.map((n) => {
    const subs = n.subcommands.map((s) => sq(`${s.name}:${oneLine(s.description).replace(/:/g, '\\:')}`)).join(' ');
    const opts = n.options.flatMap((o) => o.flags.map((f) => sq(`${f}:${oneLine(o.description).replace(/:/g, '\\:')}`))).join(' ');
    return `    ${sq(n.path.join(' '))}) subs=(${subs}); opts=(${opts}) ;;`;
  });
  const values = new Map<string, string[]>();
  for (const n of nodes) for (const o of n.options) if (o.values.length > 0) for (const f of o.flags) values.set(f, o.values);
  const takesValue = [...new Set(nodes.flatMap((n) => n.options.filter((o) => o.takesValue).flatMap((o) => o.flags)))];
  return `#compdef stemkit
# stemkit zsh completion: save it as _stemkit in a folder on $fpath (then compinit), or source it.
_stemkit() {
  local -a subs opts known
  local cmdpath="" w i
  known=(${nodes.map((n) => sq(n.path.join(' '))).join(' ')})
  for ((i = 2; i < CURRENT; i++)); do
    w=\${words[i]}
    case " ${takesValue.join(' ')} " in *" $w "*) ((i++)); continue ;; esac
    [[ $w == -* ]] && continue
    if (( \${known[(Ie)\${cmdpath:+$cmdpath }$w]} )); then cmdpath="\${cmdpath:+$cmdpath }$w"; else break; fi
  done
  case "\${words[CURRENT-1]}" in
${[...values].map(([f, v]) => `    ${sq(f)}) compadd -- ${v.map(sq).join(' ')}; return ;;`).join('\n')}
  esac
  case " ${takesValue.join(' ')} " in *" \${words[CURRENT-1]} "*) _files; return ;; esac
  case "$cmdpath" in
${cases.join('\n')}
  esac
  if [[ \${words[CURRENT]} == -* ]]; then
    _describe -t options option opts
  elif (( \${#subs} )); then
    _describe -t commands command subs
  else
    _files
  fi
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then _stemkit "$@"; else compdef _stemkit stemkit; fi
`;
}

function fishScript(nodes: readonly CompletionNode[]): string {
  const lines = ['# stemkit fish completion: save it as ~/.config/fish/completions/stemkit.fish', 'complete -c stemkit -f'];
  for (const n of nodes) {
    // fish conditions: the command path seen so far, and no deeper subcommand yet.
    const cond =
      n.path.length === 0
        ? '__fish_use_subcommand'
        : `__fish_seen_subcommand_from ${n.path[n.path.length - 1]}${n.subcommands.length > 0 ? `; and not __fish_seen_subcommand_from ${n.subcommands.map((s) => s.name).join(' ')}` : ''}`;
    for (const s of n.subcommands) lines.push(`complete -c stemkit -n ${sq(cond)} -a ${sq(s.name)} -d ${sq(oneLine(s.description))}`);
    for (const o of n.options) {
      const parts = [`complete -c stemkit -n ${sq(cond)}`];
      for (const f of o.flags) parts.push(f.startsWith('--') ? `-l ${f.slice(2)}` : `-s ${f.slice(1)}`);
      if (o.takesValue) parts.push(o.values.length > 0 ? `-x -a ${sq(o.values.join(' '))}` : '-r -F');
      parts.push(`-d ${sq(oneLine(o.description))}`);
      lines.push(parts.join(' '));
    }
    // Commands taking file arguments (separate, tts, eval, …) complete files.
    if (n.path.length > 0 && n.subcommands.length === 0) lines.push(`complete -c stemkit -n ${sq(cond)} -F`);
  }
  return `${lines.join('\n')}\n`;
}

/** The completion script for `shell`. */
export function completionScript(shell: Shell, nodes: readonly CompletionNode[]): string {
  return shell === 'bash' ? bashScript(nodes) : shell === 'zsh' ? zshScript(nodes) : fishScript(nodes);
}

/** `stemkit completion <shell>`. Prints the script to stdout; loads no model and no runtime. */
export function completionCommand(): Command {
  return new Command('completion')
    .description('Print a shell completion script: stemkit completion bash|zsh|fish')
    .argument('<shell>', `one of: ${SHELLS.join(', ')}`)
    .addHelpText(
      'after',
      `
Install:
  stemkit completion bash > ~/.local/share/bash-completion/completions/stemkit
  stemkit completion zsh > "\${fpath[1]}/_stemkit"
  stemkit completion fish > ~/.config/fish/completions/stemkit.fish`,
    )
    .action(async (shell: string, _opts: unknown, cmd: Command) => {
      if (!(SHELLS as readonly string[]).includes(shell)) throw new UsageError(`unknown shell "${shell}"`, { hint: `Use one of: ${SHELLS.join(', ')}.` });
      let root = cmd;
      while (root.parent) root = root.parent;
      const { listModels } = await import('../../models/registry.js');
      const ids = listModels().map((m) => m.id);
      const out = root.configureOutput().writeOut ?? ((s: string) => process.stdout.write(s));
      out(completionScript(shell as Shell, completionTree(root, ids)));
    });
}
