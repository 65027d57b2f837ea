/**
 * The dashboard: one static page, no build step. It polls /admin/state every
 * second and draws backends as rows and instances as coloured cells with
 * their state and why; request rates come from counter deltas between polls.
 */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>srvgate</title>
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
  #error { color: #8c1c1c; font-weight: 600; }
</style>
</head>
<body>
<h1>srvgate <span id="readiness" class="pill warn">loading</span></h1>
<div class="sub"><span id="meta"></span> <span id="error"></span></div>
<h2 style="font-size:15px">Backends</h2>
<table id="backends"><thead><tr><th>Backend</th><th>Discovery</th><th>Req/s</th><th>Instances</th></tr></thead><tbody></tbody></table>
<h2 style="font-size:15px">DNS</h2>
<table id="dns"><thead><tr><th>Name</th><th>Answer</th><th>TTL received → clamped</th><th>Age</th><th>Nameserver</th><th>State</th></tr></thead><tbody></tbody></table>
<script>
  const token = new URLSearchParams(location.search).get('token');
  const headers = token ? { authorization: 'Bearer ' + token } : {};
  let previous = null;
  const text = (value) => String(value ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
  function render (state, rates) {
    const readiness = document.getElementById('readiness');
    readiness.textContent = state.isDraining ? 'draining' : state.isReady ? 'ready' : 'not ready';
    readiness.className = 'pill ' + (state.isDraining ? 'warn' : state.isReady ? 'ok' : 'bad');
    document.getElementById('meta').textContent = 'config loaded ' + state.loadedAt + (state.lastReload ? ' · last reload ' + state.lastReload.result + ' at ' + state.lastReload.at : '') + ' · updated ' + new Date(state.generatedAt).toLocaleTimeString();
    document.querySelector('#backends tbody').innerHTML = state.backends.map((backend) => {
      const cells = backend.instances.length === 0
        ? '<span class="none">no instance' + (backend.lastError ? ' (' + text(backend.lastError.code) + ')' : '') + '</span>'
        : backend.instances.map((instance) => '<div class="cell ' + instance.state + '" data-state="' + instance.state + '" title="' + text(instance.reason || instance.state) + '">' +
            text(instance.key) + '<small>' + text(instance.state) + ' · ' + instance.inFlight + ' in flight' + (instance.priority > 1 ? ' · backup p' + instance.priority : '') + '</small>' +
            (instance.reason ? '<small>' + text(instance.reason) + '</small>' : '') + '</div>').join('');
      const discovery = text(backend.status) + (backend.isStale ? ' <span class="pill warn">stale</span>' : '');
      return '<tr data-backend="' + text(backend.name) + '"><td><b>' + text(backend.name) + '</b><br><small>' + text(backend.balance) + '</small></td><td>' + discovery + '</td><td class="num">' + (rates[backend.name] ?? 0).toFixed(1) + '</td><td><div class="cells">' + cells + '</div></td></tr>';
    }).join('');
    document.querySelector('#dns tbody').innerHTML = state.resolverCache.map((entry) => '<tr><td>' + text(entry.key) + '</td><td>' + text(entry.outcome) + ' (' + entry.instances + ')</td><td class="num">' + text(entry.ttlReceivedSeconds) + 's → ' + entry.ttlClampedMs + 'ms</td><td class="num">' + entry.ageMs + 'ms</td><td>' + text(entry.nameserver) + '/' + text(entry.transport) + '</td><td>' +
      (entry.isStale ? '<span class="pill warn">stale: ' + text(entry.lastError) + '</span>' : entry.isInEmptyGrace ? '<span class="pill warn">empty, in grace</span>' : '<span class="pill ok">fresh</span>') + '</td></tr>').join('');
  }
  async function poll () {
    try {
      const response = await fetch('/admin/state', { headers });
      if (!response.ok) throw new Error('admin API answered ' + response.status);
      const state = await response.json();
      const now = Date.now();
      const rates = {};
      if (previous) for (const backend of state.backends) {
        const before = previous.state.backends.find((b) => b.name === backend.name);
        if (before) rates[backend.name] = Math.max(0, (backend.requests - before.requests) * 1000 / (now - previous.at));
      }
      previous = { state, at: now };
      render(state, rates);
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
