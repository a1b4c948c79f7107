import { defineConfig } from 'vitest/config';
import { SummaryReporter } from './test/support/summary-reporter.js';

/**
 * Three projects, so that each can be run on its own (`npm run test:unit` and so on) and `npm test` runs
 * them all. unit: in-process only, no Redis, sshd, browser or child process, fast. integration: real
 * redis-server, OpenSSH, ganache and the lab's network namespaces. e2e: the bot as a whole (its process,
 * the Slack stand-in, the sandbox in a browser). The contract suites in test/contract are not projects of
 * their own: each implementation's test file (unit for the in-memory ones, integration for Redis) runs them.
 */
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // The machine has two cores; the integration tests start their own servers.
    maxWorkers: 2,
    reporters: ['default', new SummaryReporter()],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'] } },
    ],
  },
});
