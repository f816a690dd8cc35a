import ts from 'typescript';

/**
 * What in a migration's `up` would hold a big table locked for longer than a moment, found in its
 * source text: each finding names the statement and what to do instead (docs/production-postgres.md,
 * "Online migrations"). A statement that is fine anyway (an index on a table the same migration creates,
 * so empty) is let through by a comment in it: `// online: <why>`.
 *
 * It reads text, so it is a reviewer's checklist that cannot forget, not a proof: a statement
 * built at run time escapes it, and the 1-million-row test (online-migrations.test.ts) is the proof
 * for the migrations that exist.
 */
const RULES: { pattern: RegExp; instead: string }[] = [
  {
    pattern: /create\s+(unique\s+)?index(?!\s+concurrently)|\.createIndex\(/i,
    instead: 'build the index CONCURRENTLY in a deferred step (migrations/index.ts deferredSteps)',
  },
  {
    pattern: /drop\s+index(?!\s+concurrently)|\.dropIndex\(/i,
    instead: 'drop the index CONCURRENTLY in a deferred step',
  },
  {
    pattern: /add\s+constraint(?![^`]*not\s+valid)|\.add(Check|ForeignKey|Unique)Constraint\(/i,
    instead:
      'add the constraint NOT VALID and VALIDATE it in a deferred step (a unique one: a unique index built CONCURRENTLY, then ADD CONSTRAINT … USING INDEX)',
  },
  {
    pattern: /alter\s+column\s+\w+\s+(set\s+data\s+)?type|\.setDataType\(/i,
    instead: 'a new column, filled in batches by a deferred step, rather than a type change (a rewrite)',
  },
  {
    pattern: /set\s+not\s+null|\.setNotNull\(/i,
    instead: 'a CHECK (… IS NOT NULL) constraint added NOT VALID and validated in a deferred step',
  },
  {
    pattern:
      /default\s*\(?\s*(gen_random_uuid|random|clock_timestamp|uuid_generate_v\d)\s*\(|defaultTo\(sql`(gen_random_uuid|random|clock_timestamp)/i,
    instead: 'no volatile default on an added column (a rewrite): add it without, fill it in batches',
  },
  {
    pattern: /generated\s+always\s+as\s*\(|\.generatedAlwaysAs\(/i,
    instead: 'no stored generated column on an existing table (a rewrite)',
  },
  {
    pattern: /update\s+omniscrape\.|\.updateTable\(/i,
    instead: 'backfill in short batches in a deferred step, not one UPDATE in the migration',
  },
  {
    pattern: /vacuum\s+full|cluster\s+omniscrape|reindex(?!\s+(table|index)\s+concurrently)|lock\s+table/i,
    instead: 'nothing that rewrites or locks a whole table',
  },
];

/**
 * The source text that runs on upgrade, in the migration's transaction: its `up` function and the
 * functions of the file it calls, transitively (not `down`, not the deferred steps, which run
 * outside the transaction and are where CONCURRENTLY and batches belong), each with its offset.
 */
function upgradeCode(source: string): { text: string; offset: number }[] {
  const file = ts.createSourceFile('migration.ts', source, ts.ScriptTarget.Latest, true);
  const functions = new Map<string, ts.FunctionDeclaration>();
  file.forEachChild((node) => {
    if (ts.isFunctionDeclaration(node) && node.name) functions.set(node.name.text, node);
  });
  const reached = new Set<string>();
  const visit = (name: string) => {
    const fn = functions.get(name);
    if (!fn || reached.has(name)) return;
    reached.add(name);
    const calls = (node: ts.Node): void => {
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression)) visit(node.expression.text);
      node.forEachChild(calls);
    };
    fn.forEachChild(calls);
  };
  visit('up');
  return [...reached].map((name) => {
    const fn = functions.get(name)!;
    return { text: fn.getFullText(), offset: fn.getFullStart() };
  });
}

/**
 * Each blocking statement run on upgrade, as `line N: "<what>" → <instead>`. A statement is the
 * text up to its `.execute(`, comments left out.
 */
export function blockingStatements(source: string): string[] {
  const findings: string[] = [];
  for (const code of upgradeCode(source)) {
    let offset = code.offset;
    for (const statement of code.text.split(/(?<=\.execute\()/)) {
      const at = offset;
      offset += statement.length;
      if (/\/\/\s*online:/.test(statement)) continue;
      const text = statement.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      for (const rule of RULES) {
        const match = rule.pattern.exec(text);
        if (!match) continue;
        const line = source.slice(0, at + statement.indexOf(match[0].split(/\s/)[0]!)).split('\n').length;
        findings.push(`line ${line}: "${match[0].replace(/\s+/g, ' ').trim()}" → ${rule.instead}`);
      }
    }
  }
  return findings;
}
