/**
 * Paths that reach commands on a node (DATA_DIR, nodekey backups) must be plain: absolute, made of
 * characters no shell, fstab or kcnd.conf (a bash file) treats specially, and naming one place only. One
 * definition serves the configuration schema, the deletion guard in TypeScript and the same guard inside
 * the privileged scripts, so they cannot drift apart.
 */
import { SafetyGateError } from '../errors.js';

/** Letters, digits and `. _ / + @ -`: nothing a shell, /etc/fstab or a sourced conf file would split or expand. */
const PLAIN_CHARS = /^[A-Za-z0-9._/+@-]+$/;

/** What is wrong with `path` as a plain absolute path, or undefined when it is one. */
export function plainPathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'must be an absolute path (starting with /)';
  if (!PLAIN_CHARS.test(path))
    return 'must be a plain path: letters, digits and . _ / + @ - only (no blanks, quotes, newlines or shell characters)';
  if (path === '/') return 'must not be / itself';
  if (path.includes('//')) return 'must not contain // (write each / once)';
  if (path.length > 1 && path.endsWith('/')) return 'must not end with /';
  if (path.split('/').some((segment) => segment === '.' || segment === '..'))
    return 'must not contain . or .. segments (write the path it stands for)';
  if (path.split('/').some((segment) => segment.startsWith('-')))
    return 'must not have a segment starting with - (a command could read it as an option)';
  return undefined;
}

/**
 * Refuses to delete `path` unless it is a plain path strictly inside the plain path `dataDir` (not
 * DATA_DIR itself, not a sibling whose name merely starts the same).
 */
export function assertDeletableInside(path: string, dataDir: string): void {
  const dirProblem = plainPathProblem(dataDir);
  if (dirProblem !== undefined)
    throw new SafetyGateError(
      `refusing to delete anything under DATA_DIR ${JSON.stringify(dataDir)}: it ${dirProblem}`,
    );
  const pathProblem = plainPathProblem(path);
  if (pathProblem !== undefined)
    throw new SafetyGateError(`refusing to delete ${JSON.stringify(path)}: it ${pathProblem}`);
  if (!path.startsWith(`${dataDir}/`))
    throw new SafetyGateError(
      `refusing to delete ${path}: it is not inside DATA_DIR ${dataDir}, the only place cellops deletes`,
    );
}

/**
 * The same check for a POSIX `sh` script: refuses (exit 2) unless the variable `name` holds a plain
 * absolute path other than `/`. Put it first in any script that deletes below that path.
 */
export function shellPlainPathGuard(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a shell variable name: ${name}`);
  return `case "$${name}" in
  /|*//*|*/|*/./*|*/.|*/../*|*/..|*/-*|*[!A-Za-z0-9._/+@-]*) echo "refusing path '$${name}': not a plain absolute path" >&2; exit 2;;
  /?*) ;;
  *) echo "refusing path '$${name}': not absolute" >&2; exit 2;;
esac`;
}
