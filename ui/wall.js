/* Voicewall — the big screen.
 *
 * Plain JS, no build step. Reads the wall id from /wall/{id}, loads GET /api/walls/{id},
 * follows GET /api/walls/{id}/events (SSE) and lays out every participant's avatar in the free
 * area next to the always-visible join QR panel. Audio is played by the server's native player;
 * this page only plays video messages (in the spotlight).
 *
 * Two ways to draw the crowd:
 * - A grid of DOM avatars while every face is still readable (cell >= READABLE_FRAC of the short side):
 *   avatars in normal flow inside one flex-wrap box, names when cells are big, FLIP glides on re-flow.
 * - The big room, when cells would fall below that: a "stage" row of a few large faces with names (the
 *   speaking person, people with new voice messages, the newest arrivals; each stays at least
 *   STAGE_DWELL_MS so a fast-filling room stays readable) above a mosaic of everyone drawn on ONE canvas.
 *   Why a canvas: with thousands of DOM avatars each join, badge or ring costs style/layout/paint work that
 *   grows with the crowd, and software compositing pays for every layer; on a canvas a join is one
 *   drawImage of a pre-decoded tile, the page has a few dozen elements whatever the crowd, and a re-layout
 *   is one pass of drawImage calls. Tiles are fetched and decoded off the main thread at the size they are
 *   drawn (createImageBitmap with resizeWidth), circle-masked once, and kept as small bitmaps.
 * Avatar sizes: the wall asks for the smallest variant that covers what it draws — `thumb_url` (a ~64 px
 * square the server may offer) when the drawn size x devicePixelRatio <= THUMB_PX, else `avatar_url` —
 * and falls back to `avatar_url` when the thumbnail is missing or fails, then to initials.
 */
