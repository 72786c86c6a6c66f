/* Voicewall — the big screen.
 *
 * Plain JS, no build step. Reads the wall id from /wall/{id}, loads GET /api/walls/{id},
 * follows GET /api/walls/{id}/events (SSE) and lays out every participant's avatar in the free
 * area next to the always-visible join QR panel. Audio is played by the server's native player;
 * this page only plays video messages (in the spotlight).
 *
 * The crowd (grid of faces, or the big room: a stage of large faces, a count and a mosaic) is drawn by
 * ui/grid.js (window.VoicewallGrid); this file keeps the data flow: state, events, messages, spotlight.
 */
(() => {
  'use strict';

  // ---------------------------------------------------------------- constants & strings
  const BUBBLE_MS = 9000;        // text/image message bubble lifetime
  const MAX_BUBBLES = 3;
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
  const gridEl = $('grid');
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
    people: new Map(),          // id -> rec {p, msgs:Set, lit, unplayed, badgeN, badgeD, latestAt} (drawn by grid.js)
    order: [],                  // participant ids, join order
    messages: new Map(),        // id -> message
    playback: null,             // {message_id, participant_id, position_ms, duration_ms, at}
    connected: false,
    everConnected: false,
    layout: null,
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
  const { safeUrl, fillFace } = window.VoicewallGrid;
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

  // ---------------------------------------------------------------- participants
  const grid = window.VoicewallGrid.create({
    root: gridEl, crowd: $('crowd'), stage: $('stage'), mosaic: $('mosaic'), app,
    onTap: (pid) => requestPlay(pid), isBooting: () => app.classList.contains('booting'),
  });

  function upsertParticipant(p, animate, skipScan) {
    if (!p || !p.id) return;
    let rec = S.people.get(p.id);
    if (!rec) {
      rec = { p, msgs: new Set(), lit: false, unplayed: 0, badgeN: '', badgeD: '', latestAt: '' };
      S.people.set(p.id, rec);
      S.order.push(p.id);
    }
    rec.p = p;
    grid.add(p, animate);
    if (!skipScan) {
      // messages that arrived before their participant
      for (const msg of S.messages.values()) if (msg.participant_id === p.id) rec.msgs.add(msg.id);
      updateBadge(rec);
    }
  }

  function removeParticipant(id) {
    if (!S.people.has(id)) return;
    S.people.delete(id);
    const i = S.order.indexOf(id);
    if (i >= 0) S.order.splice(i, 1);
    grid.remove(id);
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

  function updateBadge(rec) {
    computeBadge(rec);
    grid.badge(rec.p.id, { lit: rec.lit, n: rec.badgeN, d: rec.badgeD, latestAt: rec.latestAt });
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
      if (isNew && !prev) grid.fresh(rec.p.id);
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

  function layout() {
    const f = computeFrame();
    const prev = S.layout;
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
      Object.assign(gridEl.style, { left: px(f.area.x), top: px(f.area.y), width: px(f.area.w), height: px(f.area.h) });
      Object.assign(bubbles.style, { left: px(f.area.x), top: px(f.area.y), width: px(f.area.w), height: px(f.area.h) });
    }

    if (grid.layout(f.area, f.vmin) || !prev || prev.frameKey !== frameKey) layoutSpotlight(f);
    S.layout = { frameKey, f };

    updateCounts();
  }

  function layoutSpotlight(f) {
    // in the big room the spotlight covers the mosaic and leaves the stage of big faces in view
    const m = grid.spotArea();
    const a = m ? { x: f.area.x + m.x, y: f.area.y + m.y, w: m.w, h: m.h } : f.area;
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
    grid.theme();
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
    S.playback = pb;
    const rec = S.people.get(pb.participant_id);
    const p = rec ? rec.p : { id: pb.participant_id, display_name: '' };
    grid.speaking(pb.participant_id);
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
      if (pb) grid.speaking(null);
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
    grid.set(list.filter((p) => S.people.has(p.id)));   // the drawn order follows
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
    get settled() { return !layoutQueued && grid.settled; },
    get spotlight() {
      return S.playback && !spot.hidden ? { message_id: S.playback.message_id, participant_id: S.playback.participant_id, position_ms: S.playback.position_ms, duration_ms: S.playback.duration_ms } : null;
    },
    get layout() {
      const L = S.layout, g = grid.info;
      if (!L || !g) return null;
      return {
        mode: L.f.mode, cell: g.cell, cols: g.cols, rows: g.rows, capacity: g.capacity, minCell: g.minCell,
        viewport: { w: L.f.W, h: L.f.H }, safeMargin: L.f.mg,
        area: { ...L.f.area }, qrPanel: rectOf(panel), qr: rectOf(qrImg), qrSide: L.f.q,
        room: g.room,
        // big room only: the stage of big faces (and its count of everyone else) and the mosaic canvas (viewport coordinates)
        stage: g.room ? { rect: rectOf($('stage')), ...g.stage } : null,
        mosaic: g.room ? { rect: rectOf($('mosaic')), ...g.mosaic } : null,
      };
    },
    /** target rect of a participant's cell or mosaic tile (viewport coordinates), independent of running glides */
    targetRectOf(pid) {
      const L = S.layout, r = grid.rectOf(pid);
      return L && r ? { x: L.f.area.x + r.x, y: L.f.area.y + r.y, w: r.w, h: r.h } : null;
    },
    /** big room: who is on the stage, slot by slot (null = empty slot) */
    get stage() { return grid.stageIds(); },
    /** big room: a participant's mosaic tile: 'image' (decoded avatar), 'loading', 'none-available' (initials), or null */
    tileOf(pid) { return grid.tileOf(pid); },
    /** avatar images still to load: mosaic tiles queued or decoding, plus <img> faces not complete */
    get imagesPending() { return grid.imagesPending; },
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
