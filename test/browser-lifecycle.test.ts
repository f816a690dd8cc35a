import fs from 'node:fs';
import { once } from 'node:events';
import { BrowserEngine, type BrowserEngineOptions } from '../src/scraper/browser-engine';
import { CHROMIUM } from './helpers/chromium';
import { spawnCli } from './helpers/cli';
import { startTargetServer, type TargetServer } from './helpers/target-server';
import { startTestService, waitForJob, type TestService } from './helpers/service';

// A worker process renders with its own Chromium (Debian's); SIGTERM must leave none of it behind.

let api: TestService;
let target: TargetServer;

beforeAll(async () => {
  target = await startTargetServer({
    '/held-image': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><body><p>waits for its image</p><img src="/held?name=slot"></body>`);
    },
    '/shell': (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        `<!doctype html><body><div id="app"></div><script>document.getElementById('app').textContent = 'built ' + 'by script';</script></body>`,
      );
    },
  });
  api = await startTestService({ roles: { api: true, worker: false } });
});
afterAll(async () => {
  await api?.stop();
  await target?.close();
});

/** The pids of a process's descendants (from /proc), with their command lines. */
function descendants(pid: number): { pid: number; cmdline: string }[] {
  const parentOf = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) comes after the command name in parentheses, which may hold spaces.
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // the process ended meanwhile
    }
  }
  const found: { pid: number; cmdline: string }[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of parentOf) {
      if (ppid !== parent) continue;
      let cmdline = '';
      try {
        cmdline = fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        // ended
      }
      found.push({ pid: child, cmdline });
      walk(child);
    }
  };
  walk(pid);
  return found;
}

const alive = (pid: number) => {
  try {
    return !/^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('SIGTERM to a worker that has rendered closes its Chromium: the worker exits 0 and no Chromium process is left', async () => {
  const child = spawnCli(['worker'], {
    DATABASE_URL: api.databaseUrl,
    OMNISCRAPE_ALLOW_PRIVATE_TARGETS: 'true',
    OMNISCRAPE_LOG_LEVEL: 'info',
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  try {
    const submitted = await api.call('POST', '/v1/scrape/async', {
      url: `${target.origin}/shell`,
      js_rendering: true,
    });
    const job = await waitForJob(api, submitted.body.job_id, undefined, 60_000);
    expect(job.status).toBe('completed');
    expect(job.result.data.content).toContain('built by script');
    const chromium = descendants(child.pid!).filter((p) => p.cmdline.includes('chromium'));
    expect(chromium.length).toBeGreaterThan(0);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect({ code, output }).toMatchObject({ code: 0 });
    expect(chromium.filter((p) => alive(p.pid))).toEqual([]);
    expect(output).toContain('"msg":"Chromium started"');
  } finally {
    child.kill('SIGKILL');
  }
}, 90_000);

/** A browser engine in this process with one slot, private targets allowed (the target is on loopback). */
const engineOfOneSlot = (options: Partial<BrowserEngineOptions> = {}) =>
  new BrowserEngine({
    allowPrivateTargets: true,
    chromiumPath: CHROMIUM,
    sandbox: false,
    concurrency: 1,
    maxBodyBytes: 1024 * 1024,
    ...options,
  });

describe('a hung Chromium', () => {
  test('a Chromium that stops answering is killed and started again, and the render goes on on the new one', async () => {
    const restarts: string[] = [];
    const engine = engineOfOneSlot({
      hangMs: 2_000,
      observer: {
        rendered: () => undefined,
        pagesInFlight: () => undefined,
        restarted: (r) => restarts.push(r),
      },
    });
    const render = () =>
      engine.render(
        {
          url: `${target.origin}/shell`,
          method: 'GET',
          headers: {},
          timeout: 30,
          follow_redirects: true,
          format: 'text',
          mode: 'browser',
        },
        { deadline: performance.now() + 30_000, owner: 'key', trigger: 'requested' },
      );
    try {
      expect((await render()).content).toContain('built by script');
      const pid = (await engine.chromiumPid())!;
      // Stopped, the process is there but answers nothing: as a Chromium stuck in a loop.
      process.kill(pid, 'SIGSTOP');
      expect((await render()).content).toContain('built by script');
      expect(restarts).toEqual(['hung']);
      expect(await engine.chromiumPid()).not.toBe(pid);
      expect(alive(pid)).toBe(false);
    } finally {
      await engine.close();
    }
  }, 60_000);
});

describe('browser slots', () => {
  test('a render that gets no browser slot within its timeout fails saying the browser was busy, and the target is never asked', async () => {
    const engine = engineOfOneSlot();
    const request = (path: string, timeout: number) => ({
      url: `${target.origin}${path}`,
      method: 'GET' as const,
      headers: {},
      timeout,
      follow_redirects: true,
      format: 'raw' as const,
      mode: 'browser' as const,
    });
    const render = (path: string, timeout: number, owner: string) =>
      engine.render(request(path, timeout), {
        deadline: performance.now() + timeout * 1000,
        owner,
        trigger: 'requested',
      });
    try {
      const first = render('/held-image', 60, 'a');
      while (target.held('slot') === 0) await new Promise((r) => setTimeout(r, 50));
      const before = target.hits.get('/shell') ?? 0;
      await expect(render('/shell', 2, 'b')).rejects.toMatchObject({
        code: 'TARGET_TIMEOUT',
        message: expect.stringContaining('No browser slot became free within 2 s'),
      });
      expect(target.hits.get('/shell') ?? 0).toBe(before);
      target.release('slot');
      expect((await first).content).toContain('waits for its image');
    } finally {
      await engine.close();
    }
  }, 60_000);
});