(() => {
  'use strict';

  // ---------------------------------------------------------------- constants & strings
  const GLIDE_MS = 700;
  const FRESH_MS = 5000;         // how long a new message pulses
  const BUBBLE_MS = 9000;        // text/image message bubble lifetime
  const MAX_BUBBLES = 3;
  const NAMED_MIN_CELL = 118;    // show names under avatars when cells are at least this big (px)
  const READABLE_FRAC = 0.05;    // below this cell size (fraction of the short side) the big room takes over
  const THUMB_PX = 64;           // `thumb_url` covers faces drawn up to this many device pixels
  const STAGE_DWELL_MS = 4000;   // a face stays on the stage at least this long (the speaker takes a slot at once)
  const TILE_CONCURRENCY = 12;   // avatar fetch+decode jobs in flight (more than the 6 connections: decodes overlap fetches)
  const BACKOFF = [1000, 2000, 4000, 8000, 10000];
  const HEARTBEAT_TIMEOUT_MS = 45000;

  const STR = {
    en: {
      scan: 'Scan to join', scanOther: '扫码加入',
      cta: 'Be the first on the wall!',
      joined: (n) => (n === 1 ? 'person joined' : 'people joined'),
      reconnecting: 'Reconnecting…', connecting: 'Connecting…',
      voice: 'Voice', video: 'Video', text: 'Text', image: 'Photo',
    },
    zh: {
      scan: '扫码加入', scanOther: 'Scan to join',
      cta: '快来成为第一个上墙的人！',
      joined: () => '人已加入',
      reconnecting: '正在重新连接…', connecting: '正在连接…',
      voice: '语音', video: '视频', text: '文字', image: '图片',
    },
  };

  // ---------------------------------------------------------------- dom
  const $ = (id) => document.getElementById(id);
  const app = $('app');
  const grid = $('grid');
  const dim = $('dim');
  const crowd = $('crowd');
  const stageEl = $('stage');
  const mosaicEl = $('mosaic');
  const rowEls = [];
  const panel = $('qr-panel');
  const qrImg = $('qr');
  const header = $('header');
  const spot = $('spotlight');
  const spotFace = spot.querySelector('.spot-face');
  const spotVideo = spot.querySelector('.spot-video');
  const spotKind = spot.querySelector('.spot-kind');
  const wave = $('wave');
  const bubbles = $('bubbles');
  const statusEl = $('status');

  // ---------------------------------------------------------------- state
  const m = location.pathname.match(/\/wall\/([^/?#]+)/);
  const wallId = m ? decodeURIComponent(m[1]) : (new URLSearchParams(location.search).get('wall') || 'main');
  const api = `/api/walls/${encodeURIComponent(wallId)}`;

  const S = {
    wall: null,                 // id, title, locale, theme, join, demo
    people: new Map(),          // id -> rec {p, view (grid DOM, lazy), tile (mosaic bitmap), idx, x, y, msgs:Set, lit…}
    lit: new Set(),             // ids with unplayed voice/video messages
    order: [],                  // participant ids, join order
    messages: new Map(),        // id -> message
    playback: null,             // {message_id, participant_id, position_ms, duration_ms, at}
    connected: false,
    everConnected: false,
    layout: null,
    lastLayoutChange: 0,
    reconnects: 0,
    events: 0,
    plays: [],                  // participant ids we POSTed /play for
    strings: STR.en,
    heartbeatSeen: false,
    videoBlocked: false,
  };

  // ---------------------------------------------------------------- helpers
  function hash(str) {
    let h = 2166136261;
    for (let i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 16777619); }
    return h >>> 0;
  }
  function colourFor(id) {
    const h = hash(String(id));
    return `hsl(${h % 360} ${55 + (h >> 9) % 20}% ${38 + (h >> 17) % 12}%)`;
  }
  const CJK = /[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]/;
  function initials(name) {
    const s = String(name || '').trim();
    if (!s) return '?';
    const chars = Array.from(s.replace(/[\s\p{P}\p{S}]+/gu, ' ').trim() || s);
    if (CJK.test(s)) {
      // Chinese/Japanese/Korean names: the first CJK character reads best.
      const c = chars.find((ch) => CJK.test(ch));
      return c || chars[0];
    }
    const words = chars.join('').split(/\s+/).filter(Boolean);
    if (words.length >= 2) return (Array.from(words[0])[0] + Array.from(words[1])[0]).toUpperCase();
    return Array.from(words[0] || s).slice(0, 2).join('').toUpperCase();
  }
  function fmtDur(ms) {
    const s = Math.max(0, Math.round((ms || 0) / 1000));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }
  function isZh() { return /^zh/i.test((S.wall && S.wall.locale) || ''); }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function safeUrl(u) {
    // Only same-origin relative URLs (/media/…, /api/…); never hotlink anything else.
    if (typeof u !== 'string' || !u) return null;
    if (u.startsWith('/') && !u.startsWith('//')) return u;
    try {
      const url = new URL(u, location.href);
      if (url.origin === location.origin) return url.pathname + url.search;
    } catch (_) { /* ignore */ }
    return null;
  }

  // Which avatar URLs to try for a face drawn `drawPx` CSS pixels wide, best first: the server's small
  // `thumb_url` when it covers the drawn size, then the full `avatar_url`. No profile yet: the server's
  // avatar is a generated placeholder too; drawing the initials here saves an image request per person.
  function avatarSources(p, drawPx) {
    if (!p || p.has_profile === false) return [];
    const full = safeUrl(p.avatar_url), thumb = safeUrl(p.thumb_url);
    const out = [];
    if (thumb && drawPx * (window.devicePixelRatio || 1) <= THUMB_PX) out.push(thumb);
    if (full && full !== thumb) out.push(full);
    return out;
  }

  // Face = coloured disc with initials underneath an <img>; a failed thumbnail falls back to the full
  // avatar, a failed avatar is removed so the generated one shows (never a broken-image icon).
  function fillFace(face, p, drawPx = Infinity) {
    face.style.setProperty('--c', colourFor(p.id || p.person_id || p.display_name));
    let ini = face.querySelector('.ini');
    if (!ini) { ini = el('span', 'ini'); face.appendChild(ini); }
    ini.textContent = initials(p.display_name);
    const srcs = avatarSources(p, drawPx);
    let img = face.querySelector('img');
    if (!srcs.length) { if (img) img.remove(); face.classList.add('noimg'); return; }
    if (img && img.dataset.primary === srcs[0] && !face.classList.contains('noimg')) return;
    face.classList.remove('noimg');
    if (!img) {
      img = document.createElement('img');
      img.alt = '';
      img.decoding = 'async';
      img.draggable = false;
      face.appendChild(img);
    }
    img.dataset.primary = srcs[0];
    img.dataset.fallback = srcs[1] || '';
    img.src = srcs[0];
  }
  // image errors do not bubble; catch them in the capture phase for the whole document.
  document.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t.tagName === 'IMG' && t.parentElement && t.parentElement.classList.contains('face')) {
      if (t.dataset.fallback) { const next = t.dataset.fallback; t.dataset.fallback = ''; t.src = next; return; }
      t.parentElement.classList.add('noimg');
      t.remove();
    }
  }, true);

  // ---------------------------------------------------------------- participants
  /** A DOM avatar (grid cell or stage slot): {node, face, name, badge}. */
  function makeView(cls) {
    const node = el('div', cls);
    node.setAttribute('role', 'button');
    const face = el('div', 'face');
    const name = el('div', 'name');
    node.append(face, name);
    return { node, face, name, badge: null };
  }
  function fillView(v, rec, drawPx) {
    const p = rec.p;
    v.node.dataset.pid = p.id;
    fillFace(v.face, p, drawPx);
    if (v.name.textContent !== (p.display_name || '')) v.name.textContent = p.display_name || '';
    v.node.title = p.display_name || '';
    v.node.setAttribute('aria-label', p.display_name || '');
    v.node.classList.toggle('speaking', !!rec.speaking);
    paintBadge(v, rec);
  }
  // The grid's DOM avatar is made only when the grid mode shows it (a big room draws on a canvas).
  function gridFacePx() { const c = (S.layout && S.layout.cell) || 120; return c * (c >= NAMED_MIN_CELL ? 0.72 : 0.86); }
  function ensureView(rec, animate) {
    if (rec.view) return rec.view;
    rec.view = makeView('av');
    fillView(rec.view, rec, gridFacePx());
    if (animate) {
      rec.view.node.classList.add('enter');
      const node = rec.view.node;
      setTimeout(() => node.classList.remove('enter'), 900);
    }
    return rec.view;
  }
  function dropView(rec) {
    if (!rec.view) return;
    rec.view.node.remove();
    rec.view = null;
    rec.row = -1; rec.col = -1;
  }

  function upsertParticipant(p, animate, skipScan) {
    if (!p || !p.id) return;
    let rec = S.people.get(p.id);
    const avatarChanged = rec && (rec.p.avatar_url !== p.avatar_url || rec.p.thumb_url !== p.thumb_url || rec.p.has_profile !== p.has_profile);
    if (!rec) {
      rec = { p, view: null, tile: null, x: NaN, y: NaN, idx: -1, row: -1, col: -1, msgs: new Set(), fresh: 0,
        lit: false, unplayed: 0, badgeN: '', badgeD: '', latestAt: '', speaking: false, freshUntil: 0 };
      S.people.set(p.id, rec);
      S.order.push(p.id);
      // the DOM avatar (grid mode) or the tile (big room) is made by the next layout
      rec.enter = !!animate;
      if (animate) rec.freshUntil = performance.now() + 1500;
    }
    rec.p = p;
    if (avatarChanged) dropTile(rec);
    if (rec.view) fillView(rec.view, rec, gridFacePx());
    if (M.on && rec.idx >= 0 && avatarChanged) drawTile(rec, true);
    if (M.on) { const slot = stageSlotOf(p.id); if (slot) fillView(slot.view, rec, ST.cell * 0.72); }
    if (!skipScan) {
      // messages that arrived before their participant
      for (const msg of S.messages.values()) if (msg.participant_id === p.id) rec.msgs.add(msg.id);
      updateBadge(rec);
    }
  }

  function removeParticipant(id) {
    const rec = S.people.get(id);
    if (!rec) return;
    S.people.delete(id);
    S.lit.delete(id);
    const i = S.order.indexOf(id);
    if (i >= 0) S.order.splice(i, 1);
    dropView(rec);
    dropTile(rec);
    rec.idx = -1;
    M.dirty = true;                        // everyone after them moves up one tile
    scheduleStage();
    scheduleLayout();
  }

  function computeBadge(rec) {
    let unplayed = 0, latest = null, fetching = false;
    for (const mid of rec.msgs) {
      const msg = S.messages.get(mid);
      if (!msg) continue;
      if (msg.status === 'failed') continue;
      if ((msg.played_count || 0) > 0) continue;
      if (msg.kind !== 'voice' && msg.kind !== 'video') continue;
      unplayed++;
      if (msg.status === 'fetching') fetching = true;
      if (!latest || String(msg.received_at || '') >= String(latest.received_at || '')) latest = msg;
    }
    rec.unplayed = unplayed;
    rec.lit = unplayed > 0;
    rec.latestAt = latest ? String(latest.received_at || '') : '';
    rec.badgeN = String(unplayed);
    rec.badgeD = fetching && latest && latest.status === 'fetching' ? '…' : fmtDur(latest && latest.duration_ms);
  }

  function paintBadge(v, rec) {
    v.node.classList.toggle('lit', rec.lit);
    if (!rec.lit) {
      if (v.badge) { v.badge.remove(); v.badge = null; }
      return;
    }
    if (!v.badge) {
      v.badge = el('span', 'badge');
      v.badge.innerHTML = '<b class="n"></b><span class="d"></span>';
      v.face.appendChild(v.badge);
    }
    const nEl = v.badge.firstChild, dEl = v.badge.lastChild;
    if (nEl.textContent !== rec.badgeN) nEl.textContent = rec.badgeN;
    if (dEl.textContent !== rec.badgeD) dEl.textContent = rec.badgeD;
    v.badge.dataset.count = rec.badgeN;
  }

  function updateBadge(rec) {
    const was = rec.lit;
    computeBadge(rec);
    if (rec.lit) S.lit.add(rec.p.id); else S.lit.delete(rec.p.id);
    if (rec.view) paintBadge(rec.view, rec);
    if (M.on) {
      const slot = stageSlotOf(rec.p.id);
      if (slot) paintBadge(slot.view, rec);
      if (was !== rec.lit) {
        if (rec.idx >= 0) drawTile(rec, true);
        scheduleStage();
      }
    }
  }

  function markFresh(rec) {
    const nodes = [rec.view && rec.view.node, M.on && stageSlotOf(rec.p.id) && stageSlotOf(rec.p.id).view.node].filter(Boolean);
    for (const n of nodes) n.classList.add('fresh');
    clearTimeout(rec.fresh);
    rec.fresh = setTimeout(() => { for (const n of nodes) n.classList.remove('fresh'); }, FRESH_MS);
  }

  function setSpeaking(pid, on) {
    const rec = S.people.get(pid);
    if (rec) {
      rec.speaking = on;
      if (rec.view) rec.view.node.classList.toggle('speaking', on);
      if (M.on && rec.idx >= 0) drawTile(rec, true);
    }
    const slot = M.on && stageSlotOf(pid);
    if (slot) slot.view.node.classList.toggle('speaking', on);
    scheduleStage();
  }

  // ---------------------------------------------------------------- messages
  function upsertMessage(msg, isNew) {
    if (!msg || !msg.id) return;
    const prev = S.messages.get(msg.id);
    S.messages.set(msg.id, msg);
    const rec = S.people.get(msg.participant_id);
    if (rec) {
      rec.msgs.add(msg.id);
      updateBadge(rec);
      if (isNew && !prev) markFresh(rec);
    }
    if (isNew && !prev && (msg.kind === 'text' || msg.kind === 'image')) showBubble(msg);
    if (S.playback && S.playback.message_id === msg.id) fillSpotlightMessage(msg);
  }

  function showBubble(msg) {
    const rec = S.people.get(msg.participant_id);
    const b = el('div', 'bubble');
    const face = el('div', 'face small');
    fillFace(face, rec ? rec.p : { id: msg.participant_id, display_name: '?' });
    const body = el('div', 'bubble-body');
    body.appendChild(el('div', 'bubble-name', rec ? rec.p.display_name : ''));
    if (msg.kind === 'image' && safeUrl(msg.media_url)) {
      const img = el('img', 'bubble-img');
      img.alt = '';
      img.src = safeUrl(msg.media_url);
      img.onerror = () => img.remove();
      body.appendChild(img);
    }
    const text = String(msg.text || msg.transcript || '').slice(0, 140);
    if (text) body.appendChild(el('div', 'bubble-text', text));
    b.append(face, body);
    bubbles.appendChild(b);
    while (bubbles.children.length > MAX_BUBBLES) bubbles.firstChild.remove();
    setTimeout(() => { b.classList.add('out'); setTimeout(() => b.remove(), 600); }, BUBBLE_MS);
  }

  // ---------------------------------------------------------------- layout
  function fitGrid(n, w, h, maxCell) {
    let best = { cell: 0, cols: 1 };
    for (let cols = 1; cols <= n; cols++) {
      const rows = Math.ceil(n / cols);
      const cell = Math.min(w / cols, h / rows);
      if (cell > best.cell) best = { cell, cols };
      if (w / cols < best.cell) break;            // more columns only shrink cells
    }
    const capped = best.cell > maxCell;
    const cell = Math.max(8, Math.min(Math.floor(best.cell), Math.floor(maxCell)));
    let cols;
    if (capped) {
      // few people: balanced rows (12 -> 4 x 3, not 5 + 5 + 2)
      const rows = Math.ceil(n / best.cols);
      cols = Math.ceil(n / rows);
    } else {
      cols = Math.max(1, Math.min(n, Math.floor(w / cell)));
    }
    return { cell, cols, capacity: cols * Math.max(1, Math.floor(h / cell)) };
  }

  function computeFrame() {
    const W = window.innerWidth, H = window.innerHeight;
    const vmin = Math.min(W, H);
    const theme = (S.wall && S.wall.theme) || {};
    const pct = Number.isFinite(+theme.safe_margin_pct) ? Math.max(0, Math.min(20, +theme.safe_margin_pct)) : 3;
    const mg = Math.round(vmin * pct / 100);
    const n = S.order.length;
    const idle = n === 0;
    const portrait = H > W * 1.1;
    const headerH = Math.round(vmin * 0.105);
    const gap = Math.round(vmin * 0.03);
    const pad = Math.round(vmin * 0.03);
    let mode, q, panelRect, area;
    if (idle) {
      if (portrait) {
        mode = 'idle-column';
        q = Math.round(Math.min(W - 2 * mg - 2 * pad, vmin * 0.62));
        const pw = Math.min(W - 2 * mg, q + 2 * pad);
        const ph = Math.min(H - 2 * mg - headerH, q + vmin * 0.48);
        panelRect = { x: (W - pw) / 2, y: mg + headerH + (H - 2 * mg - headerH - ph) / 2, w: pw, h: ph };
      } else {
        mode = 'idle-row';
        q = Math.round(Math.min(vmin * 0.5, H - 2 * mg - headerH - 2 * pad));
        const pw = Math.min(W - 2 * mg, q + 2 * pad + Math.max(vmin * 0.62, (W - 2 * mg) * 0.36));
        const ph = q + 2 * pad;
        panelRect = { x: (W - pw) / 2, y: mg + headerH + (H - 2 * mg - headerH - ph) / 2, w: pw, h: ph };
      }
      area = { x: mg, y: mg + headerH, w: W - 2 * mg, h: H - 2 * mg - headerH };
    } else if (portrait) {
      mode = 'row';
      q = Math.round(Math.max(vmin * 0.34, Math.min(vmin * 0.4, H * 0.26)));
      const ph = q + 2 * pad;
      panelRect = { x: mg, y: H - mg - ph, w: W - 2 * mg, h: ph };
      area = { x: mg, y: mg + headerH, w: W - 2 * mg, h: H - 2 * mg - headerH - ph - gap };
    } else {
      mode = 'column';
      q = Math.round(vmin * 0.36);
      const pw = Math.round(q + 2 * pad);
      panelRect = { x: W - mg - pw, y: mg, w: pw, h: H - 2 * mg };
      area = { x: mg, y: mg + headerH, w: W - 2 * mg - pw - gap, h: H - 2 * mg - headerH };
    }
    area.w = Math.max(40, area.w); area.h = Math.max(40, area.h);
    return { W, H, vmin, mg, n, idle, portrait, mode, q, pad, headerH, gap, panelRect, area };
  }

  let layoutQueued = false;
  let panelAnimTimer = 0;
  function scheduleLayout() {
    if (layoutQueued) return;
    layoutQueued = true;
    requestAnimationFrame(() => { layoutQueued = false; layout(); });
  }

  function px(v) { return `${Math.round(v)}px`; }
  function pos(e, x, y) { e.style.left = `${x}px`; e.style.top = `${y}px`; }

  function layout() {
    const f = computeFrame();
    const prev = S.layout;
    const n = f.n;
    const rs = document.documentElement.style;

    // frame (only when it changed)
    const frameKey = [f.W, f.H, f.mode, f.q, f.mg].join();
    if (!prev || prev.frameKey !== frameKey) {
      // the QR panel glides only when the wall goes from idle to busy (or back), not on resizes
      if (prev && prev.f.mode !== f.mode && !app.classList.contains('booting')) {
        app.classList.add('panel-anim');
        clearTimeout(panelAnimTimer);
        panelAnimTimer = setTimeout(() => app.classList.remove('panel-anim'), 1000);
      }
      app.dataset.mode = f.mode;
      app.classList.toggle('idle', f.idle);
      app.classList.toggle('portrait', f.portrait);
      rs.setProperty('--vmin', `${f.vmin / 100}px`);
      rs.setProperty('--mg', px(f.mg));
      rs.setProperty('--qr', px(f.q));
      rs.setProperty('--pad', px(f.pad));
      Object.assign(panel.style, { left: px(f.panelRect.x), top: px(f.panelRect.y), width: px(f.panelRect.w), height: px(f.panelRect.h) });
      Object.assign(header.style, { left: px(f.mg), top: px(f.mg), width: px(f.mode === 'column' ? f.area.w : f.W - 2 * f.mg), height: px(f.headerH) });
      Object.assign(grid.style, { left: px(f.area.x), top: px(f.area.y), width: px(f.area.w), height: px(f.area.h) });
      Object.assign(bubbles.style, { left: px(f.area.x), top: px(f.area.y), width: px(f.area.w), height: px(f.area.h) });
    }

    // Readable faces: the DOM grid. Below READABLE_FRAC of the short side: the big room (stage + mosaic),
    // with a little hysteresis so a crowd at the threshold does not flip back and forth.
    const maxCell = f.vmin * 0.24;
    const ideal = n > 0 ? fitGrid(n, f.area.w, f.area.h, maxCell) : null;
    const room = !!ideal && ideal.cell < f.vmin * READABLE_FRAC * (M.on ? 1.1 : 1);
    const switched = room !== M.on;
    if (switched) switchMode(room);
    if (room) layoutRoom(f, frameKey, prev);
    else layoutGrid(f, frameKey, switched ? null : prev, ideal, maxCell);
    if (!prev || prev.frameKey !== frameKey || switched || (room && prev.stageKey !== S.layout.stageKey)) layoutSpotlight(S.layout.f);
    updateCounts();
  }

  function layoutGrid(f, frameKey, prev, ideal, maxCell) {
    const n = f.n;
    // grid: keep the current cell size while it still fits and is not much too small
    const big = n > 40;
    let g = prev && prev.grid && !prev.room && prev.frameKey === frameKey ? prev.grid : null;
    if (n > 0) {
      const keep = g && big && g.capacity >= n && g.cell <= ideal.cell * 1.0 && g.cell >= ideal.cell * 0.9 && g.big;
      if (!keep) {
        if (big) {
          // leave ~6 % spare capacity so a growing crowd doesn't re-flow on every join
          const target = Math.ceil(n * 1.06) + 2;
          g = fitGrid(target, f.area.w, f.area.h, maxCell);
        } else {
          g = ideal;
        }
        g.big = big;
      }
    } else {
      g = { cell: 0, cols: 1, capacity: 0, big: false };
    }
    const cell = g.cell;
    const cols = Math.max(1, g.cols);
    const rowsUsed = n ? Math.ceil(n / cols) : 0;
    // for big crowds, centre the block of capacity (stable); for small ones centre what is used
    const rowsForCentre = g.big ? Math.min(Math.floor(f.area.h / Math.max(1, cell)), Math.ceil(g.capacity / cols)) : rowsUsed;
    const usedCols = g.big ? cols : Math.min(n, cols);
    const baseX = Math.max(0, Math.floor((f.area.w - usedCols * cell) / 2));
    const offY = Math.max(0, Math.floor((f.area.h - rowsForCentre * cell) / 2));
    const cellChanged = !prev || prev.grid.cell !== cell;
    const geomChanged = cellChanged || !prev || prev.cols !== usedCols || prev.offX !== baseX || prev.offY !== offY || prev.big !== g.big;

    // The crowd is ONE flex-wrap box: avatars are in normal flow (no per-avatar positioning, clip or
    // transform), so hundreds of them paint as one chunk and a join is a cheap append. Re-flows glide
    // with FLIP (Web Animations on transform) for the avatars that actually moved.
    const flipAll = geomChanged || n <= 400;
    const oldPos = flipAll ? new Map() : null;
    if (flipAll) for (const rec of S.people.values()) if (!Number.isNaN(rec.x)) oldPos.set(rec, [rec.x, rec.y, prev ? prev.cell : cell]);
    if (geomChanged) {
      crowd.style.setProperty('--cell', px(cell));
      grid.style.setProperty('--cell', px(cell));
      Object.assign(crowd.style, { left: px(baseX), top: px(offY), width: px(usedCols * cell) });
      crowd.classList.toggle('big', !!g.big);
      grid.classList.toggle('named', cell >= NAMED_MIN_CELL);
      grid.classList.toggle('tiny', cell > 0 && cell < 44);
    }
    // Rows: every row of avatars is its own small stacking context (cached paint), so a join
    // repaints one row, not every avatar. Positions are computed, never read back from layout.
    let moved = 0;
    const animateMoves = !!prev && prev.cell > 0 && !app.classList.contains('booting');
    const dirtyRows = new Set();
    const facePx = cell * (cell >= NAMED_MIN_CELL ? 0.72 : 0.86);
    for (let i = 0; i < n; i++) {
      const rec = S.people.get(S.order[i]);
      const fresh = !rec.view;
      const v = ensureView(rec, rec.enter && !!prev);
      rec.enter = false;
      if (cellChanged && !fresh) fillFace(v.face, rec.p, facePx);   // thumbnail or full avatar for the new size
      const r = Math.floor(i / cols), c = i % cols;
      let x = c * cell;
      if (!g.big && r === rowsUsed - 1) x += Math.floor(((usedCols - (n - r * cols)) * cell) / 2);
      const y = r * cell;
      if (rec.row !== r || rec.col !== c) dirtyRows.add(r);
      rec.row = r; rec.col = c;
      const old = oldPos && oldPos.get(rec);
      if (old && animateMoves) {
        const dx = old[0] + prev.offX - (x + baseX), dy = old[1] + prev.offY - (y + offY);
        const k = old[2] / Math.max(1, cell);
        if (Math.abs(dx) >= 0.5 || Math.abs(dy) >= 0.5 || Math.abs(k - 1) >= 0.01) {
          moved++;
          v.node.animate([{ transform: `translate(${dx}px,${dy}px) scale(${k})` }, { transform: 'none' }],
            { duration: GLIDE_MS, easing: 'cubic-bezier(0.2, 0.8, 0.2, 1)' });
        }
      }
      rec.x = x; rec.y = y;
    }
    const nRows = rowsUsed;
    while (rowEls.length < nRows) { const row = el('div', 'row'); rowEls.push(row); crowd.appendChild(row); }
    while (rowEls.length > nRows) rowEls.pop().remove();
    if (rowEls.length && !dirtyRows.size && rowEls[rowEls.length - 1].childElementCount !== n - (nRows - 1) * cols) dirtyRows.add(nRows - 1);
    for (const r of dirtyRows) {
      const row = rowEls[r];
      const want = S.order.slice(r * cols, Math.min(n, (r + 1) * cols)).map((id) => S.people.get(id).view.node);
      const have = row.children;
      let prefix = 0;
      while (prefix < have.length && prefix < want.length && have[prefix] === want[prefix]) prefix++;
      if (prefix === have.length) { for (let j = prefix; j < want.length; j++) row.appendChild(want[j]); }
      else row.replaceChildren(...want);
    }
    if (moved || dirtyRows.size) S.lastLayoutChange = performance.now();

    S.layout = { frameKey, grid: g, f, cell, cols: usedCols, rows: rowsUsed, offX: baseX, offY, big: g.big, room: false, stageKey: '' };
  }

  // ---------------------------------------------------------------- the big room: stage + mosaic
  const mctx = mosaicEl.getContext('2d');
  const TAU = Math.PI * 2;
  // mosaic geometry (CSS px, relative to the grid area) and state
  const M = { on: false, y: 0, w: 0, h: 0, cell: 0, cols: 1, capacity: 0, offX: 0, offY: 0, dpr: 1, key: '', dirty: true };
  // avatar tiles waiting for fetch+decode (a FIFO with a moving head: thousands are queued on first load)
  const tiles = { queue: [], head: 0, inFlight: 0, pending: 0 };
  // stage: a few big faces; slots keep their place, their occupant changes
  const ST = { cell: 0, k: 0, slots: [], queued: false, timer: 0 };

  function switchMode(room) {
    M.on = room;
    app.classList.toggle('big-room', room);
    stageEl.hidden = !room;
    mosaicEl.hidden = !room;
    crowd.hidden = room;
    if (room) {
      // the grid's DOM avatars go; the mosaic draws everyone
      crowd.replaceChildren();
      rowEls.length = 0;
      for (const rec of S.people.values()) { dropView(rec); rec.x = NaN; rec.y = NaN; }
      grid.classList.remove('named', 'tiny');
      M.key = '';
      M.dirty = true;
    } else {
      for (const s of ST.slots) s.view.node.remove();
      ST.slots = []; ST.k = 0;
      for (const rec of S.people.values()) { dropTile(rec); rec.idx = -1; }
      mosaicEl.width = 1; mosaicEl.height = 1;
    }
    S.lastLayoutChange = performance.now();
  }

  function layoutRoom(f, frameKey, prev) {
    const n = f.n;
    const a = f.area;
    // stage: one row of big named faces across the top of the area
    const sCell = Math.floor(Math.min(a.h * 0.25, f.vmin * 0.24, a.w / 3));
    const k = Math.max(1, Math.min(10, Math.floor(a.w / sCell)));
    const sGap = Math.round(f.vmin * 0.02);
    const stageKey = [frameKey, sCell, k].join();
    if (!prev || prev.stageKey !== stageKey) {
      ST.cell = sCell;
      stageEl.style.setProperty('--cell', px(sCell));
      Object.assign(stageEl.style, { left: px(Math.floor((a.w - k * sCell) / 2)), top: '0px', width: px(k * sCell), height: px(sCell) });
      while (ST.slots.length < k) { const view = makeView('av stage-av'); stageEl.appendChild(view.node); ST.slots.push({ pid: null, since: 0, view }); }
      while (ST.slots.length > k) ST.slots.pop().view.node.remove();
      ST.k = k;
      for (const s of ST.slots) { const rec = s.pid && S.people.get(s.pid); if (rec) fillView(s.view, rec, sCell * 0.72); }
    }
    // mosaic: everyone, in join order, below the stage
    const my = sCell + sGap, mw = a.w, mh = Math.max(10, a.h - my);
    const readable = f.vmin * READABLE_FRAC;
    const ideal = fitMosaic(n, mw, mh, readable);
    const keep = M.key.startsWith(`${stageKey}|`) && M.capacity >= n && M.cell >= ideal.cell * 0.9;
    if (!keep) {
      // ~6 % spare capacity: a growing crowd re-lays the mosaic every few dozen joins, not on every one
      const g = fitMosaic(Math.ceil(n * 1.06) + 2, mw, mh, readable);
      const cell = g.cell;
      const cols = g.cols;
      const rows = Math.max(1, Math.floor(mh / cell + 1e-6));
      Object.assign(M, { y: my, w: mw, h: mh, cell, cols, capacity: cols * rows });
      M.offX = Math.floor((mw - cols * cell) / 2);
      M.offY = Math.max(0, Math.floor((mh - Math.min(rows, Math.ceil(M.capacity / cols)) * cell) / 2));
      M.key = `${stageKey}|${cell}|${cols}`;
      const dpr = window.devicePixelRatio || 1;
      M.dpr = dpr;
      Object.assign(mosaicEl.style, { left: '0px', top: px(my), width: px(mw), height: px(mh) });
      mosaicEl.width = Math.round(mw * dpr);
      mosaicEl.height = Math.round(mh * dpr);
      M.dirty = true;
    }
    // draw: everything after a re-layout or a departure, otherwise only the new tiles
    if (M.dirty) {
      mctx.setTransform(M.dpr, 0, 0, M.dpr, 0, 0);
      mctx.clearRect(0, 0, M.w, M.h);
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        const rec = S.people.get(S.order[i]);
        rec.idx = i;
        drawTile(rec, false);
        if (rec.freshUntil > now) unringLater(rec);
      }
      M.dirty = false;
    } else {
      for (let i = n - 1; i >= 0; i--) {
        const rec = S.people.get(S.order[i]);
        if (rec.idx === i) break;                // joins only append: stop at the first one already drawn
        rec.idx = i;
        drawTile(rec, true);
        if (rec.freshUntil > performance.now()) unringLater(rec);
      }
    }
    const rows = Math.ceil(n / M.cols);
    S.layout = { frameKey, f, room: true, stageKey, cell: M.cell, cols: M.cols, rows, offX: M.offX, offY: M.offY + M.y, big: true, grid: { cell: M.cell, cols: M.cols, capacity: M.capacity } };
    scheduleStage();
  }

  // Mosaic cells may be fractional (a tiny cell floored to whole pixels wastes up to a fifth of the area);
  // each tile's rectangle is snapped to whole pixels so a tile can be cleared and redrawn alone.
  function fitMosaic(n, w, h, maxCell) {
    let best = { cell: 0, cols: 1 };
    for (let cols = 1; cols <= Math.max(1, n); cols++) {
      const cell = Math.min(w / cols, h / Math.ceil(n / cols));
      if (cell > best.cell) best = { cell, cols };
      if (w / cols < best.cell) break;
    }
    if (best.cell <= maxCell && best.cell >= 3) return best;
    const cell = Math.max(3, Math.min(maxCell, best.cell));
    return { cell, cols: Math.max(1, Math.floor(w / cell + 1e-6)) };
  }
  // a newcomer's tile wears a white ring for a moment; redraw it plain afterwards
  function unringLater(rec) {
    setTimeout(() => { if (M.on && rec.idx >= 0 && S.people.get(rec.p.id) === rec) drawTile(rec, true); }, rec.freshUntil - performance.now() + 20);
  }
  function faceDiameter(cell) { return cell * 0.88; }
  /** [x, y, w, h] of tile i in mosaic coordinates, on whole pixels */
  function tileRect(i) {
    const c = i % M.cols, r = Math.floor(i / M.cols);
    const x = Math.round(M.offX + c * M.cell), y = Math.round(M.offY + r * M.cell);
    return [x, y, Math.round(M.offX + (c + 1) * M.cell) - x, Math.round(M.offY + (r + 1) * M.cell) - y];
  }

  /** Draw one participant's tile on the mosaic (its bitmap, or a coloured disc while it loads / if it has none). */
  function drawTile(rec, clear) {
    const [x, y, w, h] = tileRect(rec.idx);
    const c = Math.min(w, h), d = faceDiameter(c), o = (c - d) / 2;
    const g = mctx;
    if (clear) g.clearRect(x, y, w, h);
    const t = rec.tile;
    const need = Math.ceil(d * M.dpr);
    if (t && t.bmp) g.drawImage(t.bmp, x + o, y + o, d, d);
    else {
      g.fillStyle = colourFor(rec.p.id || rec.p.person_id || rec.p.display_name);
      g.beginPath(); g.arc(x + c / 2, y + c / 2, d / 2, 0, TAU); g.fill();
      if (c >= 28) {
        g.fillStyle = 'rgba(255,255,255,0.95)';
        g.font = `800 ${Math.round(c * 0.34)}px sans-serif`;
        g.textAlign = 'center'; g.textBaseline = 'middle';
        g.fillText(initials(rec.p.display_name), x + c / 2, y + c / 2);
      }
    }
    if (!t || (t.state !== 'loading' && t.state !== 'none-available' && (!t.bmp || t.px < need * 0.75))) wantTile(rec, need);
    const ring = rec.speaking ? 0.13 : rec.lit ? 0.09 : rec.freshUntil > performance.now() ? 0.07 : 0;
    if (ring) {
      const lw = Math.max(1.5, c * ring);
      g.lineWidth = lw;
      g.strokeStyle = rec.speaking || rec.lit ? accentColour() : '#ffffff';
      g.beginPath(); g.arc(x + c / 2, y + c / 2, c / 2 - lw / 2, 0, TAU); g.stroke();
    }
  }

  function dropTile(rec) {
    const t = rec.tile;
    if (!t) return;
    release(t.bmp);
    if (t.state === 'loading') tiles.pending--;   // its job is dropped when it finishes (generation changed)
    rec.tile = null;
  }

  // Ask for the tile at `need` device pixels (rounded up to a multiple of 16, so a small re-layout
  // reuses the bitmap; a bitmap down to 3/4 of the need is drawn as is).
  function wantTile(rec, need) {
    const px = Math.max(16, Math.ceil(need / 16) * 16);
    const srcs = avatarSources(rec.p, px / M.dpr);
    const t = rec.tile || (rec.tile = { bmp: null, px: 0, state: 'none', gen: 0 });
    if (!srcs.length) { t.state = 'none-available'; return; }
    t.state = 'loading';
    t.gen++;
    tiles.pending++;
    tiles.queue.push({ rec, tile: t, gen: t.gen, px, srcs });
    pumpTiles();
  }

  function pumpTiles() {
    while (tiles.inFlight < TILE_CONCURRENCY && tiles.head < tiles.queue.length) {
      const job = tiles.queue[tiles.head];
      tiles.queue[tiles.head++] = null;
      if (tiles.head > 1024 && tiles.head * 2 > tiles.queue.length) { tiles.queue = tiles.queue.slice(tiles.head); tiles.head = 0; }
      if (job.rec.tile !== job.tile || job.tile.gen !== job.gen) continue;     // dropped or re-asked meanwhile
      tiles.inFlight++;
      loadTile(job).finally(() => { tiles.inFlight--; pumpTiles(); });
    }
  }

  async function loadTile(job) {
    let bmp = null;
    for (const src of job.srcs) {
      try { bmp = await bakeTile(src, job.px); break; } catch (_) { /* next source, then initials */ }
    }
    const t = job.tile;
    if (job.rec.tile !== t || t.gen !== job.gen) { release(bmp); return; }
    tiles.pending--;
    release(t.bmp);
    t.bmp = bmp;
    t.px = bmp ? job.px : 0;
    t.state = bmp ? 'image' : 'none-available';
    if (M.on && job.rec.idx >= 0 && S.people.get(job.rec.p.id) === job.rec) drawTile(job.rec, true);
  }

  // Fetch an avatar and decode it at the size it is drawn (off the main thread), masked to a circle once.
  // Engines without createImageBitmap resize options or OffscreenCanvas (older WebKitGTK in the kiosk
  // shell) still get tiles: a full-size decode, and a plain canvas as the tile.
  async function bakeTile(src, px) {
    const r = await fetch(src);
    if (!r.ok) throw new Error(`avatar ${r.status}`);
    const blob = await r.blob();
    const img = typeof createImageBitmap === 'function'
      ? await createImageBitmap(blob, { resizeWidth: px, resizeQuality: 'medium' })
      : await imageOf(blob);
    try {
      const off = typeof OffscreenCanvas === 'function';
      const c = off ? new OffscreenCanvas(px, px) : Object.assign(document.createElement('canvas'), { width: px, height: px });
      const g = c.getContext('2d');
      g.beginPath(); g.arc(px / 2, px / 2, px / 2, 0, TAU); g.clip();
      const w = img.naturalWidth || img.width, h = img.naturalHeight || img.height;
      const s = Math.min(w, h);                              // cover: centre-crop the longer side
      g.drawImage(img, (w - s) / 2, (h - s) / 2, s, s, 0, 0, px, px);
      return off && c.transferToImageBitmap ? c.transferToImageBitmap() : c;
    } finally { release(img); }
  }
  function imageOf(blob) {
    const url = URL.createObjectURL(blob);
    const i = new Image();
    i.src = url;
    return i.decode().then(() => i, (err) => { throw err; }).finally(() => URL.revokeObjectURL(url));
  }
  function release(b) { if (b && typeof b.close === 'function') b.close(); }

  mosaicEl.addEventListener('click', (e) => {
    const r = mosaicEl.getBoundingClientRect();
    const cx = Math.floor((e.clientX - r.left - M.offX) / M.cell), cy = Math.floor((e.clientY - r.top - M.offY) / M.cell);
    if (cx < 0 || cx >= M.cols || cy < 0) return;
    const pid = S.order[cy * M.cols + cx];
    if (pid) requestPlay(pid);
  });

  function stageSlotOf(pid) {
    for (const s of ST.slots) if (s.pid === pid) return s;
    return null;
  }
  function scheduleStage() {
    if (ST.queued || !M.on) return;
    ST.queued = true;
    requestAnimationFrame(() => { ST.queued = false; refreshStage(); });
  }

  /** Who deserves the stage, best first: the speaker, people with new messages (latest first), the newest. */
  function stageWant() {
    const out = [];
    const seen = new Set();
    const add = (pid) => { if (pid && !seen.has(pid) && S.people.has(pid)) { seen.add(pid); out.push(pid); } };
    if (S.playback) add(S.playback.participant_id);
    const lit = [...S.lit].map((id) => S.people.get(id)).filter(Boolean);
    lit.sort((x, y) => (x.latestAt < y.latestAt ? 1 : x.latestAt > y.latestAt ? -1 : 0));
    for (const rec of lit.slice(0, ST.k)) add(rec.p.id);
    for (let i = S.order.length - 1; i >= 0 && out.length < ST.k * 2; i--) add(S.order[i]);
    return out;
  }

  function refreshStage() {
    if (!M.on || !ST.k) return;
    const now = performance.now();
    const want = stageWant();
    const rank = new Map(want.map((pid, i) => [pid, i]));
    const speaker = S.playback && S.playback.participant_id;
    for (const s of ST.slots) if (s.pid && !S.people.has(s.pid)) s.pid = null;
    const shown = new Set(ST.slots.map((s) => s.pid).filter(Boolean));
    let nextDue = Infinity;
    for (const pid of want) {
      if (shown.has(pid)) continue;
      const r = rank.get(pid);
      // an empty slot, else the lowest-ranked occupant whose dwell has run out (the speaker does not wait)
      let best = null, bestRank = -1;
      for (const s of ST.slots) {
        if (!s.pid) { best = s; break; }
        if (s.pid === speaker) continue;
        const sr = rank.has(s.pid) ? rank.get(s.pid) : Infinity;
        if (sr <= r) continue;
        if (pid !== speaker && now - s.since < STAGE_DWELL_MS) { nextDue = Math.min(nextDue, s.since + STAGE_DWELL_MS); continue; }
        if (sr > bestRank || (sr === bestRank && s.since < best.since)) { best = s; bestRank = sr; }
      }
      if (!best) continue;
      if (best.pid) shown.delete(best.pid);
      shown.add(pid);
      best.pid = pid;
      best.since = now;
      const rec = S.people.get(pid);
      fillView(best.view, rec, ST.cell * 0.72);
      best.view.face.animate([{ transform: 'scale(0.2)', opacity: 0 }, { transform: 'scale(1.08)', opacity: 1, offset: 0.6 }, { transform: 'none', opacity: 1 }],
        { duration: 700, easing: 'cubic-bezier(0.2, 1.4, 0.4, 1)' });
    }
    for (const s of ST.slots) {
      s.view.node.hidden = !s.pid;
      if (s.pid) s.view.node.classList.toggle('speaking', s.pid === speaker);
    }
    clearTimeout(ST.timer);
    if (nextDue < Infinity) ST.timer = setTimeout(scheduleStage, Math.max(50, nextDue - now + 10));
  }

  function layoutSpotlight(f) {
    // in the big room the spotlight covers the mosaic and leaves the stage of big faces in view
    const a = M.on ? { x: f.area.x, y: f.area.y + M.y, w: M.w, h: M.h } : f.area;
    const w = Math.min(a.w * 0.9, f.vmin * 1.35);
    const h = Math.min(a.h * 0.78, f.vmin * 0.56);
    Object.assign(spot.style, { left: px(a.x + (a.w - w) / 2), top: px(a.y + (a.h - h) / 2), width: px(w), height: px(h) });
    if (!spot.hidden) sizeWave();
  }

  function updateCounts() {
    const n = S.order.length;
    const t = S.strings;
    const num = $('count-num');
    if (num.textContent !== String(n)) num.textContent = String(n);
    const label = t.joined(n);
    const lab = $('count-label');
    if (lab.textContent !== label) lab.textContent = label;
  }

  // ---------------------------------------------------------------- wall info, theme, QR
  function applyWall(st) {
    S.wall = { id: st.id, title: st.title, locale: st.locale, theme: st.theme || {}, join: st.join || {}, demo: !!st.demo };
    const zh = isZh();
    S.strings = zh ? STR.zh : STR.en;
    document.documentElement.lang = zh ? 'zh-CN' : 'en';
    document.title = st.title ? `${st.title} — Voicewall` : 'Voicewall';
    $('title').textContent = st.title || '';
    $('demo').hidden = !st.demo;
    app.classList.toggle('is-demo', !!st.demo);
    $('qr-primary').textContent = S.strings.scan;
    $('qr-secondary').textContent = S.strings.scanOther;
    $('instructions').textContent = (st.join && st.join.instructions) || '';
    $('cta').textContent = S.strings.cta;
    statusEl.querySelector('#status-text').textContent = S.everConnected ? S.strings.reconnecting : S.strings.connecting;
    applyTheme(S.wall.theme);
    const q = safeUrl(st.join && st.join.qr_svg_url);
    if (q && qrImg.getAttribute('src') !== q) qrImg.src = q;
    // the operator can hide the join QR (e.g. during a speech)
    panel.hidden = st.qr_visible === false;
  }

  function applyTheme(theme) {
    const rs = document.documentElement.style;
    const bg = typeof theme.background === 'string' && theme.background ? theme.background : '';
    if (bg) rs.setProperty('--bg', bg); else rs.removeProperty('--bg');
    if (theme.accent) rs.setProperty('--accent', theme.accent); else rs.removeProperty('--accent');
    const img = safeUrl(theme.background_image);
    if (img) rs.setProperty('--bg-image', `url("${img.replace(/["\\\n]/g, '')}")`); else rs.removeProperty('--bg-image');
    app.classList.toggle('has-bg-image', !!img);
    accentCache = '';
  }

  function bumpQr(joinUrl) {
    if (S.wall && S.wall.join) S.wall.join.url = joinUrl || S.wall.join.url;
    const cur = qrImg.getAttribute('src') || (S.wall && S.wall.join && S.wall.join.qr_svg_url) || `${api}/qr.svg`;
    let next;
    try {
      const u = new URL(cur, location.href);
      const v = parseInt(u.searchParams.get('v') || '0', 10);
      u.searchParams.set('v', String((Number.isFinite(v) ? v : 0) + 1) + '.' + Date.now().toString(36));
      next = u.pathname + u.search;
    } catch (_) { next = `${api}/qr.svg?v=${Date.now()}`; }
    // swap only once the new QR has loaded, so the panel never shows an empty frame
    const pre = new Image();
    pre.onload = () => { qrImg.src = next; };
    pre.onerror = () => { qrImg.src = next; };
    pre.src = next;
  }

  // ---------------------------------------------------------------- spotlight
  let rafOn = false;
  let hideTimer = 0;

  function sizeWave() {
    const r = wave.getBoundingClientRect();
    const dpr = Math.min(2, window.devicePixelRatio || 1);
    const w = Math.max(10, Math.round(r.width * dpr)), h = Math.max(10, Math.round(r.height * dpr));
    if (wave.width !== w || wave.height !== h) { wave.width = w; wave.height = h; }
  }

  // Waveforms are not in the state or the events: fetched once per message when it is spotlighted.
  const waveforms = new Map();
  function fetchWaveform(mid) {
    if (!mid || waveforms.has(mid)) return;
    waveforms.set(mid, null);
    fetch(`${api}/messages/${encodeURIComponent(mid)}/waveform`, { cache: 'no-store' })
      .then((r) => (r.ok ? r.json() : null))
      .then((d) => {
        if (!d || !Array.isArray(d.waveform) || !d.waveform.length) { waveforms.delete(mid); return; }
        waveforms.set(mid, d.waveform);
        if (S.playback && S.playback.message_id === mid) { waveKey = ''; drawWave((S.playback.position_ms || 0) / Math.max(1, S.playback.duration_ms || 1)); }
      })
      .catch(() => waveforms.delete(mid));
  }

  function waveformOf(msg, pid) {
    if (msg && Array.isArray(msg.waveform) && msg.waveform.length) return msg.waveform;
    const fetched = msg && waveforms.get(msg.id);
    if (fetched) return fetched;
    // No analysis yet: a calm pseudo-waveform seeded by the id, so the spotlight is never empty.
    const seed = hash(String((msg && msg.id) || pid || 'x'));
    const out = [];
    for (let i = 0; i < 100; i++) {
      const t = i / 99;
      const env = Math.sin(Math.PI * t) ** 0.6;
      out.push(0.15 + 0.6 * env * (0.5 + 0.5 * Math.abs(Math.sin(i * 0.7 + (seed % 97)) * Math.cos(i * 0.23 + (seed % 13)))));
    }
    return out;
  }

  function drawWave(progress) {
    const ctx = wave.getContext('2d');
    const W = wave.width, H = wave.height;
    ctx.clearRect(0, 0, W, H);
    const pb = S.playback;
    const msg = pb && (S.messages.get(pb.message_id) || { id: pb.message_id });
    const data = waveformOf(msg, pb && pb.participant_id);
    const n = data.length;
    const bw = W / n;
    const accent = accentColour();
    const mid = H / 2;
    const cut = progress * W;
    for (let i = 0; i < n; i++) {
      const v = Math.max(0.04, Math.min(1, +data[i] || 0));
      const bh = Math.max(2, v * (H * 0.92));
      const x = i * bw;
      ctx.fillStyle = x + bw / 2 <= cut ? accent : 'rgba(255,255,255,0.32)';
      const r = Math.max(1, bw * 0.28);
      ctx.beginPath();
      if (ctx.roundRect) ctx.roundRect(x + bw * 0.18, mid - bh / 2, bw * 0.64, bh, r);
      else ctx.rect(x + bw * 0.18, mid - bh / 2, bw * 0.64, bh);
      ctx.fill();
    }
    // live cursor
    ctx.fillStyle = '#fff';
    ctx.fillRect(Math.min(W - 3, Math.max(0, cut - 1.5)), 0, 3, H);
  }

  let accentCache = '';
  function accentColour() {
    if (!accentCache) accentCache = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#ffb020';
    return accentCache;
  }
  function tick() {
    if (!S.playback || spot.hidden) { rafOn = false; return; }
    const pb = S.playback;
    const now = performance.now();
    const dur = Math.max(1, pb.duration_ms || 1);
    // extrapolate between progress events, but never more than 400 ms ahead of the last one
    const pos = Math.min(dur, pb.position_ms + (pb.finished ? 0 : Math.min(400, now - pb.at)));
    // repaint the waveform only when its cursor moved by a device pixel (a long message moves it less
    // than one pixel per frame: no need to redraw a canvas the compositor then has to take again)
    const key = `${pb.message_id}|${wave.width}|${Math.round((pos / dur) * wave.width)}`;
    if (key !== waveKey) { waveKey = key; drawWave(pos / dur); }
    const t = `${fmtDur(pos)} / ${fmtDur(dur)}`;
    const te = $('spot-time');
    if (te.textContent !== t) te.textContent = t;
    requestAnimationFrame(tick);
  }
  let waveKey = '';
  function startTick() { if (!rafOn) { rafOn = true; requestAnimationFrame(tick); } }

  function fillSpotlightMessage(msg) {
    const kind = (msg && msg.kind) || 'voice';
    $('spot-transcript').textContent = (msg && (msg.transcript || msg.text)) || '';
    spot.classList.toggle('has-transcript', !!(msg && (msg.transcript || msg.text)));
    spotKind.dataset.kind = kind;
    spotKind.textContent = S.strings[kind] || '';
    spot.dataset.kind = kind;
  }

  function showSpotlight(pb) {
    clearTimeout(hideTimer);
    const prevPid = S.playback && S.playback.participant_id;
    S.playback = pb;
    const rec = S.people.get(pb.participant_id);
    const p = rec ? rec.p : { id: pb.participant_id, display_name: '' };
    if (prevPid && prevPid !== pb.participant_id) setSpeaking(prevPid, false);
    setSpeaking(pb.participant_id, true);
    fillFace(spotFace, p);
    $('spot-name').textContent = p.display_name || '';
    const msg = S.messages.get(pb.message_id);
    if (!msg || msg.kind === 'voice' || msg.kind === 'video') fetchWaveform(pb.message_id);
    fillSpotlightMessage(msg);
    spot.dataset.messageId = pb.message_id || '';
    spot.dataset.participantId = pb.participant_id || '';

    const isVideo = msg && msg.kind === 'video' && safeUrl(msg.media_url);
    spot.classList.toggle('video', !!isVideo);
    if (isVideo) playVideo(safeUrl(msg.media_url), pb.position_ms);
    else stopVideo();

    const wasHidden = spot.hidden;
    spot.hidden = false;
    app.classList.add('spotlit');
    if (wasHidden) { spot.classList.remove('in'); void spot.offsetWidth; spot.classList.add('in'); }
    layoutSpotlight(S.layout ? S.layout.f : computeFrame());
    sizeWave();
    drawWave((pb.position_ms || 0) / Math.max(1, pb.duration_ms || 1));
    waveKey = '';
    startTick();
  }

  function hideSpotlight(delay) {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(() => {
      const pb = S.playback;
      S.playback = null;
      if (pb) setSpeaking(pb.participant_id, false);
      stopVideo();
      app.classList.remove('spotlit');
      spot.classList.remove('in');
      spot.classList.add('out');
      setTimeout(() => { if (!S.playback) { spot.hidden = true; } spot.classList.remove('out'); }, 380);
    }, delay);
  }

  function playVideo(src, posMs) {
    if (spotVideo.getAttribute('src') !== src) {
      spotVideo.src = src;
      spotVideo.currentTime = (posMs || 0) / 1000;
    }
    spotVideo.hidden = false;
    spotVideo.muted = false;
    const pr = spotVideo.play();
    if (pr && pr.catch) {
      pr.catch(() => {
        // the kiosk shell should allow autoplay with sound; if it doesn't, at least show the picture
        S.videoBlocked = true;
        spotVideo.muted = true;
        spotVideo.play().catch(() => {});
      });
    }
  }
  function stopVideo() {
    if (!spotVideo.hidden || spotVideo.getAttribute('src')) {
      try { spotVideo.pause(); } catch (_) { /* ignore */ }
      spotVideo.removeAttribute('src');
      spotVideo.load();
      spotVideo.hidden = true;
    }
  }

  // ---------------------------------------------------------------- events
  function handle(d) {
    S.events++;
    switch (d.type) {
      case 'participant_joined': {
        const isNew = d.participant && !S.people.has(d.participant.id);
        upsertParticipant(d.participant, isNew);
        if (isNew) scheduleLayout();
        break;
      }
      case 'participant_updated':
        upsertParticipant(d.participant, !S.people.has(d.participant && d.participant.id));
        scheduleLayout();
        break;
      case 'participant_left':
        removeParticipant(d.participant_id);
        scheduleLayout();
        break;
      case 'message_added':
        upsertMessage(d.message, true);
        break;
      case 'message_updated':
        upsertMessage(d.message, false);
        break;
      case 'playback_started':
        showSpotlight({ message_id: d.message_id, participant_id: d.participant_id, position_ms: 0, duration_ms: d.duration_ms || 0, at: performance.now() });
        break;
      case 'playback_progress': {
        const pb = S.playback;
        if (pb && pb.message_id === d.message_id) {
          pb.position_ms = d.position_ms || 0;
          if (d.duration_ms) pb.duration_ms = d.duration_ms;
          pb.at = performance.now();
          const msg = S.messages.get(d.message_id);
          if (msg && msg.kind === 'video' && !spotVideo.hidden && Math.abs(spotVideo.currentTime * 1000 - pb.position_ms) > 1500) {
            spotVideo.currentTime = pb.position_ms / 1000;
          }
        } else if (!pb || pb.finished) {
          // joined mid-playback (e.g. after a reconnect): follow it anyway
          const msg = S.messages.get(d.message_id);
          if (msg) showSpotlight({ message_id: d.message_id, participant_id: msg.participant_id, position_ms: d.position_ms || 0, duration_ms: d.duration_ms || 0, at: performance.now() });
        }
        break;
      }
      case 'playback_finished': {
        const pb = S.playback;
        if (pb && pb.message_id === d.message_id) {
          pb.finished = true;
          if (d.outcome === 'finished') pb.position_ms = pb.duration_ms;
          const msg = S.messages.get(d.message_id);
          if (msg && d.outcome === 'finished') {
            msg.played_count = (msg.played_count || 0) + 1;
            const rec = S.people.get(msg.participant_id);
            if (rec) updateBadge(rec);
          }
          hideSpotlight(900);
        }
        break;
      }
      case 'join_updated':
        bumpQr(d.join_url);
        break;
      case 'wall_changed':
        // the operator removed, banned, cleared or toggled the QR: rebuild from the state
        resync();
        break;
      case 'heartbeat':
      case 'ping':
        S.heartbeatSeen = true;
        break;
      default:
        break;
    }
  }

  function applyState(st) {
    applyWall(st);
    // participants: keep existing elements (no flash on reconnect), drop the departed
    const ids = new Set((st.participants || []).map((p) => p.id));
    // With older participants to page in, the departed are known only once every page is in.
    if (!st.participants_before) for (const id of [...S.people.keys()]) if (!ids.has(id)) removeParticipant(id);
    S.messages = new Map();
    for (const msg of st.messages || []) if (msg && msg.id) S.messages.set(msg.id, msg);
    for (const rec of S.people.values()) rec.msgs.clear();
    const firstLoad = S.people.size === 0;
    const list = (st.participants || []).slice();
    // stable order: the order we already show, then newcomers by join time
    const known = new Map(S.order.map((id, i) => [id, i]));
    list.sort((a, b) => {
      const ka = known.has(a.id) ? known.get(a.id) : Infinity;
      const kb = known.has(b.id) ? known.get(b.id) : Infinity;
      if (ka !== kb) return ka - kb;
      return String(a.joined_at || '').localeCompare(String(b.joined_at || ''));
    });
    for (const p of list) upsertParticipant(p, !firstLoad && !S.people.has(p.id), true);
    S.order = list.map((p) => p.id).filter((id) => S.people.has(id));
    M.dirty = true;                        // the order may have changed: redraw the mosaic whole
    for (const msg of S.messages.values()) {
      const rec = S.people.get(msg.participant_id);
      if (rec) rec.msgs.add(msg.id);
    }
    for (const rec of S.people.values()) updateBadge(rec);
    // playback
    const pb = st.playback;
    if (pb && pb.message_id) {
      showSpotlight({ message_id: pb.message_id, participant_id: pb.participant_id, position_ms: pb.position_ms || 0, duration_ms: pb.duration_ms || 0, at: performance.now() });
    } else if (S.playback) {
      hideSpotlight(0);
    }
    layout();
    if (st.participants_before) loadOlderParticipants(st.participants_before, ids);
    if (app.classList.contains('booting')) requestAnimationFrame(() => requestAnimationFrame(() => app.classList.remove('booting')));
  }

  // ---------------------------------------------------------------- connection
  let es = null;
  let attempt = 0;
  let retryTimer = 0;
  let buffer = null;
  let lastEventAt = 0;
  // The id of the last event applied (or the state's): a reconnect resumes from it, and the server
  // replays what was missed or says `resync`.
  let lastEventId = '';
  let haveState = false;
  let pagingGen = 0;

  // The state carries the newest participants; the older ones come a page at a time, oldest last.
  async function loadOlderParticipants(before, ids) {
    const gen = ++pagingGen;
    while (before) {
      let page;
      try {
        const r = await fetch(`${api}/participants?before=${encodeURIComponent(before)}&limit=1000`, { cache: 'no-store' });
        if (!r.ok) return;
        page = await r.json();
      } catch (_) { return; }
      if (gen !== pagingGen) return;
      const older = (page.participants || []).filter((p) => p && p.id);
      for (const p of older) { ids.add(p.id); upsertParticipant(p, false, true); }
      const known = new Set(S.order);
      const fresh = older.map((p) => p.id).filter((id) => !known.has(id) && S.people.has(id));
      S.order = fresh.concat(S.order);
      for (const msg of S.messages.values()) { const rec = S.people.get(msg.participant_id); if (rec) rec.msgs.add(msg.id); }
      M.dirty = true;
      scheduleLayout();
      before = page.before;
    }
    for (const id of [...S.people.keys()]) if (!ids.has(id)) removeParticipant(id);
  }
  const EVENT_TYPES = ['participant_joined', 'participant_updated', 'participant_left', 'message_added', 'message_updated',
    'playback_started', 'playback_progress', 'playback_finished', 'join_updated', 'wall_changed', 'heartbeat', 'ping'];

  // Without a display credential the server answers 401: say how to open a display (both languages:
  // the wall's locale is in the state this page may not read).
  const NOT_A_DISPLAY = 'Not a display yet: open one from the console (/admin) · 还不是显示屏：请从管理控制台 (/admin) 打开';
  let notADisplay = false;

  async function fetchState() {
    const r = await fetch(api, { cache: 'no-store', headers: { accept: 'application/json' } });
    if (r.status === 401) { notADisplay = true; setConnected(false); }
    if (!r.ok) throw new Error(`state ${r.status}`);
    notADisplay = false;
    return r.json();
  }

  function setConnected(on) {
    S.connected = on;
    app.classList.toggle('offline', !on);
    statusEl.querySelector('#status-text').textContent = notADisplay ? NOT_A_DISPLAY
      : S.everConnected ? S.strings.reconnecting : S.strings.connecting;
    statusEl.hidden = on;
  }

  function onEvent(e) {
    lastEventAt = performance.now();
    let d;
    try { d = JSON.parse(e.data); } catch (_) { return; }
    if (!d || typeof d !== 'object') return;
    if (!d.type) d.type = e.type;
    if (e.lastEventId) lastEventId = e.lastEventId;
    if (buffer) buffer.push(d);
    else {
      try { handle(d); } catch (err) { console.error('wall: event failed', d.type, err); }
    }
  }

  function resync() {
    const src = es;
    if (!src || buffer) return;
    fetchState().then((st) => { if (es === src) { applyState(st); if (st.last_event_id) lastEventId = st.last_event_id; } }).catch(() => fail(src));
  }

  function connect() {
    clearTimeout(retryTimer);
    if (es) { es.close(); es = null; }
    // With a state and the id of the last event applied, resume: the server replays what was missed
    // (or sends `resync`), so the state is not refetched.
    const resuming = haveState && !!lastEventId;
    buffer = resuming ? null : [];
    const src = new EventSource(resuming ? `${api}/events?last_event_id=${encodeURIComponent(lastEventId)}` : `${api}/events`);
    es = src;
    for (const t of EVENT_TYPES) src.addEventListener(t, onEvent);
    // The server says this page fell behind (missed events): rebuild from the state API.
    src.addEventListener('resync', resync);
    src.onmessage = onEvent;
    src.onopen = async () => {
      if (es !== src) return;
      if (resuming) {
        attempt = 0;
        lastEventAt = performance.now();
        S.reconnects++;
        setConnected(true);
        return;
      }
      try {
        // events that arrive while we rebuild are buffered and replayed (all handlers are idempotent)
        const st = await fetchState();
        if (es !== src) return;
        applyState(st);
        haveState = true;
        if (!lastEventId && st.last_event_id) lastEventId = st.last_event_id;
        const pending = buffer || [];
        buffer = null;
        for (const d of pending) { try { handle(d); } catch (err) { console.error(err); } }
        attempt = 0;
        lastEventAt = performance.now();
        if (S.everConnected) S.reconnects++;
        S.everConnected = true;
        setConnected(true);
      } catch (err) {
        if (es === src) fail(src);
      }
    };
    src.onerror = () => { if (es === src) fail(src); };
  }

  function fail(src) {
    src.close();
    if (es === src) es = null;
    buffer = null;
    setConnected(false);
    const base = BACKOFF[Math.min(attempt, BACKOFF.length - 1)];
    attempt++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, delay);
  }

  // stale-connection watchdog: only armed if the server sends heartbeat/ping events
  setInterval(() => {
    if (es && S.connected && S.heartbeatSeen && performance.now() - lastEventAt > HEARTBEAT_TIMEOUT_MS) fail(es);
  }, 5000);

  // ---------------------------------------------------------------- input
  const lastPlay = new Map();
  function requestPlay(pid) {
    const now = performance.now();
    if (now - (lastPlay.get(pid) || -1e9) < 800) return;
    lastPlay.set(pid, now);
    S.plays.push(pid);
    // The display's cookie (from the kiosk shell or the console's one-time link) is the credential.
    fetch(`${api}/play`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ participant_id: pid }),
    }).catch(() => {});
  }
  grid.addEventListener('click', (e) => {
    const av = e.target.closest && e.target.closest('.av');
    if (!av || !av.dataset.pid || av.classList.contains('leave')) return;
    requestPlay(av.dataset.pid);
    av.classList.remove('tap'); void av.offsetWidth; av.classList.add('tap');
    setTimeout(() => av.classList.remove('tap'), 600);
  });
  grid.addEventListener('contextmenu', (e) => e.preventDefault());

  let resizeTimer = 0;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => { S.layout = null; layout(); }, 60); });

  // ---------------------------------------------------------------- operator overlay (kiosk only)
  // Ctrl+Shift+A shows the console's address as a QR the operator's phone scans to sign in (the token
  // rides in the URL fragment, which no server or log sees), and the token as text; again hides it.
  // Only the kiosk's own window may read it (GET /api/walls/{id}/operator); elsewhere nothing happens.
  let overlayEl = null;
  async function toggleOperatorOverlay() {
    if (overlayEl) { overlayEl.remove(); overlayEl = null; return; }
    const r = await fetch(`${api}/operator`, { cache: 'no-store' }).catch(() => null);
    if (!r || !r.ok || overlayEl) return;
    const op = await r.json();
    overlayEl = el('div', 'op-overlay');
    overlayEl.id = 'operator-overlay';
    const card = el('div', 'op-card');
    const qr = el('div', 'op-qr');
    qr.innerHTML = op.qr_svg;  // our own server's SVG
    card.append(qr, el('p', 'op-url', op.console_url), el('p', 'op-token', op.token),
      el('p', 'op-hint', 'Scan to open the console · 扫码打开管理控制台 — Ctrl+Shift+A hides'));
    overlayEl.append(card);
    document.body.append(overlayEl);
  }
  window.addEventListener('keydown', (e) => {
    if (e.ctrlKey && e.shiftKey && (e.key === 'A' || e.key === 'a')) { e.preventDefault(); toggleOperatorOverlay(); }
  });

  // ---------------------------------------------------------------- test hooks
  function rectOf(e) { const r = e.getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; }
  window.__wall = {
    get id() { return wallId; },
    get participants() { return S.order.length; },
    get messages() { return S.messages.size; },
    get connected() { return S.connected; },
    get reconnects() { return S.reconnects; },
    get events() { return S.events; },
    get plays() { return S.plays.slice(); },
    get videoBlocked() { return S.videoBlocked; },
    get settled() { return !layoutQueued && performance.now() - S.lastLayoutChange > GLIDE_MS + 150; },
    get spotlight() {
      return S.playback && !spot.hidden ? { message_id: S.playback.message_id, participant_id: S.playback.participant_id, position_ms: S.playback.position_ms, duration_ms: S.playback.duration_ms } : null;
    },
    get layout() {
      const L = S.layout;
      if (!L) return null;
      return {
        mode: L.f.mode, cell: L.cell, cols: L.cols, rows: L.rows, capacity: L.grid.capacity,
        viewport: { w: L.f.W, h: L.f.H }, safeMargin: L.f.mg,
        area: { ...L.f.area }, qrPanel: rectOf(panel), qr: rectOf(qrImg), qrSide: L.f.q,
        room: !!L.room,
        // big room only: the stage of big faces and the mosaic canvas (viewport coordinates)
        stage: L.room ? { rect: rectOf(stageEl), cell: ST.cell, slots: ST.slots.length } : null,
        mosaic: L.room ? { rect: rectOf(mosaicEl), cell: M.cell, cols: M.cols, offX: M.offX, offY: M.offY } : null,
      };
    },
    /** target rect of a participant's cell or mosaic tile (viewport coordinates), independent of running glides */
    targetRectOf(pid) {
      const rec = S.people.get(pid);
      const L = S.layout;
      if (!rec || !L) return null;
      if (L.room) {
        if (rec.idx < 0) return null;
        const [x, y, w, h] = tileRect(rec.idx);
        return { x: L.f.area.x + x, y: L.f.area.y + M.y + y, w, h };
      }
      return { x: L.f.area.x + L.offX + rec.x, y: L.f.area.y + L.offY + rec.y, w: L.cell, h: L.cell };
    },
    /** big room: who is on the stage, slot by slot (null = empty slot) */
    get stage() { return M.on ? ST.slots.map((s) => s.pid) : []; },
    /** big room: a participant's mosaic tile: 'image' (decoded avatar), 'loading', 'none-available' (initials), or null */
    tileOf(pid) { const rec = S.people.get(pid); return rec && rec.tile ? { state: rec.tile.state, px: rec.tile.px } : null; },
    /** avatar images still to load: mosaic tiles queued or decoding, plus <img> faces not complete */
    get imagesPending() {
      let n = tiles.pending;
      for (const i of document.querySelectorAll('#grid .face img')) if (!i.complete) n++;
      return n;
    },
    ids() { return S.order.slice(); },
    fps: [],
  };

  // ---------------------------------------------------------------- boot
  layout();
  setConnected(false);
  statusEl.hidden = true;                 // don't flash "connecting" on a healthy start
  // The state is normally loaded when the event stream opens (one GET, before any avatar image is
  // requested, so it isn't queued behind hundreds of image downloads). If the stream is slow or
  // broken, load the state directly anyway: never a blank wall.
  connect();
  const bootTimer = setTimeout(() => {
    if (S.connected) return;
    statusEl.hidden = false;
    fetchState().then((st) => { if (!S.everConnected) applyState(st); }).catch(() => {});
  }, 2500);
  window.addEventListener('pagehide', () => { clearTimeout(bootTimer); if (es) es.close(); });
})();
