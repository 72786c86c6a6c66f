// The kiosk's first-run setup panel (see src-tauri/crates/core/src/http/setup.rs): while the kiosk has one
// wall and no operator has ever signed in to the console, the wall shows the console's address as a QR next
// to the join QR, so setup happens from a phone. The QR holds the address only, never the admin token (the
// screen is in a public room). The panel asks the server again every few seconds and is removed for good
// once an operator has signed in. Independent of wall.js: it only reads the wall id from the address and
// places itself beside #qr-panel.
(function () {
  'use strict';
  const match = location.pathname.match(/^\/wall\/([^/]+)\/?$/);
  if (!match) return;
  const endpoint = `/api/walls/${match[1]}/setup`;
  const ASK_EVERY_MS = 3000;
  let panel = null;
  let timer = null;

  function build(data) {
    const el = document.createElement('aside');
    el.id = 'setup-panel';
    el.setAttribute('aria-label', 'Set up this wall');
    Object.assign(el.style, {
      position: 'fixed', zIndex: '7', display: 'flex', flexDirection: 'column', alignItems: 'center',
      gap: '1.2vmin', padding: '2vmin', maxWidth: '30vmin', boxSizing: 'border-box',
      background: 'rgba(11, 16, 32, 0.92)', color: '#fff', border: '0.25vmin dashed rgba(255, 255, 255, 0.35)',
      borderRadius: '2.4vmin', textAlign: 'center', font: 'inherit', pointerEvents: 'none',
    });
    const heading = document.createElement('div');
    heading.className = 'setup-heading';
    heading.style.cssText = 'font-size:2.6vmin;font-weight:800;line-height:1.2';
    heading.textContent = 'Set up from your phone';
    const zh = document.createElement('div');
    zh.className = 'setup-heading-zh';
    zh.style.cssText = 'font-size:2vmin;font-weight:600;opacity:0.8';
    zh.textContent = '用手机扫码设置';
    const qr = document.createElement('div');
    qr.className = 'setup-qr';
    qr.style.cssText = 'width:20vmin;height:20vmin;padding:1vmin;background:#fff;border-radius:1.2vmin;box-sizing:border-box';
    qr.innerHTML = data.qr_svg; // our own server's SVG
    const svg = qr.querySelector('svg');
    if (svg) { svg.style.width = '100%'; svg.style.height = '100%'; svg.style.display = 'block'; }
    const url = document.createElement('div');
    url.className = 'setup-url';
    url.style.cssText = 'font-size:1.6vmin;word-break:break-all;opacity:0.9';
    url.textContent = data.console_url;
    const hint = document.createElement('div');
    hint.className = 'setup-hint';
    hint.style.cssText = 'font-size:1.5vmin;opacity:0.7;line-height:1.3';
    hint.textContent = 'Operator console: sign in with the admin token (printed at the first start; Ctrl+Shift+A on the kiosk). 管理后台：用管理员令牌登录。';
    el.append(heading, zh, qr, url, hint);
    return el;
  }

  // Beside the join QR (to its left, bottom edges aligned); the bottom-right corner when it is hidden.
  function place() {
    if (!panel) return;
    const join = document.getElementById('qr-panel');
    const r = join && !join.hidden ? join.getBoundingClientRect() : null;
    const gap = Math.round(Math.min(innerWidth, innerHeight) * 0.02);
    if (r && r.width > 0) {
      panel.style.right = `${Math.max(gap, innerWidth - r.left + gap)}px`;
      panel.style.bottom = `${Math.max(gap, innerHeight - r.bottom)}px`;
    } else {
      panel.style.right = `${gap}px`;
      panel.style.bottom = `${gap}px`;
    }
  }

  // The page's answer so far, for tests: "shown", or "gone" (never to come back on this page).
  function mark(state) { document.documentElement.dataset.setupPanel = state; }

  function remove() {
    if (panel) panel.remove();
    panel = null;
    mark('gone');
  }

  async function ask() {
    timer = null;
    let data = null;
    try {
      const res = await fetch(endpoint, { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 404) return remove(); // a server without the panel: never ask again
      if (res.ok) data = await res.json();
    } catch (_) { /* offline: ask again later */ }
    if (data && data.show === false) return remove(); // an operator has signed in: gone for good
    if (data && data.show && !panel) {
      panel = build(data);
      document.body.appendChild(panel);
      mark('shown');
    }
    place();
    timer = setTimeout(ask, ASK_EVERY_MS);
  }

  addEventListener('resize', place);
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ask);
  else ask();
  // The join QR panel moves when the wall's layout changes: follow it.
  setInterval(place, 1000);
})();
