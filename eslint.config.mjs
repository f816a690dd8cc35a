// Lint rules run by `npm test` (scripts/test.sh): typescript-eslint's recommended and type-checked
// sets, which catch floating promises and misused async callbacks; formatting is Prettier's alone.
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// The rooms of src/, top to bottom, and the arrows between them: a room imports only rooms below
// it (docs/architecture.md, "Layout"). `cli/` and `service.ts` start processes and may import any
// room. Each block below names one room and what it may not import; the rule matches relative
// specifiers, so `./service`, `../http/app` and `../../jobs/queue` alike.
const SERVER_ROOMS = [
  'cli',
  'service',
  'admin',
  'http',
  'maintenance',
  'jobs',
  'context',
  'metrics',
  'scraper',
  'db',
  'postgres-server',
  'client',
];
const forbid = (room, forbidden) => {
  const rooms = forbidden.filter((name) => `${name}/` !== room);
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            regex: `^(\\.\\.?/)+(${rooms.join('|')})(/|$)`,
            message: `${room} may not import ${rooms.join(', ')}: imports run from a higher room to a lower one (eslint.config.mjs).`,
          },
        ],
      },
    ],
  };
};
const except = (...allowed) => SERVER_ROOMS.filter((room) => !allowed.includes(room));

const rooms = [
  {
    // admin/: migrations runner, grants, PgBouncer detection, doctor, set-up (used by cli/ and
    // start-up alone). Below the entry points; it drives jobs/ (pg-boss's queues) and maintenance/.
    files: ['src/admin/**'],
    rules: forbid('admin/', ['cli', 'service', 'http', 'postgres-server', 'client']),
  },
  {
    // http/: the Express app, one router per resource, auth, errors, streams, pages.
    files: ['src/http/**'],
    rules: forbid('http/', ['cli', 'service', 'admin', 'maintenance', 'postgres-server', 'client']),
  },
  {
    // maintenance/: one file per scheduled duty, each owning its queue; reads and deletes through db/.
    files: ['src/maintenance/**'],
    rules: forbid('maintenance/', except('metrics', 'db')),
  },
  {
    // jobs/: the job lifecycle: submit, claim, settle, waits, webhooks, per-key limits.
    files: ['src/jobs/**'],
    rules: forbid('jobs/', ['cli', 'service', 'admin', 'http', 'maintenance', 'postgres-server', 'client']),
  },
  {
    // metrics/: the prom-client registry; it reads pool and queue figures from db/.
    files: ['src/metrics/**'],
    rules: forbid('metrics/', except('db')),
  },
  {
    // scraper/: undici fetch, address guard, memory budget, formats; knows nothing of jobs or Postgres.
    files: ['src/scraper/**'],
    rules: forbid('scraper/', except()),
  },
  {
    // db/: runtime data access; db/statements/ one named statement a file, db/reporting/ the
    // reporting reads. Knows nothing of who calls it.
    files: ['src/db/**'],
    rules: forbid('db/', except()),
  },
  {
    // postgres-server/: the embedded Postgres runner behind `npm start`; a program of its own.
    files: ['src/postgres-server/**'],
    rules: forbid('postgres-server/', except()),
  },
  {
    // The shared ground every room may import: settings, logger, error values, start-up failures,
    // sealed secrets. They import only each other and contract/.
    files: [
      'src/config.ts',
      'src/logger.ts',
      'src/domain-errors.ts',
      'src/startup-failure.ts',
      'src/sealed-secrets.ts',
    ],
    rules: forbid('the shared modules', except()),
  },
  {
    // contract/: zod shapes of every request and answer; shared by the server and the client, so
    // it imports nothing of the server.
    files: ['src/contract/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./', message: 'contract/ imports nothing outside contract/.' }] },
      ],
    },
  },
  {
    // client/: the typed client, published on its own: it imports contract/ alone.
    files: ['src/client/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(?!contract/)', message: 'client/ imports only contract/.' }] },
      ],
    },
  },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.node/', '.data/', 'coverage/', 'bench/results/'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `_name` marks a value left unused on purpose; `{ dropped, ...rest }` drops a field.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  {
    // The dashboard's page script runs in the browser, after Chart.js's own file (a global).
    files: ['static/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser, Chart: 'readonly' } },
  },
  {
    // A migration sees the schema as it was when it was written, not today's typed Database:
    // Kysely's own guidance is Kysely<any> there.
    files: ['migrations/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests and the bench read JSON answers (`any` by nature) and check their shape at run time;
    // the rules about promises and errors still apply to them.
    files: ['test/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Fakes implement async interfaces without awaiting anything.
      '@typescript-eslint/require-await': 'off',
    },
  },
  ...rooms,
  prettier,
);
