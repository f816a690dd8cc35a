import { looksScriptBuilt } from '../src/scraper/script-built';

const page = (html: string, status = 200, contentType = 'text/html; charset=utf-8') => ({
  content: html,
  status_code: status,
  headers: { 'content-type': contentType },
  final_url: 'https://example.com/',
});

const PROSE = '<p>' + 'A paragraph of real text that the server sent. '.repeat(5) + '</p>';

describe('which pages mode "auto" renders in the browser', () => {
  test.each([
    ['an empty framework mount point', '<body><div id="root"></div><script src="/app.js"></script></body>'],
    ['an empty Next.js mount point', '<body><div id="__next"> </div><script>boot()</script></body>'],
    [
      'a noscript asking for JavaScript',
      `<body>${PROSE}<noscript>Please enable JavaScript to use this app.</noscript><script src="/a.js"></script></body>`,
    ],
    [
      'a script file and almost no text',
      '<html><head><title>A long title that is not shown on the page at all</title></head><body><main>Loading…</main><script src="/bundle.js"></script></body></html>',
    ],
  ])('%s: rendered', (_what, html) => {
    expect(looksScriptBuilt(page(html))).toBe(true);
  });

  test.each([
    ['text of its own and a script file', `<body>${PROSE}<script src="/analytics.js"></script></body>`],
    ['little text but only an inline script', '<body><h1>Hello</h1><script>window.x = 1</script></body>'],
    ['no script at all', '<body><div id="root"></div></body>'],
    [
      'text hidden in scripts and styles does not count, but text in the body does',
      `<body><style>p{}</style>${PROSE}<script src="/a.js">var s = "${'x'.repeat(100)}"</script></body>`,
    ],
  ])('%s: kept as fetched', (_what, html) => {
    expect(looksScriptBuilt(page(html))).toBe(false);
  });

  test('an error page, a non-HTML body and a page over 512 KiB are kept as fetched', () => {
    const shell = '<body><div id="root"></div><script src="/app.js"></script></body>';
    expect(looksScriptBuilt(page(shell, 404))).toBe(false);
    expect(looksScriptBuilt(page(shell, 200, 'application/json'))).toBe(false);
    expect(looksScriptBuilt(page(shell + ' '.repeat(512 * 1024)))).toBe(false);
  });
});
