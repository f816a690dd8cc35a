import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

// The README is the front door: short, with every longer subject on a page of docs/ that it links.
// Every relative link of those pages must lead somewhere: a file that exists and, for a link with
// a #fragment, a heading of that file (GitHub's anchors).

const root = path.join(__dirname, '..');
const README_MAX_BYTES = 20 * 1024;

/** The pages checked: the README, CONTRIBUTING.md and every page of docs/. */
const pages = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];

/** A page's lines with fenced code blocks blanked: their `#` lines and brackets are code, not markdown. */
function proseLines(file: string): string[] {
  let fenced = false;
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => {
      if (line.startsWith('```')) {
        fenced = !fenced;
        return '';
      }
      return fenced ? '' : line;
    });
}

/**
 * The anchors GitHub gives a page's headings: the text lower-cased, punctuation dropped (letters,
 * digits, `_`, `-` and spaces stay), spaces made `-`; a repeated heading gets `-1`, `-2`, ….
 */
function headingAnchors(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of proseLines(file)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const text = heading.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

/** Every relative link of a page that leads nowhere, as `page:line: target (why)`. */
function deadLinks(page: string): string[] {
  const file = path.join(root, page);
  const dead: string[] = [];
  proseLines(file).forEach((line, index) => {
    // Inline code is not a link, but a link's text may be code: drop code spans outside brackets only.
    const prose = line.replace(/(?<!\[)`[^`]*`(?!\])/g, '');
    for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, …
      const [filePart = '', anchor] = target.split('#', 2);
      const linked = filePart === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(filePart));
      const where = `${page}:${index + 1}: ${target}`;
      if (!existsSync(linked)) dead.push(`${where} (no such file)`);
      else if (anchor !== undefined && statSync(linked).isFile() && linked.endsWith('.md')) {
        if (!headingAnchors(linked).has(decodeURIComponent(anchor))) dead.push(`${where} (no such heading)`);
      }
    }
  });
  return dead;
}

describe('the documentation', () => {
  test('README.md is a front door of at most 20 KB', () => {
    expect(statSync(path.join(root, 'README.md')).size).toBeLessThanOrEqual(README_MAX_BYTES);
  });

  test('every relative link of README.md, CONTRIBUTING.md and docs/ leads to a file and a heading that exist', () => {
    expect(pages.flatMap(deadLinks)).toEqual([]);
  });

  test('anchors are made as GitHub makes them', () => {
    const page = path.join(root, 'docs', 'api.md');
    const anchors = headingAnchors(page);
    // Code, punctuation and braces dropped; spaces to hyphens; underscores kept.
    expect(anchors).toContain('watching-a-job-get-v1jobsjob_idevents');
    expect(anchors).toContain('submitting-safely-twice-idempotency-key');
    expect(anchors).toContain('waiting-for-a-job-wait');
  });
});
