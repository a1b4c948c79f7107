#!/usr/bin/env node
/**
 * `cellops <command>` for operators at a terminal: `check-config [file]` (the resolved inventory, or
 * every problem), `runs`, `audit <run>` and `report <run>` (read from the bot's Redis). Results go to
 * stdout; errors go to stderr, redacted, with exit status 1, and usage errors with status 2. The shebang
 * stays: `npm run build` keeps it in dist/src/cli.js, which package.json's `bin` installs as `cellops`.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { loadConfigFile } from './config/load.js';
import { readEnv } from './config/env.js';
import { describePagers } from './escalation/pager-env.js';
import { ConfigError, describeError } from './errors.js';
import { redactSecrets } from './infra/redact.js';
import { readKnownHosts, renderInventory } from './cli/render-inventory.js';
import { parseCliArgs, USAGE, UsageError, type CliCommand } from './cli/parse-cli-args.js';
import { listRuns, printAudit, printReport } from './cli/run-commands.js';
import { packageVersion } from './cli/package-version.js';

export interface CliIo {
  /** One line of the result (stdout). */
  out(line: string): void;
  /** One line of an error or usage (stderr). */
  err(line: string): void;
}

async function checkConfig(file: string | undefined, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const path = file ?? readEnv(env).configPath;
  const config = await loadConfigFile(path);
  io.out(renderInventory(config, await readKnownHosts(config)));
  if (config.escalation) io.out(['escalation:', ...describePagers(config.escalation, env)].join('\n'));
  io.out('configuration OK');
  return 0;
}

async function execute(command: CliCommand, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  switch (command.kind) {
    case 'help':
      io.out(USAGE);
      return 0;
    case 'version':
      io.out(packageVersion());
      return 0;
    case 'check-config':
      return checkConfig(command.file, env, io);
    case 'runs':
      return listRuns({ ...command.store, limit: command.limit, json: command.json }, env, io);
    case 'audit':
      return printAudit({ ...command.store, runId: command.runId }, env, io);
    case 'report':
      return printReport({ ...command.store, runId: command.runId }, env, io);
  }
}

export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  const err = (line: string) => io.err(redactSecrets(line));
  let command: CliCommand;
  try {
    command = parseCliArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    err(`cellops: ${error.message}`);
    err("run 'cellops --help' for the commands and options");
    return 2;
  }
  try {
    return await execute(command, env, io);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) err(problem);
      return 1;
    }
    err(`cellops: ${describeError(error)}`);
    return 1;
  }
}

/** True when this module is the program, also when started through npm's bin symlink. */
function isMain(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  const io: CliIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
  };
  runCli(process.argv.slice(2), process.env, io).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`cellops: ${redactSecrets(describeError(error))}\n`);
      process.exitCode = 1;
    },
  );
}
