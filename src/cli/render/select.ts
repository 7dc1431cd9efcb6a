/**
 * Picks how progress is shown. Pure, so the choice is testable without a terminal.
 */

export type RendererKind = 'silent' | 'json' | 'plain' | 'bars';

/**
 * - `--quiet` → silent (errors and warnings still reach stderr)
 * - `--json` → JSON lines on stderr (stdout carries only result records)
 * - stderr not a TTY, or `CI` set → plain lines, never bars (CI logs)
 * - otherwise → cli-progress bars on stderr
 */
export function selectRenderer(
  flags: { quiet: boolean; json: boolean },
  env: Readonly<Record<string, string | undefined>>,
  isTTY: boolean,
): RendererKind {
  if (flags.quiet) return 'silent';
  if (flags.json) return 'json';
  if (!isTTY || isCi(env)) return 'plain';
  return 'bars';
}

/** `CI` set to anything but '', '0' or 'false' (GitHub Actions, GitLab and most CI services set CI=true). */
export function isCi(env: Readonly<Record<string, string | undefined>>): boolean {
  const ci = env['CI'];
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false';
}
