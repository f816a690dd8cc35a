import fs from 'node:fs';
import type { Command } from 'commander';
import { grantReporting, REPORTING_SCHEMA, reportingViews } from '../admin/reporting-role';
import { config, fail, print, withStore } from './common';

/** Longest role name Postgres keeps whole (NAMEDATALEN - 1 bytes). */
const MAX_ROLE_NAME_BYTES = 63;

interface GrantOptions {
  create?: boolean;
  passwordFile?: string;
}

/** The new role's password: the file's first line (its line break is not part of it). */
function readPassword(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return fail(
      `--password-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  const password = text.split(/\r?\n/)[0] ?? '';
  if (password === '')
    fail(`--password-file: ${file} starts with an empty line; the password is its first line`);
  return password;
}

/** Checks the input before anything connects; returns the password when a role is to be created. */
function validGrant(role: string, options: GrantOptions): { password: string } | undefined {
  if (role.trim() === '' || Buffer.byteLength(role) > MAX_ROLE_NAME_BYTES)
    fail(`the role name must be 1 to ${MAX_ROLE_NAME_BYTES} bytes long`);
  if (options.passwordFile !== undefined && !options.create)
    fail('--password-file goes with --create (an existing role keeps its password)');
  if (!options.create) return undefined;
  if (options.passwordFile === undefined)
    fail('--create needs --password-file FILE: the new role logs in with it');
  return { password: readPassword(options.passwordFile!) };
}

/** Postgres's refusals a user can act on, as one line; anything else is left to failWith. */
function explainGrantFailure(err: unknown, role: string): never {
  const code = (err as { code?: string } | null)?.code;
  if (code === '42710') fail(`a role named "${role}" already exists: leave out --create to grant it`);
  if (code === '42704') fail(`no role named "${role}": add --create --password-file FILE to create it`);
  throw err;
}

/** `reporting grant`: read access to the SQL reporting interface for a Postgres role. */
export function addReportingCommands(program: Command): void {
  const reporting = program
    .command('reporting')
    .description(`the SQL reporting interface: schema ${REPORTING_SCHEMA} (docs/reporting.md)`)
    // Bad input is one line, as everywhere in these commands (no help text, no suggestion line).
    .showHelpAfterError(false)
    .showSuggestionAfterError(false)
    .configureOutput({ outputError: (text, write) => write(`omniscrape: ${text.replace(/^error: /, '')}`) });
  reporting
    .command('grant')
    .argument('<role>', 'the Postgres role')
    .description(`let a Postgres role read the views of ${REPORTING_SCHEMA}, and nothing else`)
    .option('--create', 'create the role first, able to log in (with --password-file)')
    .option('--password-file <file>', "the new role's password: the file's first line")
    .action(async (role: string, options: GrantOptions) => {
      const create = validGrant(role, options);
      const views = await withStore(config(), async (store) => {
        await grantReporting(store.db, role, create).catch((err: unknown) => explainGrantFailure(err, role));
        return reportingViews(store.db);
      });
      const created = create ? `created login role "${role}"; ` : '';
      print(`${created}role "${role}" may read ${views.map((v) => `${REPORTING_SCHEMA}.${v}`).join(', ')}`);
    });
}
