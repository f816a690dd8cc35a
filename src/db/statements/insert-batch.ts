import { namedStatement, runStatement } from '../prepared-statements';
import type { Db } from '../schema';

/** The batch and its jobs' places in it, request order kept by `position`. */
const INSERT_BATCH = namedStatement(
  'omniscrape_insert_batch',
  `with batch as (
     insert into omniscrape.batches (id, api_key_id, job_count) values ($1, $2, cardinality($3::uuid[]))
   )
   insert into omniscrape.batch_jobs (batch_id, position, job_id)
   select $1, j.ordinality - 1, j.id from unnest($3::uuid[]) with ordinality as j(id, ordinality)`,
);

/** Inserts the batch and its jobs' positions, in the caller's transaction. */
export async function insertBatchJobs(
  db: Db,
  batch: { id: string; apiKeyId: string; jobs: readonly { id: string }[] },
): Promise<void> {
  await runStatement(db, INSERT_BATCH, [batch.id, batch.apiKeyId, batch.jobs.map((j) => j.id)]);
}
