// The dashboard page's script: reads GET /dashboard/data for the page's range, draws the chart with
// Chart.js (served from its npm package, loaded before this file) and fills the tables, then again
// every `refreshSeconds` the server names. Text goes in by textContent only: hosts, URLs and error
// codes come from clients and scraped targets.
'use strict';

(function () {
  const STATUS_COLORS = {
    queued: '#9aa5b1',
    processing: '#3e7cb1',
    completed: '#2e9e5b',
    failed: '#d64545',
    timed_out: '#e8a33d',
    cancelled: '#7b6fa0',
  };
  const BUCKET_NAMES = { 60: 'minute', 300: '5 minutes', 900: '15 minutes', 3600: 'hour' };
  const $ = (selector) => document.querySelector(selector);

  const count = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));
  const percent = (rate) => (rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)}%`);
  const money = (amount) => Number(amount).toFixed(4);
  const time = (iso) => (iso ? iso.slice(0, 19).replace('T', ' ') : '–');

  let chart;
  let refreshes = 0;

  /** Bucket labels: the time of day, with the date as well when the range spans more than a day. */
  function labelsOf(range, buckets) {
    const days = Date.parse(range.to) - Date.parse(range.from) > 86_400_000;
    return buckets.map((iso) => (days ? iso.slice(5, 16).replace('T', ' ') : iso.slice(11, 16)));
  }

  function drawChart(data) {
    const labels = labelsOf(data.range, data.chart.buckets);
    const datasets = Object.entries(data.chart.series).map(([status, counts]) => ({
      label: status,
      data: counts,
      backgroundColor: STATUS_COLORS[status],
    }));
    $('#bucket-label').textContent =
      BUCKET_NAMES[data.range.bucketSeconds] || `${data.range.bucketSeconds} s`;
    if (chart) {
      chart.data.labels = labels;
      chart.data.datasets = datasets;
      chart.update('none');
      return;
    }
    chart = new Chart($('#jobs-chart'), {
      type: 'bar',
      data: { labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { position: 'bottom' } },
      },
    });
  }

  /** Replaces a table's rows: one per item, its cells' text from `cells(item)`. */
  function fillTable(id, items, cells) {
    const rows = items.map((item) => {
      const tr = document.createElement('tr');
      for (const value of cells(item)) {
        const td = document.createElement('td');
        td.textContent = value;
        tr.append(td);
      }
      return tr;
    });
    if (rows.length === 0) {
      const td = document.createElement('td');
      td.colSpan = $(`#${id} thead tr`).children.length;
      td.className = 'empty';
      td.textContent = 'none';
      rows.push(document.createElement('tr'));
      rows[0].append(td);
    }
    $(`#${id} tbody`).replaceChildren(...rows);
  }

  function fillFigures(data) {
    for (const figure of ['queue_ms', 'run_ms']) {
      for (const p of ['p50', 'p95', 'p99']) {
        $(`[data-figure="${figure}-${p}"]`).textContent = count(data.latency[figure][p]);
      }
    }
    $('[data-figure="rendered"]').textContent = count(data.engines.browser);
    $('[data-figure="fetched"]').textContent = count(data.engines.http);
    $('[data-figure="queued"]').textContent = count(data.queueDepth.queued);
    $('[data-figure="processing"]').textContent = count(data.queueDepth.processing);
    fillTable('slowest-hosts', data.hosts.slowest, (h) => [
      h.host,
      count(h.jobs),
      count(h.p95_run_ms),
      percent(h.success_rate),
    ]);
    fillTable('failing-hosts', data.hosts.failing, (h) => [
      h.host,
      count(h.jobs),
      percent(h.success_rate),
      h.top_error_code || '–',
      time(h.last_failure_at),
    ]);
    fillTable('usage', data.usage, (u) => [
      u.api_key_name,
      count(u.jobs),
      count(u.completed),
      count(u.failed),
      count(u.timed_out),
      count(u.cancelled),
      money(u.charged),
    ]);
    fillTable('failures', data.failures, (f) => [
      time(f.created_at),
      f.api_key_name,
      f.host,
      f.status,
      f.error_code || '–',
      f.status_code === null ? '–' : String(f.status_code),
      f.url,
    ]);
  }

  function showStatus(text, isError) {
    const status = $('#status');
    status.textContent = text;
    status.classList.toggle('error', isError);
  }

  /** One read of the figures; returns the seconds until the next one. */
  async function refresh() {
    const res = await fetch(`/dashboard/data${location.search}`, { headers: { accept: 'application/json' } });
    if (res.status === 401) {
      location.assign('/dashboard/sign-in');
      return undefined;
    }
    const body = await res.json();
    if (!res.ok) {
      showStatus(`${body.code}: ${body.error}`, true);
      return res.status === 400 ? undefined : 30;
    }
    drawChart(body.data);
    fillFigures(body.data);
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    showStatus(
      `updated ${new Date().toISOString().slice(11, 19)} UTC, every ${body.data.range.refreshSeconds} s`,
      false,
    );
    return body.data.range.refreshSeconds;
  }

  function loop() {
    refresh().then(
      (seconds) => seconds && setTimeout(loop, seconds * 1000),
      (err) => {
        showStatus(`refresh failed (${err.message}); retrying`, true);
        setTimeout(loop, 10_000);
      },
    );
  }

  loop();
})();
