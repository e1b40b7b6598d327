// The stakeledger web page: hash routes over the JSON API, nothing else.
//
//   #/                 markets list
//   #/market/ID        one market: chart, depth, tape, lifecycle, quote-and-trade form
//   #/account[/AGENT]  portfolio, equity curve, statement, inbox, settlements, reputation
//   #/auditor          audit, views' lag, export roots, a balance proof checked here
//
// Every read and write goes through fetch() to the same API programs use, with the key
// from sessionStorage as a Bearer token. A refusal shows the API's error code. An
// endpoint this server does not have (404 NOT_FOUND) shows a message in its place.
(function () {
  'use strict';

  const KEY = 'stakeledger.key';
  const WHO = 'stakeledger.who';
  const POLL_MS = 3000;
  const AUTO_CANDLES = 200;
  const INTERVALS = ['1m', '5m', '1h', '1d'];
  const view = document.getElementById('view');

  // Session --------------------------------------------------------------------------------

  const session = {
    key: () => sessionStorage.getItem(KEY),
    who: () => JSON.parse(sessionStorage.getItem(WHO) || 'null'),
    set(key, who) {
      sessionStorage.setItem(KEY, key);
      sessionStorage.setItem(WHO, JSON.stringify(who));
    },
    clear() {
      sessionStorage.removeItem(KEY);
      sessionStorage.removeItem(WHO);
    },
  };

  // The API --------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, body) {
      super(message);
      this.status = status;
      this.code = code;
      this.body = body;
    }
    // The route itself is missing (not an unknown id): the server predates the endpoint.
    get missingEndpoint() {
      return this.status === 404 && this.code === 'NOT_FOUND';
    }
  }

  // A fresh Idempotency-Key per action: crypto.getRandomValues works on plain http too,
  // where crypto.randomUUID does not.
  function randomId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), b => b.toString(16).padStart(2, '0')).join('');
  }

  async function api(path, { method = 'GET', body } = {}) {
    const headers = { Accept: 'application/json' };
    const key = session.key();
    if (key) headers.Authorization = `Bearer ${key}`;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Idempotency-Key'] = `web-${randomId()}`;
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new ApiError(0, 'NETWORK_ERROR', `the server could not be reached: ${error.message}`, null);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const code = (data && data.error) || `HTTP_${response.status}`;
      const message = (data && data.message) || response.statusText;
      throw new ApiError(response.status, code, message, data);
    }
    return data;
  }

  // DOM helpers ----------------------------------------------------------------------------

  // h('td', {class: 'num'}, text, child, ...): text is always set as text, never as HTML.
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function panel(title, id, ...children) {
    return h('section', { class: 'panel', id }, h('h2', {}, title), ...children);
  }

  // A panel over two of the three columns.
  function span2(node) {
    node.classList.add('span2');
    return node;
  }

  // A panel over the whole row.
  function wide(node) {
    node.classList.add('wide');
    return node;
  }

  function table(columns, rows, rowAttrs) {
    return h(
      'table',
      {},
      h('thead', {}, h('tr', {}, columns.map(([label, , cls]) => h('th', { class: cls }, label)))),
      h(
        'tbody',
        {},
        rows.map(row =>
          h('tr', rowAttrs ? rowAttrs(row) : {}, columns.map(([, cell, cls]) => h('td', { class: cls }, cell(row)))),
        ),
      ),
    );
  }

  function stat(label, value, attrs) {
    return h('div', { class: 'stat' }, h('div', { class: 'label' }, label), h('div', { class: 'value', ...attrs }, value));
  }

  function errorBox(error) {
    if (error instanceof ApiError) {
      return h('div', { class: 'error', 'data-code': error.code }, 'Refused: ', h('code', {}, error.code), ' — ', error.message);
    }
    return h('div', { class: 'error', 'data-code': 'PAGE_ERROR' }, String(error));
  }

  // What a part of the page shows when its endpoint failed: a missing endpoint is said
  // plainly (the page works without it), anything else is the API's refusal.
  function unavailable(what, path, error) {
    if (error instanceof ApiError && error.missingEndpoint) {
      return h('p', { class: 'degraded', 'data-degraded': what }, `${what} is not served by this server yet (GET ${path} answered 404).`);
    }
    return errorBox(error);
  }

  const present = children => children.flat().filter(child => child !== null && child !== undefined && child !== false);

  function fill(id, ...children) {
    const node = document.getElementById(id);
    if (node) node.replaceChildren(...present(children));
    return node;
  }

  function render(...children) {
    view.replaceChildren(...present(children));
  }

  // An amount for people: at most six decimals, rounded half away from zero with exact integer
  // arithmetic (18-decimal ledgers print long strings); the API's exact string is kept
  // for programs, and anything that is not a decimal string passes through.
  function amt(text) {
    const match = typeof text === 'string' ? /^(-?)([0-9]+)(?:\.([0-9]+))?$/.exec(text) : null;
    if (!match || !match[3] || match[3].length <= 6) return text;
    const [, sign, whole, fraction] = match;
    const scale = 10n ** BigInt(fraction.length - 6);
    const rounded = (BigInt(whole + fraction) + scale / 2n) / scale;
    const digits = rounded.toString().padStart(7, '0');
    const head = digits.slice(0, -6);
    const tail = digits.slice(-6).replace(/0+$/, '');
    return `${rounded === 0n ? '' : sign}${head}${tail ? '.' + tail : ''}`;
  }

  const side = value => h('span', { class: value === 'long' ? 'long' : 'short' }, value);
  const time = iso => (iso ? new Date(iso).toLocaleString() : '—');
  const dash = value => (value === null || value === undefined || value === '' ? '—' : value);

  function notice(text) {
    const node = document.getElementById('notice');
    node.hidden = !text;
    node.textContent = text || '';
  }

  // Charts (uPlot, vendored) ---------------------------------------------------------------

  let charts = [];

  // A time chart of one or more lines over the same x (seconds): series are
  // [{label, color, values, dash?}], the first one the chart's headline (data-last).
  function timeChart(container, { x, series, yRange }) {
    const headline = series[0].values.filter(v => v !== null);
    container.dataset.points = String(headline.length);
    container.dataset.last = headline.length ? String(headline[headline.length - 1]) : '';
    if (typeof globalThis.uPlot !== 'function') {
      container.replaceChildren(h('p', { class: 'degraded' }, 'The chart library is not built (static/vendor/uPlot.iife.min.js): run make web-assets.'));
      return null;
    }
    if (!x.length) {
      container.replaceChildren(h('p', { class: 'muted' }, 'No data yet.'));
      return null;
    }
    const data = [x, ...series.map(s => s.values)];
    // One point has no time span of its own: show the day around it.
    const xScale = x.length === 1 ? { time: true, range: [x[0] - 43200, x[0] + 43200] } : { time: true };
    const existing = container._chart;
    const shape = `${data.length}:${x.length === 1}`;
    if (existing && container.contains(existing.root) && container._shape === shape) {
      existing.setData(data);
      return existing;
    }
    if (existing) {
      existing.destroy();
      charts = charts.filter(c => c !== existing);
    }
    container.replaceChildren();
    const options = {
      width: Math.max(container.clientWidth || 600, 320),
      height: 240,
      legend: { show: true },
      scales: { x: xScale, y: yRange ? { range: yRange } : {} },
      series: [
        {},
        ...series.map(s => ({
          label: s.label,
          stroke: s.color,
          width: s.dash ? 1 : 2,
          dash: s.dash,
          points: { show: x.length < 60 },
          // A price holds until the next trade: a step, not a slope.
          paths: s.stepped && globalThis.uPlot.paths.stepped ? globalThis.uPlot.paths.stepped({ align: 1 }) : undefined,
        })),
      ],
      axes: [{}, { size: 60 }],
    };
    const chart = new globalThis.uPlot(options, data, container);
    container._chart = chart;
    container._shape = shape;
    charts.push(chart);
    return chart;
  }

  function lineChart(container, { label, points, color, yRange }) {
    return timeChart(container, { x: points.map(p => p[0]), series: [{ label, color, values: points.map(p => p[1]) }], yRange });
  }

  // Probabilities: the data's span with a margin, within 0 … 1.
  const probabilityRange = (_, min, max) => [Math.max(0, Math.floor((min - 0.05) * 20) / 20), Math.min(1, Math.ceil((max + 0.05) * 20) / 20)];

  // Amounts: the data's span with a margin of a tenth of it (at least 1% of the value).
  const amountRange = (_, min, max) => {
    const pad = Math.max((max - min) * 0.1, Math.abs(max) * 0.01, 0.01);
    return [min - pad, max + pad];
  };

  const SECONDS = { '1m': 60, '5m': 300, '1h': 3600, '1d': 86400 };

  // Candles as a step line of p(long): each bucket from its start at its open, then from
  // its end at its close until the next bucket (buckets without trades are absent and the
  // price does not move between trades); each bucket's high and low over its span.
  function candleChart(container, candles, interval) {
    const x = [];
    const price = [];
    const high = [];
    const low = [];
    candles.forEach((c, i) => {
      const start = Date.parse(c.start) / 1000;
      const end = start + SECONDS[interval];
      x.push(start);
      price.push(Number(c.open));
      high.push(Number(c.high));
      low.push(Number(c.low));
      const next = candles[i + 1];
      if (!next || Date.parse(next.start) / 1000 > end) {
        x.push(end);
        price.push(Number(c.close));
        high.push(null);
        low.push(null);
      }
    });
    return timeChart(container, {
      x,
      series: [
        { label: 'p(long)', color: '#127a4a', values: price, stepped: true },
        { label: 'high', color: '#8fb8a4', values: high, dash: [4, 4], stepped: true },
        { label: 'low', color: '#d3a29d', values: low, dash: [4, 4], stepped: true },
      ],
      yRange: probabilityRange,
    });
  }


  // Route lifecycle: every timer, stream and chart of the previous page goes.
  let teardown = [];
  function onLeave(fn) {
    teardown.push(fn);
  }
  // Bumped on every route change, so a page that finishes loading after the reader moved
  // on starts no stream or timer.
  let generation = 0;
  function leave() {
    generation += 1;
    for (const fn of teardown) fn();
    teardown = [];
    for (const chart of charts) chart.destroy();
    charts = [];
  }

  // Markets --------------------------------------------------------------------------------

  // 24h change and volume from the hourly candles of the last day; null when there are none.
  async function lastDay(artifact) {
    const since = new Date(Date.now() - 24 * 3600 * 1000).toISOString();
    const path = `/api/market/artifacts/${encodeURIComponent(artifact)}/candles?interval=1h&since=${encodeURIComponent(since)}`;
    const data = await api(path);
    const candles = data.candles || [];
    if (!candles.length) return { change: null, volume: '0', trades: 0 };
    const open = Number(candles[0].open);
    const close = Number(candles[candles.length - 1].close);
    const volume = candles.reduce((sum, c) => sum + Number(c.volume), 0);
    return { change: close - open, volume: volume.toFixed(2), trades: candles.reduce((n, c) => n + c.trades, 0) };
  }

  async function showMarkets() {
    render(h('h1', {}, 'Markets'), panel('Every listed artifact', 'markets', h('p', { class: 'muted' }, 'Loading…')));
    let markets;
    try {
      markets = await api('/api/market/artifacts');
    } catch (error) {
      fill('markets', h('h2', {}, 'Every listed artifact'), errorBox(error));
      return;
    }
    const history = {};
    let historyError = null;
    await Promise.all(
      markets.map(async m => {
        try {
          history[m.artifact] = await lastDay(m.artifact);
        } catch (error) {
          historyError = error;
        }
      }),
    );
    const change = m => {
      const day = history[m.artifact];
      if (!day || day.change === null) return '—';
      const text = `${day.change >= 0 ? '+' : ''}${(day.change * 100).toFixed(2)} pts`;
      return h('span', { class: day.change >= 0 ? 'long' : 'short' }, text);
    };
    const columns = [
      ['Artifact', m => h('a', { href: `#/market/${encodeURIComponent(m.artifact)}` }, m.artifact)],
      ['Title', m => m.title],
      ['State', m => h('span', { class: 'badge' }, m.state)],
      ['p(long)', m => dash(m.price_long), 'num'],
      ['24h change', change, 'num'],
      ['24h volume', m => dash(history[m.artifact] && history[m.artifact].volume), 'num'],
      ['Capital committed', m => amt(m.capital_committed), 'num'],
      ['Live positions', m => m.live_positions, 'num'],
    ];
    fill(
      'markets',
      h('h2', {}, `Every listed artifact (${markets.length})`),
      markets.length ? table(columns, markets, m => ({ 'data-artifact': m.artifact })) : h('p', { class: 'muted' }, 'No artifact is listed yet.'),
      historyError ? unavailable('Price history (24h change and volume)', '/api/market/artifacts/{id}/candles', historyError) : null,
    );
  }

  // One market -----------------------------------------------------------------------------

  async function showMarket(artifact) {
    const base = `/api/market/artifacts/${encodeURIComponent(artifact)}`;
    // interval null: the finest one with fewer than AUTO_CANDLES candles, picked at the first load.
    const state = { interval: null, seen: [], fallback: false };
    render(
      h('p', {}, h('a', { href: '#/' }, '← Markets')),
      h('h1', { id: 'market-title' }, artifact),
      h('div', { id: 'market-stats', class: 'stats' }),
      h(
        'div',
        { class: 'grid three' },
        span2(panel(
          'Price of long',
          'chart-panel',
          h(
            'div',
            { class: 'toolbar' },
            h('select', { id: 'interval', 'aria-label': 'Candle interval', onchange: e => { state.interval = e.target.value; refresh(); } },
              INTERVALS.map(i => h('option', { value: i }, i))),
            h('span', { id: 'live', class: 'live' }, 'connecting…'),
          ),
          h('div', { id: 'chart', class: 'chart' }),
          h('div', { id: 'chart-note' }),
        )),
        panel('Trade', 'trade', tradeForm(artifact, () => refresh())),
        span2(panel('Trade tape', 'tape')),
        panel('Depth: what moves p(long) to each level', 'depth'),
        span2(panel('Lifecycle history', 'history')),
        panel('Resting limit orders', 'orders'),
      ),
    );

    async function loadMarket() {
      try {
        const m = await api(base);
        fill('market-title', `${m.artifact} — ${m.title}`);
        fill(
          'market-stats',
          stat('State', h('span', { class: 'badge' }, m.state)),
          stat('p(long)', m.price_long, { id: 'price-long' }),
          stat('p(short)', m.price_short),
          stat('Pool', amt(m.pool)),
          stat('Open interest', amt(m.open_interest)),
          stat('Positions', m.positions),
          m.settlement_price ? stat('Settled at', m.settlement_price) : null,
        );
        return m;
      } catch (error) {
        fill('market-stats', errorBox(error));
        return null;
      }
    }

    async function loadChart(market) {
      const chart = document.getElementById('chart');
      try {
        let data;
        for (const interval of state.interval ? [state.interval] : INTERVALS) {
          data = await api(`${base}/candles?interval=${interval}`);
          if (data.candles.length < AUTO_CANDLES) break;
        }
        if (!state.interval) {
          state.interval = data.interval;
          document.getElementById('interval').value = data.interval;
        }
        state.fallback = false;
        const count = data.candles.length;
        const last = count ? data.candles[count - 1].close : null;
        fill(
          'chart-note',
          h('p', { class: 'muted' }, `${count} ${count === 1 ? 'candle' : 'candles'} of ${data.interval}: p(long) as a step line, dashed each candle's high and low.`),
          // Candles follow trades; a lifecycle step (a flag's partial settlement) can move the price without one.
          market && last !== null && last !== market.price_long
            ? h('p', { class: 'muted', id: 'chart-moved' }, `p(long) is ${market.price_long} now, ${last} after the last trade: a lifecycle step moved it since.`)
            : null,
        );
        candleChart(chart, data.candles, data.interval);
      } catch (error) {
        if (!(error instanceof ApiError && error.missingEndpoint)) {
          fill('chart-note', errorBox(error));
          return;
        }
        // No price history on this server: plot the prices this page has seen itself.
        state.fallback = true;
        if (market) state.seen.push([Date.now() / 1000, Number(market.price_long)]);
        fill('chart-note', unavailable('Price history', `${base}/candles`, error), h('p', { class: 'muted' }, 'Plotting the prices seen since this page opened.'));
        lineChart(chart, { label: 'p(long) seen', points: state.seen, color: '#127a4a', yRange: probabilityRange });
      }
    }

    async function loadBook() {
      try {
        const book = await api(`${base}/book`);
        fill(
          'depth',
          h('h2', {}, 'Depth: what moves p(long) to each level'),
          table(
            [
              ['Target p(long)', l => l.target_long, 'num'],
              ['Buy', l => side(l.side)],
              ['Shares', l => amt(l.shares), 'num'],
              ['Cost (tokens)', l => amt(l.cost), 'num'],
            ],
            book.depth,
          ),
        );
        fill(
          'orders',
          h('h2', {}, `Resting limit orders (${book.orders.length})`),
          book.orders.length
            ? table(
                [
                  ['Order', o => o.order_id],
                  ['Agent', o => o.agent],
                  ['Side', o => side(o.side)],
                  ['Limit', o => o.limit_price, 'num'],
                  ['Remaining', o => amt(o.remaining), 'num'],
                ],
                book.orders,
              )
            : h('p', { class: 'muted' }, 'None.'),
        );
      } catch (error) {
        fill('depth', h('h2', {}, 'Depth'), errorBox(error));
      }
    }

    async function loadTape() {
      const path = `${base}/trades?limit=50`;
      try {
        const data = await api(path);
        fill(
          'tape',
          h('h2', {}, 'Trade tape (newest first)'),
          data.trades.length
            ? table(
                [
                  ['Time', t => time(t.at)],
                  ['Side', t => side(t.side)],
                  ['Kind', t => t.kind],
                  ['Tokens', t => amt(t.tokens), 'num'],
                  ['Shares', t => amt(t.shares), 'num'],
                  ['p(long) before', t => t.price_before, 'num'],
                  ['after', t => t.price_after, 'num'],
                  ['Taker', t => t.taker],
                ],
                data.trades,
                t => ({ 'data-position': t.position }),
              )
            : h('p', { class: 'muted' }, 'No trades yet.'),
        );
      } catch (error) {
        fill('tape', h('h2', {}, 'Trade tape'), unavailable('The trade tape', path, error));
      }
    }

    async function loadHistory() {
      const path = `/api/artifacts/${encodeURIComponent(artifact)}/history`;
      try {
        const data = await api(path);
        const rows = Array.isArray(data) ? data : [];
        fill(
          'history',
          h('h2', {}, 'Lifecycle history'),
          rows.length
            ? table(
                [
                  ['Time', r => time(r.at)],
                  ['Step', r => r.kind],
                  ['From', r => dash(r.from)],
                  ['To', r => dash(r.to)],
                  ['p(long)', r => dash(r.price_long), 'num'],
                  ['Average', r => dash(r.window_average), 'num'],
                  ['Paid', r => amt(dash(r.paid)), 'num'],
                  ['Actor', r => dash(r.actor)],
                  ['Reason', r => dash(r.reason)],
                ],
                rows.slice().reverse(),
                r => ({ 'data-kind': r.kind }),
              )
            : h('p', { class: 'muted' }, 'No step yet.'),
        );
      } catch (error) {
        fill('history', h('h2', {}, 'Lifecycle history'), unavailable('The lifecycle history', path, error));
      }
    }

    async function refresh() {
      const market = await loadMarket();
      await Promise.all([loadChart(market), loadBook(), loadTape(), loadHistory()]);
    }

    const mine = generation;
    await refresh();
    if (mine !== generation) return;
    follow(`/api/stream?topics=trades,prices,settlements&artifact=${encodeURIComponent(artifact)}`, refresh);
  }

  // Live updates: the server's event stream when it has one, else ``refresh`` every few
  // seconds. Messages come in bursts (a trade makes two), so a burst refreshes the page once,
  // 250 ms on. Returns that deferred refresh, for the page's own actions to ask for.
  function follow(url, refresh) {
    let pending = null;
    const soon = () => {
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        refresh();
      }, 250);
    };
    onLeave(() => pending && clearTimeout(pending));
    const live = document.getElementById('live');
    const startPolling = reason => {
      live.className = 'live';
      live.textContent = `${reason}: polling every ${POLL_MS / 1000} s`;
      live.dataset.mode = 'poll';
      const timer = setInterval(refresh, POLL_MS);
      onLeave(() => clearInterval(timer));
    };
    if (typeof EventSource !== 'function') {
      startPolling('no EventSource in this browser');
      return soon;
    }
    const source = new EventSource(url);
    let opened = false;
    source.onopen = () => {
      opened = true;
      live.className = 'live on';
      live.textContent = 'live';
      live.dataset.mode = 'stream';
    };
    source.onmessage = event => {
      live.dataset.lastEventId = event.lastEventId;
      soon();
    };
    // The browser resumes a dropped stream itself (with Last-Event-ID). A stream that
    // closed for good (no such endpoint, or refused) falls back to polling.
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        startPolling(opened ? 'the live feed closed' : 'no live feed on this server');
      } else {
        live.className = 'live';
        live.textContent = 'reconnecting…';
      }
    };
    onLeave(() => source.close());
    return soon;
  }

  function tradeForm(artifact, afterTrade) {
    const who = session.who();
    if (!who) {
      return h('p', { class: 'muted', id: 'trade-signin' }, 'Sign in with an API key (top right) to quote and trade.');
    }
    const out = h('div', { id: 'trade-result' });
    const form = h(
      'form',
      { class: 'trade', id: 'trade-form' },
      h('label', { for: 'trade-agent' }, 'Agent'),
      h('input', { id: 'trade-agent', value: who.agent, readonly: !who.admin, 'aria-label': 'Agent' }),
      h('label', { for: 'trade-side' }, 'Side'),
      h('select', { id: 'trade-side' }, h('option', { value: 'long' }, 'long'), h('option', { value: 'short' }, 'short')),
      h('label', { for: 'trade-tokens' }, 'Tokens'),
      h('input', { id: 'trade-tokens', inputmode: 'decimal', placeholder: 'e.g. 10' }),
      h('label', { for: 'trade-limit' }, 'Limit price'),
      h('input', { id: 'trade-limit', inputmode: 'decimal', placeholder: 'empty: market order' }),
      h('label', { for: 'trade-max' }, 'Max price'),
      h('input', { id: 'trade-max', inputmode: 'decimal', placeholder: 'optional, market orders' }),
      h(
        'div',
        { class: 'buttons' },
        h('button', { type: 'button', id: 'quote-button', onclick: () => quote() }, 'Quote'),
        h('button', { type: 'submit', class: 'primary', id: 'trade-button' }, 'Place order'),
      ),
    );
    const value = id => form.querySelector(`#${id}`).value.trim();

    async function quote() {
      const params = new URLSearchParams({ side: value('trade-side'), tokens: value('trade-tokens') });
      try {
        const q = await api(`/api/market/artifacts/${encodeURIComponent(artifact)}/quote?${params}`);
        out.replaceChildren(
          h('div', { class: 'result', id: 'quote-result' }, `${amt(q.cost)} tokens buy ${amt(q.shares)} ${q.side} shares at ${q.average_price} on average; p(long) ${q.price_long_before} → ${q.price_long_after}.`),
        );
      } catch (error) {
        out.replaceChildren(errorBox(error));
      }
    }

    form.addEventListener('submit', async event => {
      event.preventDefault();
      const limit = value('trade-limit');
      const max = value('trade-max');
      const order = { agent: value('trade-agent'), artifact, side: value('trade-side'), tokens: value('trade-tokens') };
      try {
        if (limit) {
          const placed = await api('/api/market/orders', { method: 'POST', body: { ...order, limit_price: limit } });
          out.replaceChildren(h('div', { class: 'result', id: 'order-placed' }, `Limit order ${placed.order} is ${placed.status} (${placed.fills.length} fills).`));
        } else {
          const trade = await api('/api/market/positions', { method: 'POST', body: max ? { ...order, max_price: max } : order });
          out.replaceChildren(
            h('div', { class: 'result', id: 'order-placed' }, `Bought ${amt(trade.shares)} ${trade.side} shares for ${amt(trade.cost)} tokens at ${trade.average_price} on average: position ${trade.position}. p(long) is now ${trade.price_long}.`),
          );
        }
      } catch (error) {
        out.replaceChildren(errorBox(error));
      }
      afterTrade();
    });
    return h('div', {}, form, out);
  }

  // Account --------------------------------------------------------------------------------

  async function showAccount(requested) {
    const who = session.who();
    if (!who) {
      render(h('h1', {}, 'Account'), h('p', {}, 'Sign in with an API key (top right) to see an account.'));
      return;
    }
    const agent = requested || who.agent;
    const a = encodeURIComponent(agent);
    render(
      h('h1', {}, `Account: ${agent}`),
      h('div', { class: 'toolbar' }, h('span', { id: 'live', class: 'live' }, 'connecting…')),
      who.admin
        ? h('form', { class: 'toolbar', onsubmit: e => { e.preventDefault(); location.hash = `#/account/${encodeURIComponent(e.target.elements.agent.value.trim())}`; } },
            h('label', {}, 'Agent '), h('input', { name: 'agent', value: agent }), h('button', { type: 'submit' }, 'Show'))
        : null,
      h('div', { id: 'account-stats', class: 'stats' }),
      h('div', { id: 'close-result' }),
      h(
        'div',
        { class: 'grid three' },
        span2(panel('Equity curve', 'equity', h('div', { id: 'equity-chart', class: 'chart' }))),
        panel('Reputation', 'reputation'),
        wide(panel('Portfolio', 'portfolio', h('p', { class: 'muted' }, 'Loading…'))),
        wide(panel('Statement', 'statement')),
        panel('Inbox', 'inbox'),
        span2(panel('Settlements', 'settlements')),
      ),
    );

    const load = async (id, title, path, render, pending) => {
      try {
        const data = await (pending || api(path));
        await render(data);
      } catch (error) {
        fill(id, h('h2', {}, title), unavailable(title, path, error));
      }
    };

    async function refresh() {
      // The summary's equity (now) ends the daily curve, so even one day draws a line.
      const metrics = api(`/api/portfolio/${a}/metrics`);
      metrics.catch(() => null);
      await Promise.all([
        load('account-stats', 'Balance', `/api/portfolio/${a}/metrics`, data => {
          const s = data.summary;
          fill(
            'account-stats',
            stat('Equity', amt(s.equity), { id: 'equity-value' }),
            stat('Cash', amt(s.cash)),
            stat('Marked positions', amt(s.marked)),
            stat('Realized P&L', amt(s.realized_pnl)),
            stat('Unrealized P&L', amt(s.unrealized_pnl)),
            stat('Live positions', s.active_positions),
            stat('Sharpe', dash(data.performance.sharpe)),
          );
        }, metrics),
        load('equity', 'Equity curve', `/api/portfolio/${a}/equity`, async data => {
          const points = data.points.map(p => [Date.parse(p.day) / 1000, Number(p.equity)]);
          const now = await metrics.catch(() => null);
          if (now && points.length) points.push([Date.now() / 1000, Number(now.summary.equity)]);
          lineChart(document.getElementById('equity-chart'), { label: 'equity (tokens)', points, color: '#2456c9', yRange: amountRange });
          if (!document.getElementById('equity-note')) {
            document.getElementById('equity').append(h('p', { class: 'muted', id: 'equity-note' }, 'Cash plus live positions, at the end of each day with activity, and now.'));
          }
        }),
        load('portfolio', 'Portfolio', `/api/portfolio/${a}`, p => {
          fill(
            'portfolio',
            h('h2', {}, `Portfolio: ${p.live_positions} live, ${p.closed_positions} closed; exit value ${amt(p.value)}, cost ${amt(p.cost)}, unrealized ${amt(p.unrealized_pnl)}, realized ${amt(p.realized_pnl)}`),
            h('p', { class: 'muted' }, 'Live positions are marked at exit value: what closing each one now would pay.'),
            p.positions.length
              ? table(
                  [
                    ['Position', r => h('a', { href: `#/market/${encodeURIComponent(r.artifact)}` }, r.position_id)],
                    ['Side', r => side(r.side)],
                    ['Status', r => r.status],
                    ['Shares', r => amt(r.quantity), 'num'],
                    ['Cost', r => amt(r.cost), 'num'],
                    ['Entry', r => r.entry_price, 'num'],
                    ['Exit value', r => amt(dash(r.value)), 'num'],
                    ['Unrealized', r => amt(dash(r.unrealized_pnl)), 'num'],
                    ['Realized', r => amt(r.realized_pnl), 'num'],
                    ['', r => (r.live ? h('button', { type: 'button', onclick: () => closePosition(r.position_id) }, 'Close') : '')],
                  ],
                  p.positions,
                  r => ({ 'data-position': r.position_id }),
                )
              : h('p', { class: 'muted' }, 'No positions yet.'),
          );
        }),
        load('statement', 'Statement', `/api/accounts/${a}/statement?limit=50`, s => {
          fill(
            'statement',
            h('h2', {}, `Statement: balance ${amt(s.balance)} (last ${s.lines.length} of ${s.lines_total} lines)`),
            table(
              [
                ['Log position', l => l.position, 'num'],
                ['Time', l => time(l.at)],
                ['Reason', l => l.reason],
                ['Counterparty', l => l.counterparty],
                ['Amount', l => amt(l.delta), 'num'],
                ['Balance', l => amt(l.balance), 'num'],
              ],
              s.lines.slice().reverse(),
            ),
          );
        }),
        load('inbox', 'Inbox', `/api/accounts/${a}/inbox`, rows => {
          fill('inbox', h('h2', {}, 'Inbox'), rows.length ? h('ul', {}, rows.map(r => h('li', {}, time(r.at), ': ', r.message))) : h('p', { class: 'muted' }, 'Nothing yet.'));
        }),
        load('settlements', 'Settlements', `/api/market/settlements?agent_id=${a}`, rows => {
          fill(
            'settlements',
            h('h2', {}, 'Settlements'),
            rows.length
              ? table(
                  [
                    ['Artifact', r => r.artifact || r.artifact_id],
                    ['Kind', r => dash(r.kind || r.outcome)],
                    ['Amount', r => amt(dash(r.payout || r.amount)), 'num'],
                  ],
                  rows,
                )
              : h('p', { class: 'muted' }, 'None yet.'),
          );
        }),
        load('reputation', 'Reputation', `/api/reputation/${a}`, r => {
          fill(
            'reputation',
            h('h2', {}, 'Reputation'),
            h('div', { class: 'stats' }, stat('Believability', r.believability), stat('Predictions', r.predictions), stat('Correct', r.correct)),
          );
        }),
      ]);
    }

    // The account's own stream (its fills, orders, movements, settlements and inbox) brings
    // each change to the open page; the browser sends the key in the URL, as EventSource
    // cannot set headers.
    const mine = generation;
    await refresh();
    if (mine !== generation) return;
    refreshAccount = follow(`/api/stream?topics=account&account=${a}&key=${encodeURIComponent(session.key())}`, refresh);
    onLeave(() => {
      refreshAccount = null;
    });
  }

  // The open account page's refresh, for a close made from it (null on other pages).
  let refreshAccount = null;

  async function closePosition(positionId) {
    const out = document.getElementById('close-result');
    try {
      const closed = await api(`/api/market/positions/${encodeURIComponent(positionId)}/close`, { method: 'POST', body: {} });
      out.replaceChildren(h('div', { class: 'result' }, `Closed ${closed.position}: ${amt(closed.proceeds)} tokens back, P&L ${amt(closed.pnl)}.`));
      if (refreshAccount) refreshAccount();
    } catch (error) {
      out.replaceChildren(errorBox(error));
    }
  }

  // Auditor --------------------------------------------------------------------------------

  async function showAuditor() {
    const who = session.who();
    render(
      h('h1', {}, 'Auditor'),
      who && who.admin ? null : h('p', { class: 'muted' }, 'The audit needs an admin key; any key may read the export roots and check its own balance proof.'),
      h(
        'div',
        { class: 'grid' },
        panel('Audit', 'audit', h('p', { class: 'muted' }, 'Replaying the log…')),
        panel("Views' lag", 'views'),
        panel('Latest export roots', 'roots'),
        wide(panel('Balance proof, checked in this browser', 'proof', proofForm(who))),
      ),
    );
    const load = async (id, title, path, render) => {
      try {
        render(await api(path));
      } catch (error) {
        fill(id, h('h2', {}, title), unavailable(title, path, error));
      }
    };
    await Promise.all([
      load('views', "Views' lag", '/api/projections', rows =>
        fill(
          'views',
          h('h2', {}, "Views' lag"),
          table(
            [
              ['View', r => r.view],
              ['Position', r => r.position, 'num'],
              ['Log head', r => r.head, 'num'],
              ['Lag', r => r.lag, 'num'],
              ['Rows', r => r.rows, 'num'],
              ['Rebuild?', r => (r.needs_rebuild ? 'needed' : 'no')],
            ],
            rows,
          ),
        ),
      ),
      load('roots', 'Latest export roots', '/api/export/roots', r =>
        fill(
          'roots',
          h('h2', {}, 'Latest export roots'),
          h('p', { class: 'muted' }, `What an export of the whole log (seq 1 … ${r.lastSeq}) would carry in its header.`),
          table(
            [
              ['Field', x => x[0]],
              ['Value', x => h('span', { class: 'hash', 'data-field': x[0] }, x[1])],
            ],
            [
              ['lastSeq', r.lastSeq],
              ['balancesRoot', r.balancesRoot],
              ['eventsRoot', r.eventsRoot],
              ['snapshotId', r.snapshotId],
              ['totalSupply (units)', r.totalSupply],
            ],
          ),
        ),
      ),
      load('audit', 'Audit', '/api/audit', a =>
        fill(
          'audit',
          h('h2', {}, 'Audit'),
          h('p', {}, h('span', { class: `badge ${a.clean ? 'ok' : 'bad'}`, id: 'audit-verdict' }, a.clean ? 'clean' : `${a.violation_count} violations`)),
          h('div', { class: 'stats' }, stat('Events', a.events), stat('Accounts', a.accounts), stat('Transfers', a.transfers), stat('Total supply', amt(a.total_supply)), stat('Seconds', a.seconds)),
          a.violations.length ? h('ul', {}, a.violations.slice(0, 20).map(v => h('li', {}, v))) : null,
        ),
      ),
    ]);
  }

  function proofForm(who) {
    const account = h('input', { id: 'proof-account', value: who ? who.agent : '', 'aria-label': 'Account' });
    const text = h('textarea', { id: 'proof-json', class: 'proof', spellcheck: 'false', 'aria-label': 'Proof JSON', placeholder: 'Fetch a proof, or paste one (stakeledger export proof ACCOUNT --json)' });
    const out = h('div', { id: 'proof-result' });
    async function fetchProof() {
      out.replaceChildren();
      try {
        const proof = await api(`/api/export/proof/${encodeURIComponent(account.value.trim())}`);
        text.value = JSON.stringify({ account: proof.account, address: proof.address, balance: proof.balance, lastSeq: proof.lastSeq, proof: proof.proof }, null, 2);
      } catch (error) {
        out.replaceChildren(errorBox(error));
      }
    }
    async function check() {
      let document_;
      try {
        document_ = JSON.parse(text.value);
      } catch (error) {
        out.replaceChildren(h('p', {}, 'Result:', h('span', { class: 'verdict invalid', id: 'proof-verdict' }, 'invalid'), ` the text is not JSON (${error.message})`));
        return;
      }
      // The root comes from the server's own snapshot at the proof's seq, fetched apart
      // from the proof: the proof's hashes are recomputed here and must reach it.
      let roots;
      try {
        const at = Number.isInteger(document_.lastSeq) && document_.lastSeq > 0 ? `?at=${document_.lastSeq}` : '';
        roots = await api(`/api/export/roots${at}`);
      } catch (error) {
        out.replaceChildren(unavailable('The export roots', '/api/export/roots', error));
        return;
      }
      let result;
      try {
        result = globalThis.stakeledgerProof.verifyBalanceProof(document_, roots.balancesRoot);
      } catch (error) {
        out.replaceChildren(errorBox(error));
        return;
      }
      out.replaceChildren(
        h('p', {}, 'Result:', h('span', { class: `verdict ${result.valid ? 'valid' : 'invalid'}`, id: 'proof-verdict' }, result.valid ? 'valid' : 'invalid'), ' ', result.reason),
        table(
          [
            ['', x => x[0]],
            ['', x => h('span', { class: 'hash' }, dash(x[1]))],
          ],
          [
            [`balancesRoot at seq ${roots.lastSeq}`, roots.balancesRoot],
            ['root from the proof', result.computedRoot],
            ['leaf', result.leaf],
          ],
        ),
      );
    }
    return h(
      'div',
      {},
      h(
        'div',
        { class: 'toolbar' },
        h('label', { for: 'proof-account' }, 'Account'),
        account,
        h('button', { type: 'button', id: 'proof-fetch', onclick: fetchProof }, 'Fetch proof'),
        h('button', { type: 'button', class: 'primary', id: 'proof-check', onclick: check }, 'Check in browser'),
      ),
      text,
      out,
    );
  }

  // Sign-in and routing --------------------------------------------------------------------

  function showSession() {
    const who = session.who();
    document.getElementById('signin').hidden = Boolean(who);
    document.getElementById('signedin').hidden = !who;
    document.getElementById('signedin-who').textContent = who ? `${who.agent} (${who.scope})` : '';
  }

  document.getElementById('signin').addEventListener('submit', async event => {
    event.preventDefault();
    const input = document.getElementById('signin-key');
    const key = input.value.trim();
    sessionStorage.setItem(KEY, key);
    try {
      const who = await api('/api/whoami');
      session.set(key, who);
      input.value = '';
      notice('');
    } catch (error) {
      session.clear();
      notice(`Sign-in refused: ${error.code} — ${error.message}`);
    }
    showSession();
    route();
  });

  document.getElementById('signout').addEventListener('click', () => {
    session.clear();
    showSession();
    route();
  });

  async function route() {
    leave();
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    const page = parts[0] || 'markets';
    for (const link of document.querySelectorAll('[data-nav]')) link.classList.toggle('active', link.dataset.nav === page || (page === 'market' && link.dataset.nav === 'markets'));
    try {
      if (page === 'market' && parts[1]) await showMarket(parts[1]);
      else if (page === 'account') await showAccount(parts[1]);
      else if (page === 'auditor') await showAuditor();
      else await showMarkets();
    } catch (error) {
      render(errorBox(error));
    }
    view.dataset.ready = page;
  }

  window.addEventListener('hashchange', route);
  showSession();
  route();
})();
