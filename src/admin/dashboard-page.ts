/**
 * The dashboard: one static page, no build step. It polls /admin/state every
 * second and draws backends as rows and instances as coloured cells with
 * their state and why; request and error rates come from counter deltas
 * between polls, kept for five minutes and drawn as small SVG charts, with
 * DNS queries per second above. Every time is UTC; ages and TTLs read as
 * durations (1.2s, 3m 4s), never raw milliseconds.
 */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>srvgate</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<style>
  :root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; background: #f5f6f8; }
  body { margin: 0; padding: 24px 32px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6475; font-size: 13px; margin-bottom: 20px; }
  .pill { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 12px; font-weight: 600; margin-left: 8px; }
  .ok { background: #d8f5df; color: #17642c; } .bad { background: #fde0e0; color: #8c1c1c; } .warn { background: #fff0cc; color: #7a5300; }
  table { border-collapse: collapse; width: 100%; background: #fff; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.06); margin-bottom: 24px; }
  th, td { text-align: left; padding: 10px 12px; border-bottom: 1px solid #eceef2; font-size: 14px; vertical-align: middle; }
  th { background: #fafbfc; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #5b6475; }
  .cells { display: flex; flex-wrap: wrap; gap: 6px; }
  .cell { min-width: 132px; padding: 6px 8px; border-radius: 6px; font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; color: #fff; }
  .cell small { display: block; opacity: .9; font-family: system-ui, sans-serif; }
  .up { background: #2f9e55; } .ejected { background: #d64545; } .failing-check { background: #e08a1e; } .dns-removed { background: #8a93a3; }
  .none { color: #8c1c1c; font-weight: 600; }
  .num { font-variant-numeric: tabular-nums; }
  #error, .reload-error { color: #8c1c1c; font-weight: 600; }
  .chart { display: block; }
  .chart .req { fill: none; stroke: #2f7de1; stroke-width: 1.5; } .chart .err { fill: none; stroke: #d64545; stroke-width: 1.5; } .chart .dns { fill: none; stroke: #7a4fd6; stroke-width: 1.5; }
  .legend { font-size: 12px; color: #5b6475; } .legend b.req { color: #2f7de1; } .legend b.err { color: #d64545; } .legend b.dns { color: #7a4fd6; }
  .overview { display: flex; gap: 24px; align-items: center; background: #fff; border-radius: 8px; padding: 10px 14px; margin-bottom: 20px; box-shadow: 0 1px 2px rgba(0,0,0,.06); }
</style>
</head>
<body>
<h1>srvgate <span id="readiness" class="pill warn">loading</span></h1>
<div class="sub"><span id="meta"></span> <span id="reload-error" class="reload-error"></span> <span id="error"></span></div>
<div class="overview"><div><div class="legend"><b class="dns">DNS queries/s</b>, last 5 minutes: <span id="dns-rate" class="num">0.0</span></div><svg id="dns-chart" class="chart" width="360" height="40"></svg></div></div>
<h2 style="font-size:15px">Routes</h2>
<table id="routes"><thead><tr><th>Frontend</th><th>Matches</th><th>Policies, in order</th><th>Sends to · instances up</th></tr></thead><tbody></tbody></table>
<h2 style="font-size:15px">Backends</h2>
<table id="backends"><thead><tr><th>Backend</th><th>Discovery</th><th>Last 5 minutes <span class="legend"><b class="req">req/s</b> · <b class="err">5xx/s</b></span></th><th>Instances</th></tr></thead><tbody></tbody></table>
<div id="dns-face-section" hidden><h2 style="font-size:15px">DNS face <small id="dns-face-zone" class="legend"></small></h2>
<table id="dns-face"><thead><tr><th>Name</th><th>Answers for</th><th>A / AAAA now (lowest priority group)</th><th>SRV records</th></tr></thead><tbody></tbody></table></div>
<div id="splits-section" hidden><h2 style="font-size:15px">Splits</h2>
<table id="splits"><thead><tr><th>Split</th><th>Members · weight (red: no usable instance, its share goes to the others)</th><th>Sticky on</th></tr></thead><tbody></tbody></table></div>
<div id="certificates-section" hidden><h2 style="font-size:15px">Certificates</h2>
<table id="certificates"><thead><tr><th>Source</th><th>Names</th><th>Serial</th><th>Expires</th><th>Next renewal</th></tr></thead><tbody></tbody></table></div>
<h2 style="font-size:15px">DNS</h2>
<table id="dns"><thead><tr><th>Name</th><th>Answer</th><th>TTL received → clamped</th><th>Age</th><th>Nameserver</th><th>State</th></tr></thead><tbody></tbody></table>
<script>
  const token = new URLSearchParams(location.search).get('token');
  // Kept in memory from here: not in the address bar, the history, or a bookmark.
  if (token) history.replaceState(null, '', location.pathname);
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  const WINDOW_MS = 5 * 60 * 1000;
  let previous = null;
  /** Rates per backend and for DNS: [{ at, requests, errors }] over the last five minutes. */
  const history = new Map();
  const dnsHistory = [];
  const text = (value) => String(value ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  /** 1234 → '1.2s', 65000 → '1m 5s', 250 → '250ms'. */
  function duration (ms) {
    if (ms === undefined || ms === null) return '—';
    if (ms < 1000) return Math.round(ms) + 'ms';
    if (ms < 60000) return (Math.round(ms / 100) / 10) + 's';
    const minutes = Math.floor(ms / 60000);
    return minutes + 'm ' + Math.round((ms % 60000) / 1000) + 's';
  }
  /** Every time on the page in one zone: UTC, HH:MM:SS. */
  const utc = (iso) => new Date(iso).toISOString().slice(11, 19) + ' UTC';
  const utcIn = (words) => String(words ?? '').replace(/\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?Z/g, (iso) => utc(iso));
  function polyline (points, key, max, width, height, now) {
    if (points.length < 2) return '';
    return points.map((point) => ((width * (1 - (now - point.at) / WINDOW_MS)).toFixed(1)) + ',' + (height - 2 - (height - 4) * (point[key] / max)).toFixed(1)).join(' ');
  }
  function chart (points, series, now, width, height) {
    const max = Math.max(1, ...points.flatMap((point) => series.map((key) => point[key])));
    return series.map((key) => '<polyline class="' + (key === 'requests' ? 'req' : key === 'errors' ? 'err' : 'dns') + '" points="' + polyline(points, key, max, width, height, now) + '"/>').join('') +
      '<text x="2" y="10" font-size="9" fill="#8a93a3">' + max.toFixed(1) + '/s</text>';
  }
  function remember (list, point, now) {
    list.push(point);
    while (list.length > 0 && now - list[0].at > WINDOW_MS) list.shift();
  }
  function render (state, now) {
    const readiness = document.getElementById('readiness');
    readiness.textContent = state.isDraining ? 'draining' : state.isReady ? 'ready' : 'not ready';
    readiness.className = 'pill ' + (state.isDraining ? 'warn' : state.isReady ? 'ok' : 'bad');
    const reload = state.lastReload;
    const workers = state.workers;
    document.getElementById('meta').textContent = 'config loaded ' + utc(state.loadedAt) + (reload ? ' · last reload ' + reload.result + ' at ' + utc(reload.at) : '') +
      (workers ? ' · workers ' + workers.running + '/' + workers.configured + (workers.replaced > 0 ? ' (' + workers.replaced + ' replaced)' : '') : '') + ' · updated ' + utc(state.generatedAt);
    const restart = state.restartNeeded && state.restartNeeded.length > 0 ? 'restart needed to apply ' + state.restartNeeded.join(', ') + ' (the running values stay until then)' : '';
    document.getElementById('reload-error').textContent = [reload && reload.result === 'error' ? 'reload refused: ' + (reload.error || 'see the logs') + ' (the previous configuration keeps serving)' : '', restart].filter(Boolean).join(' · ');
    const dnsRate = dnsHistory.length > 0 ? dnsHistory[dnsHistory.length - 1].queries : 0;
    document.getElementById('dns-rate').textContent = dnsRate.toFixed(1);
    document.getElementById('dns-chart').innerHTML = chart(dnsHistory, ['queries'], now, 360, 40);
    document.querySelector('#routes tbody').innerHTML = (state.frontends || []).map((frontend) => {
      const match = frontend.match || {};
      const matches = [match.host || 'any host', match.pathPrefix ? match.pathPrefix + '…' : '', (match.methods || []).join(' '), Object.entries(match.headers || {}).map(([name, value]) => name + ': ' + value).join(', ')].filter(Boolean).join(' · ');
      const policies = (frontend.policies || []).map((entry) => '<span class="pill" title="' + text(entry.detail) + '">' + text(entry.policy) + '</span>').join(' ') || '<small>none</small>';
      const target = frontend.target || { kind: 'backend', backends: [] };
      const sends = target.kind === 'redirect' ? '<small>answered by its redirect</small>'
        : target.backends.length === 0 ? '<small>' + text(target.template || frontend.backend) + ': no environment yet</small>'
          : target.backends.map((entry) => '<span class="pill ' + (entry.up > 0 ? 'ok' : 'bad') + '">' + text(entry.backend) + (entry.weight === undefined || entry.weight === null ? '' : ' · ' + entry.weight) + ' · ' + entry.up + '/' + entry.instances + '</span>').join(' ');
      return '<tr data-frontend="' + text(frontend.name) + '"><td><b>' + text(frontend.name) + '</b></td><td><small>' + text(matches) + '</small></td><td class="policies">' + policies + '</td><td class="targets">' + sends + '</td></tr>';
    }).join('');
    document.querySelector('#backends tbody').innerHTML = state.backends.map((backend) => {
      const cells = backend.instances.length === 0
        ? '<span class="none">no instance' + (backend.lastError ? ' (' + text(backend.lastError.code) + ')' : '') + '</span>'
        : backend.instances.map((instance) => '<div class="cell ' + instance.state + '" data-state="' + instance.state + '" title="' + text(utcIn(instance.reason) || instance.state) + '">' +
            text(instance.key) + '<small>' + text(instance.state) + ' · ' + instance.inFlight + ' in flight' + (instance.priority > 1 ? ' · backup p' + instance.priority : '') + '</small>' +
            (instance.reason ? '<small>' + text(utcIn(instance.reason)) + '</small>' : '') + '</div>').join('');
      const refused = (backend.refused || []).map((entry) => '<br><small class="none" title="' + text(entry.reason) + '">refused ' + text(entry.key) + ': ' + text(entry.reason) + '</small>').join('');
      // A failover chain says who serves now: the backend's own discovery, a failover target, or nobody.
      const failover = backend.failover
        ? '<br><small class="failover" data-serving="' + text(backend.failover.serving) + '">serving: ' + (backend.failover.serving === undefined ? '<span class="none">none</span>' : backend.failover.serving === backend.name ? 'own discovery' : '<span class="pill warn">failover ' + text(backend.failover.serving) + '</span>') + '</small>'
        : '';
      const discovery = text(backend.status) + (backend.isStale ? ' <span class="pill warn">stale</span>' : '') + refused + failover;
      const points = history.get(backend.name) || [];
      const last = points[points.length - 1] || { requests: 0, errors: 0 };
      return '<tr data-backend="' + text(backend.name) + '"><td><b>' + text(backend.name) + '</b><br><small>' + text(backend.balance) + '</small></td><td>' + discovery + '</td>' +
        '<td><svg class="chart" width="220" height="36">' + chart(points, ['requests', 'errors'], now, 220, 36) + '</svg><small class="num rate">' + last.requests.toFixed(1) + ' req/s · ' + last.errors.toFixed(1) + ' 5xx/s</small></td>' +
        '<td><div class="cells">' + cells + '</div></td></tr>';
    }).join('');
    const face = state.dnsFace;
    document.getElementById('dns-face-section').hidden = !face;
    if (face) {
      document.getElementById('dns-face-zone').textContent = face.zone + ' on ' + face.listen.join(', ') + ' · TTL ' + face.ttlSeconds + 's';
      document.querySelector('#dns-face tbody').innerHTML = face.names.map((entry) => '<tr data-face-name="' + text(entry.name) + '"><td><b>' + text(entry.name) + '</b><br><small>' + text(entry.srvName) + '</small></td><td>' + text(entry.answers) + '</td><td class="addresses">' +
        (entry.addresses.length === 0 ? '<span class="none">no usable instance (NOERROR, empty)</span>' : entry.addresses.map(text).join(' ')) + (entry.isStale ? ' <span class="pill warn">stale: TTL 30s</span>' : '') + '</td><td class="num">' + entry.srv.length + '</td></tr>').join('');
    }
    const splits = state.splits || [];
    document.getElementById('splits-section').hidden = splits.length === 0;
    document.querySelector('#splits tbody').innerHTML = splits.map((split) => '<tr data-split="' + text(split.name) + '"><td><b>' + text(split.name) + '</b></td><td>' +
      split.members.map((member) => '<span class="pill ' + (member.usable ? 'ok' : 'bad') + '">' + text(member.backend) + ' · ' + member.weight + '</span>').join(' ') + '</td><td>' + text(split.stickyOn || '—') + '</td></tr>').join('');
    document.querySelector('#dns tbody').innerHTML = state.resolverCache.map((entry) => '<tr><td>' + text(entry.key) + '</td><td>' + text(entry.outcome) + ' (' + entry.instances + ')</td><td class="num">' +
      (entry.ttlReceivedSeconds === undefined || entry.ttlReceivedSeconds === null ? '— (negative) → ' : text(entry.ttlReceivedSeconds) + 's → ') + duration(entry.ttlClampedMs) + '</td><td class="num">' + duration(entry.ageMs) + '</td><td>' + text(entry.nameserver) + '/' + text(entry.transport) + '</td><td>' +
      (entry.isStale ? '<span class="pill warn">stale: ' + text(entry.lastError) + '</span>' : entry.isInEmptyGrace ? '<span class="pill warn">empty, in grace</span>' : '<span class="pill ok">fresh</span>') + '</td></tr>').join('');
    const certificates = state.certificates || [];
    document.getElementById('certificates-section').hidden = certificates.length === 0;
    document.querySelector('#certificates tbody').innerHTML = certificates.map((certificate) => '<tr data-serial="' + text(certificate.serial || '') + '"><td>' + text(certificate.source === 'acme' ? 'ACME' : certificate.file) + '</td><td>' + text(certificate.names.join(', ')) +
      '</td><td class="num">' + text(certificate.serial || '—') + '</td><td>' + (certificate.notAfter === undefined ? '<span class="pill bad">none yet</span>' : '<span class="pill ' + (certificate.daysLeft < 14 ? 'warn' : 'ok') + '">' + text(certificate.notAfter.slice(0, 10)) + ' (' + certificate.daysLeft + ' days)</span>') +
      '</td><td>' + text(certificate.nextRenewal === undefined ? '—' : certificate.nextRenewal.slice(0, 16).replace('T', ' ')) + (certificate.lastError === undefined ? '' : ' <span class="pill warn">' + text(certificate.lastError) + '</span>') + '</td></tr>').join('');
  }
  async function poll () {
    try {
      const response = await fetch('/admin/state', { headers });
      if (!response.ok) throw new Error('admin API answered ' + response.status);
      const state = await response.json();
      const now = Date.now();
      // A fresh tab starts from the control plane's five minutes, on this browser's clock.
      if (!previous && state.history) {
        const offset = now - Date.parse(state.generatedAt);
        for (const point of state.history.points) {
          const at = Date.parse(point.at) + offset;
          remember(dnsHistory, { at, queries: point.dnsQueries }, now);
          for (const [name, rates] of Object.entries(point.backends)) {
            const list = history.get(name) || [];
            remember(list, { at, requests: rates.requests, errors: rates.errors }, now);
            history.set(name, list);
          }
        }
      }
      if (previous) {
        const seconds = (now - previous.at) / 1000;
        for (const backend of state.backends) {
          const before = previous.state.backends.find((b) => b.name === backend.name);
          if (!before) continue;
          const list = history.get(backend.name) || [];
          remember(list, { at: now, requests: Math.max(0, backend.requests - before.requests) / seconds, errors: Math.max(0, backend.errors - before.errors) / seconds }, now);
          history.set(backend.name, list);
        }
        for (const name of history.keys()) if (!state.backends.some((b) => b.name === name)) history.delete(name);
        remember(dnsHistory, { at: now, queries: Math.max(0, state.dnsQueries - previous.state.dnsQueries) / seconds }, now);
      }
      previous = { state, at: now };
      render(state, now);
      document.getElementById('error').textContent = '';
    } catch (error) {
      document.getElementById('error').textContent = String(error.message || error);
    }
  }
  poll();
  setInterval(poll, 1000);
</script>
</body>
</html>
`
