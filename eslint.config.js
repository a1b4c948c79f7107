// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers, written down where the linter enforces them (README "Layout"). Each entry: which folder,
 * which project folders it may not import, and which vendor SDKs it may not touch.
 */
const LAYERS = [
  {
    // Ports are the bottom floor: interfaces only, nothing of the project above them.
    files: ['src/ports/**/*.ts'],
    folders: [
      'adapters',
      'app',
      'bot',
      'cli',
      'commands',
      'config',
      'escalation',
      'infra',
      'locks',
      'monitor',
      'report',
      'runbooks',
      'sandbox',
      'views',
    ],
    message: 'Ports import nothing of the project: they are the interfaces everything else depends on.',
  },
  {
    // Runbooks and the engine talk to the world through ports only.
    files: ['src/runbooks/**/*.ts'],
    folders: ['adapters', 'app', 'bot', 'cli', 'commands', 'monitor', 'sandbox', 'views'],
    vendors: ['ssh2', '@aws-sdk/*', '@slack/*'],
    message:
      'Runbooks and the engine depend on ports (src/ports), never on adapters, Slack, commands or the monitor.',
  },
  {
    files: ['src/commands/**/*.ts', 'src/monitor/**/*.ts', 'src/escalation/**/*.ts', 'src/report/**/*.ts'],
    folders: ['adapters', 'app', 'bot', 'cli', 'sandbox'],
    vendors: ['ssh2', '@aws-sdk/*', '@slack/*'],
    message:
      'Commands, the monitor, escalation and reports never import the Slack layer (src/bot) or adapters: render with src/views, act through ports.',
  },
  {
    // Views are a leaf: pure Block Kit rendering that bot, commands, monitor and sandbox share.
    files: ['src/views/**/*.ts'],
    folders: ['adapters', 'app', 'bot', 'cli', 'commands', 'sandbox'],
    vendors: ['ssh2', '@aws-sdk/*', '@slack/*', 'ioredis'],
    message:
      'Views are pure rendering: they import types and pure helpers, never Slack, commands or adapters.',
  },
  {
    // The lock is a general fencing lock: it knows nothing of runs, runbooks or Slack.
    files: ['src/locks/**/*.ts'],
    folders: ['adapters', 'app', 'bot', 'cli', 'commands', 'monitor', 'runbooks', 'sandbox', 'views'],
    vendors: ['ssh2', '@aws-sdk/*', '@slack/*'],
    message: 'Locks know nothing of runs, Slack or adapters.',
  },
  {
    files: ['src/adapters/**/*.ts'],
    folders: ['app', 'bot', 'cli', 'commands', 'monitor', 'runbooks', 'sandbox', 'views'],
    message: 'Adapters implement ports; they do not reach up into the application.',
  },
];

function layerRule({ files, folders, vendors = [], message }) {
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: folders.flatMap((f) => [
                `../${f}/*`,
                `../../${f}/*`,
                `../../../${f}/*`,
                `../${f}.js`,
                `../../${f}.js`,
              ]),
              message,
            },
            ...(vendors.length > 0 ? [{ group: vendors, message }] : []),
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-artifacts/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // In-memory implementations of async ports have nothing to await.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'TSEnumDeclaration',
          message: 'Use an `as const` object with a union type instead of an enum.',
        },
        { selector: 'ExportDefaultDeclaration', message: 'Named exports only.' },
      ],
    },
  },
  ...LAYERS.map(layerRule),
  {
    // Tool configuration files must default-export.
    files: ['vitest.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/require-await': 'off',
      // Tests poke at raw payloads (YAML documents, Slack JSON) by key.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
);
