/**
 * The version in cellops's package.json. The file sits at a different depth from the running module in
 * the repository (src/cli/) and in a build (dist/src/cli/), so it is found by walking up to the nearest
 * package.json named cellops rather than by a fixed relative path.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'cellops' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json here, or not readable: look further up
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json of cellops not found above the program');
    dir = parent;
  }
}
