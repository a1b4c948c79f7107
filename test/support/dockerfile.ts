/**
 * A small reader of a Dockerfile, enough for tests to check what its stages do and to replay them:
 * comments and blank lines dropped, `\` continuations joined, instructions grouped by `FROM … AS <stage>`.
 */
export interface DockerInstruction {
  /** Upper case: RUN, COPY, CMD, … */
  readonly op: string;
  readonly args: string;
}

export interface DockerStage {
  readonly name: string;
  readonly from: string;
  readonly instructions: readonly DockerInstruction[];
}

export function parseDockerfile(text: string): DockerStage[] {
  const logical: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logical.push(`${pending}${line}`.trim());
    pending = '';
  }
  const stages: { name: string; from: string; instructions: DockerInstruction[] }[] = [];
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [image = '', , name] = args.split(/\s+/);
      stages.push({ name: name ?? String(stages.length), from: image, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

export function stage(stages: readonly DockerStage[], name: string): DockerStage {
  const found = stages.find((s) => s.name === name);
  if (!found) throw new Error(`the Dockerfile has no stage ${name}`);
  return found;
}

/** The arguments of a stage's instructions with this op, in order. */
export function argsOf(s: DockerStage, op: string): string[] {
  return s.instructions.filter((i) => i.op === op).map((i) => i.args);
}

/** A COPY's options (`--from=build`), sources and destination. */
export function parseCopy(args: string): { from?: string; sources: string[]; dest: string } {
  const words = args.split(/\s+/);
  const options = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const from = options.find((o) => o.startsWith('--from='))?.slice('--from='.length);
  const dest = paths.at(-1) ?? '';
  return { ...(from === undefined ? {} : { from }), sources: paths.slice(0, -1), dest };
}
