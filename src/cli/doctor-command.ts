import { InvalidArgumentError, type Command } from 'commander';
import { runDoctor, type Deployment } from '../admin/doctor/doctor';
import { formatVerdict } from '../admin/doctor/verdict';
import { config, connecting, databaseUrlFor, print } from './common';

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number of 0 or more');
  return n;
}

/** `omniscrape doctor`: one verdict per line on the database DATABASE_URL names; exit 1 when one would break the service. */
export function addDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      "check DATABASE_URL for what the service needs: version, migrations, the role's grants, PgBouncer, settings, max_connections; exits 1 when something would break it",
    )
    .option('--api <n>', 'api processes the deployment runs (for max_connections)', count, 1)
    .option('--worker <n>', 'worker processes', count, 1)
    .option('--serve <n>', 'serve processes', count, 0)
    .action(async (deployment: Deployment) => {
      const cfg = config();
      const databaseUrl = databaseUrlFor(cfg);
      const verdicts = await connecting(databaseUrl, () =>
        runDoctor({ config: cfg, databaseUrl, deployment }),
      );
      for (const verdict of verdicts) print(formatVerdict(verdict));
      const failed = verdicts.filter((v) => v.level === 'fail').length;
      const warned = verdicts.filter((v) => v.level === 'warn').length;
      print(
        failed > 0
          ? `omniscrape doctor: ${failed} would break the service${warned ? `, ${warned} to look at` : ''}`
          : `omniscrape doctor: nothing would break the service${warned ? `; ${warned} to look at` : ''}`,
      );
      if (failed > 0) process.exitCode = 1;
    });
}
