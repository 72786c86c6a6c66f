// A tiny stand-in for the Voicewall server's wall contract, used ONLY to test ui/wall.* in isolation
// (the real Rust server is tested by the other tests/browser/*.test.mjs files).
//
//   GET  /wall/{id}                 -> ui/wall.html verbatim
//   GET  /ui/{file}                 -> ui/ assets
//   GET  /api/walls/{id}            -> scripted state
//   GET  /api/walls/{id}/events     -> SSE (event name = type)
//   GET  /api/walls/{id}/qr.svg     -> a QR-looking SVG derived from join.url
//   POST /api/walls/{id}/play       -> 202, recorded in server.plays (optionally scripts a playback)
//   GET  /api/walls/{id}/operator   -> the kiosk overlay's console URL, QR and token (403 with kiosk: false)
//   GET  /media/avatars/{pid}.png   -> generated avatar (some deliberately 404 to test the fallback)
//   GET  /media/avatars/{pid}.jpg   -> with o.avatarSet: face i % n of a JPEG set (bench/avatars.mjs), one URL per person
//   GET  /media/avatars/{pid}-thumb.{png,jpg} -> with o.thumbs: the 64 px variant, advertised as `thumb_url`
//                                   (without: `thumb_url` is the avatar's URL, as the server sends it for an SVG)
//
// Every state it serves is checked against tests/browser/wall-state.schema.json (generated from the
// server's Rust types): a state that breaks the contract is answered 500 with the reasons, and kept in
// `server.schemaViolations`.
//
// Standalone:  node tests/browser/fake-server.mjs --participants 12 --port 8787 [--locale en] [--joins 2]
import http from 'node:http';
import zlib from 'node:zlib';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { violations } from './schema.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const UI_DIR = path.join(ROOT, 'ui');
const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png' };

const SURNAMES = ['王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴', '徐', '孙', '胡', '朱', '高', '林'];
const GIVEN = ['伟', '芳', '娜', '敏', '静', '磊', '洋', '艳', '勇', '军', '杰', '娟', '涛', '明', '超', '秀英', '小红', '建华', '子涵', '欣怡'];
const LATIN = ['Alice Martin', 'Bob Chen', 'Chloé Dubois', 'David Kim', 'Emma Rossi', 'Farid Haddad', 'Grace Liu', 'Hiro Tanaka',
  'Isabel Ortega', 'Jonas Berg', 'Kavya Rao', 'Liam O\'Brien', 'Maya Cohen', 'Noah Schmidt', 'Olga Petrova', 'Pedro Alves'];

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}
function hashStr(str) {
  let h = 2166136261;
  for (let i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 16777619); }
  return h >>> 0;
}

export function makeParticipant(i, { brokenAvatarEvery = 0, ext = 'png', thumbs = false } = {}) {
  const id = `p${String(i).padStart(5, '0')}`;
  const r = rng(i * 7919 + 13);
  const name = i % 3 === 0 ? LATIN[Math.floor(r() * LATIN.length)]
    : SURNAMES[Math.floor(r() * SURNAMES.length)] + GIVEN[Math.floor(r() * GIVEN.length)];
  const broken = brokenAvatarEvery > 0 && i % brokenAvatarEvery === brokenAvatarEvery - 1;
  return {
    id,
    person_id: `person-${id}`,
    display_name: name,
    avatar_url: `/media/avatars/${id}.${ext}${broken ? '?missing=1' : ''}`,
    // the 64 px square the wall draws small cells with; as the server, the avatar itself when there is none
    thumb_url: thumbs ? `/media/avatars/${id}-thumb.${ext}${broken ? '?missing=1' : ''}` : `/media/avatars/${id}.${ext}${broken ? '?missing=1' : ''}`,
    provider: i % 2 ? 'wechat' : 'web',
    joined_at: Date.UTC(2025, 0, 1, 18, 0, 0) + i * 1000,
    has_profile: true,
  };
}

export function makeWaveform(seed, n = 100) {
  const r = rng(seed + 1);
  const out = [];
  for (let i = 0; i < n; i++) {
    const env = Math.sin((Math.PI * (i + 0.5)) / n) ** 0.5;
    out.push(Math.round(Math.min(1, env * (0.25 + 0.75 * r())) * 1000) / 1000);
  }
  return out;
}

let msgSeq = 0;
export function makeMessage(participantId, opts = {}) {
  msgSeq++;
  const id = opts.id || `m${String(msgSeq).padStart(5, '0')}`;
  const kind = opts.kind || 'voice';
  return {
    id,
    participant_id: participantId,
    kind,
    status: opts.status || 'ready',
    error: null,
    duration_ms: kind === 'text' || kind === 'image' ? 0 : (opts.duration_ms ?? 12000),
    received_at: Date.now(),
    played_count: opts.played_count ?? 0,
    transcript: opts.transcript ?? null,
    media_url: opts.media_url ?? (kind === 'text' ? null : `/media/messages/${id}.${kind === 'video' ? 'mp4' : kind === 'image' ? 'jpg' : 'ogg'}`),
    waveform: kind === 'voice' || kind === 'video' ? (opts.waveform ?? makeWaveform(hashStr(id))) : [],
    text: opts.text ?? null,
    attempts: opts.attempts ?? 0,
    moderation: 'approved',
  };
}

// ---- tiny PNG encoder (avatars are raster images, like the real server's /media/ ones)
const CRC_TABLE = new Int32Array(256).map((_, n) => { let c = n; for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1; return c; });
function crc32(buf) { let c = -1; for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8); return (c ^ -1) >>> 0; }
function chunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function hsl(h, s, l) {
  s /= 100; l /= 100;
  const k = (n) => (n + h / 30) % 12, a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(f(0) * 255), Math.round(f(8) * 255), Math.round(f(4) * 255)];
}
const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
const avatarCache = new Map();
export function avatarPng(id, size = 96) {
  // 48 distinct looks, picked by id: cheap to serve 2,000+ of them
  const look = hashStr(id) % 48;
  const key = `${look}@${size}`;
  if (avatarCache.has(key)) return avatarCache.get(key);
  const h = hashStr(`look-${look}`);
  const hue = h % 360, hue2 = (hue + 40 + (h >>> 10) % 80) % 360;
  const c1 = hsl(hue, 70, 60), c2 = hsl(hue2, 65, 40), body = hsl(hue2, 40, 22);
  const skin = hex(['#f1c7a5', '#e0ac83', '#c68a5e', '#8d5a3b', '#f5d5bd'][(h >>> 4) % 5]);
  const hair = hex(['#1d1410', '#3b2a20', '#6b4a2b', '#b88a4a', '#2a2a36'][(h >>> 7) % 5]);
  const raw = Buffer.alloc((size * 3 + 1) * size);
  const S = size / 96;
  for (let y = 0; y < size; y++) {
    raw[y * (size * 3 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const t = (x + y) / (2 * size);
      let c = [0, 1, 2].map((i) => Math.round(c1[i] * (1 - t) + c2[i] * t));
      const X = x / S, Y = y / S;
      if (((X - 48) / 34) ** 2 + ((Y - 100) / 28) ** 2 <= 1) c = body;
      const dh = Math.hypot(X - 48, Y - 42);
      if (dh <= 19) c = skin;
      if (dh <= 21 && Y < 35) c = hair;
      const o = y * (size * 3 + 1) + 1 + x * 3;
      raw[o] = c[0]; raw[o + 1] = c[1]; raw[o + 2] = c[2];
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0); ihdr.writeUInt32BE(size, 4); ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  const png = Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
  avatarCache.set(key, png);
  return png;
}

function avatarSvg(id) {
  const h = hashStr(id);
  const hue = h % 360, hue2 = (hue + 40 + (h >>> 10) % 80) % 360;
  const skin = ['#f1c7a5', '#e0ac83', '#c68a5e', '#8d5a3b', '#f5d5bd'][(h >>> 4) % 5];
  const hair = ['#1d1410', '#3b2a20', '#6b4a2b', '#b88a4a', '#2a2a36'][(h >>> 7) % 5];
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96" width="96" height="96">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(${hue} 70% 60%)"/><stop offset="1" stop-color="hsl(${hue2} 65% 40%)"/></linearGradient></defs>
<rect width="96" height="96" fill="url(#g)"/>
<ellipse cx="48" cy="100" rx="34" ry="28" fill="hsl(${hue2} 40% 22%)"/>
<circle cx="48" cy="42" r="19" fill="${skin}"/>
<path d="M28 40 q2-22 20-22 q18 0 20 22 q-6-10-20-10 q-14 0-20 10z" fill="${hair}"/>
</svg>`;
}

export function qrSvg(text) {
  // Looks like a QR code (finder patterns + deterministic modules); not a real encoder.
  const n = 33;
  const r = rng(hashStr(text));
  const cells = [];
  const finder = (x, y) => x < 7 && y < 7;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const corners = [[0, 0], [n - 7, 0], [0, n - 7]];
      let inFinder = false, on = false;
      for (const [cx, cy] of corners) {
        if (finder(x - cx, y - cy) && x >= cx && y >= cy) {
          inFinder = true;
          const dx = x - cx, dy = y - cy;
          on = dx === 0 || dx === 6 || dy === 0 || dy === 6 || (dx >= 2 && dx <= 4 && dy >= 2 && dy <= 4);
        }
      }
      const nearFinder = (x < 8 && y < 8) || (x > n - 9 && y < 8) || (x < 8 && y > n - 9);
      if (!inFinder) on = !nearFinder && r() < 0.5;
      if (on) cells.push(`M${x} ${y}h1v1h-1z`);
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="-2 -2 ${n + 4} ${n + 4}" shape-rendering="crispEdges"><rect x="-2" y="-2" width="${n + 4}" height="${n + 4}" fill="#fff"/><path d="${cells.join('')}" fill="#000"/></svg>`;
}

/**
 * Start the fake server.
 * @param {object} o
 * @param {number} [o.participants=0] initial participants
 * @param {'en'|'zh-CN'} [o.locale='zh-CN']
 * @param {number} [o.brokenAvatarEvery=5] every Nth avatar 404s (0 = none)
 * @param {{full: Buffer[], thumb: Buffer[]}} [o.avatarSet] serve these JPEGs (bench/avatars.mjs) instead of generated PNGs
 * @param {boolean} [o.thumbs=false] advertise and serve a 64 px `thumb_url` per participant
 * @param {boolean} [o.autoPlay=true] POST /play scripts playback_started/progress/finished for the latest message
 */
export async function startFakeServer(o = {}) {
  const wallId = o.wallId || 'main';
  const brokenAvatarEvery = o.brokenAvatarEvery ?? 5;
  const locale = o.locale || 'zh-CN';
  let nextIdx = 0;
  let joinVersion = 1;
  const state = {
    id: wallId,
    title: o.title ?? (locale.startsWith('zh') ? '年度盛典 · 声音墙' : 'Voicewall Live'),
    locale,
    provider: o.provider || 'wechat',
    theme: { background: o.background || '#0a0e1a', background_image: null, accent: o.accent || '#ffb020', safe_margin_pct: o.safeMarginPct ?? 2.5 },
    join: {
      url: `http://wall.example/join/${wallId}?t=abc${joinVersion}`,
      qr_svg_url: `/api/walls/${wallId}/qr.svg?v=${joinVersion}`,
      instructions: locale.startsWith('zh') ? '微信扫码关注，发送语音' : 'Scan with your phone camera to join',
    },
    demo: o.demo ?? false,
    participants: [],
    messages: [],
    qr_visible: o.qrVisible ?? true,
  };
  // What is playing: scripts set `state.playback = {message_id, participant_id, position_ms, duration_ms}`;
  // on the wire it names its wall, as the server's does.
  let playing = null;
  Object.defineProperty(state, 'playback', {
    enumerable: true,
    get: () => playing,
    set: (v) => { playing = v && { wall: wallId, ...v }; },
  });
  const schemaViolations = [];
  const avatarSet = o.avatarSet || null;
  const ext = avatarSet ? 'jpg' : 'png';
  const thumbs = !!o.thumbs;
  const newParticipant = (extra = {}) => ({ ...makeParticipant(nextIdx++, { brokenAvatarEvery, ext, thumbs }), ...extra });
  for (let i = 0; i < (o.participants || 0); i++) state.participants.push(newParticipant());

  const clients = new Set();
  const plays = [];
  const requests = [];
  let refuseSseUntil = 0;
  const timers = new Set();

  // As the server: events carry ids, the last REPLAY are kept, and a reconnect with `last_event_id`
  // gets what it missed, or `resync` when that is gone. Waveforms stay out of the state and the events.
  const REPLAY = o.replay ?? 1024;
  let epoch = Date.now();
  let eventN = 0;
  const recent = [];
  const wireMessage = (m) => { const { waveform, ...rest } = m; return rest; };
  const wire = (data) => (data && data.message ? { ...data, message: wireMessage(data.message) } : data);
  function send(res, type, data, id) {
    res.write(`${id ? `id: ${id}\n` : ''}event: ${type}\ndata: ${JSON.stringify({ type, ...wire(data) })}\n\n`);
  }
  // `silent`: the change happened but no page got it (a page that resumes later gets it replayed).
  function emit(type, data, { silent = false } = {}) {
    const id = `${epoch}-${++eventN}`;
    recent.push({ id, n: eventN, type, data });
    if (recent.length > REPLAY) recent.shift();
    if (!silent) for (const res of clients) send(res, type, data, id);
  }
  // The state as served: the newest `o.statePage` participants (all without it), with a cursor.
  const statePage = o.statePage || Infinity;
  function wireState() {
    const people = state.participants;
    const shown = people.slice(Math.max(0, people.length - statePage));
    return {
      ...state,
      participants: shown,
      participants_before: shown.length < people.length ? String(people.length - shown.length) : null,
      messages: state.messages.map(wireMessage),
      messages_before: null,
      last_event_id: `${epoch}-${eventN}`,
    };
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    requests.push({ method: req.method, path: p + url.search });
    const base = `/api/walls/${wallId}`;
    try {
      if (req.method === 'GET' && p === `/wall/${wallId}`) return file(res, path.join(UI_DIR, 'wall.html'));
      if (req.method === 'GET' && p.startsWith('/ui/')) {
        const f = path.normalize(path.join(UI_DIR, p.slice(4)));
        if (!f.startsWith(UI_DIR + path.sep)) return notFound(res);
        return file(res, f);
      }
      if (req.method === 'GET' && p === base) {
        const served = wireState();
        const broken = violations(JSON.parse(JSON.stringify(served)));
        if (broken.length) {
          schemaViolations.push(...broken);
          console.error(`fake-server: the wall state breaks tests/browser/wall-state.schema.json:\n  ${broken.join('\n  ')}`);
          res.writeHead(500, { 'content-type': 'text/plain' });
          return res.end(`the fake wall state breaks wall-state.schema.json:\n${broken.join('\n')}`);
        }
        return json(res, 200, served);
      }
      if (req.method === 'GET' && p === `${base}/participants`) {
        // cursor = how many of the oldest are older than the page asked for
        const before = Math.min(state.participants.length, parseInt(url.searchParams.get('before') || `${state.participants.length}`, 10) || 0);
        const limit = Math.max(1, Math.min(1000, parseInt(url.searchParams.get('limit') || '200', 10) || 200));
        const from = Math.max(0, before - limit);
        return json(res, 200, { participants: state.participants.slice(from, before), before: from > 0 ? String(from) : null });
      }
      const wf = p.match(new RegExp(`^${base}/messages/([^/]+)/waveform$`));
      if (req.method === 'GET' && wf) {
        const msg = state.messages.find((m) => m.id === decodeURIComponent(wf[1]));
        if (!msg) return json(res, 404, { code: 'not_found', message: 'no such message' });
        return json(res, 200, { message_id: msg.id, waveform: msg.waveform || [] });
      }
      if (req.method === 'GET' && p === `${base}/qr.svg`) {
        res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'no-cache' });
        return res.end(qrSvg(state.join.url));
      }
      if (req.method === 'GET' && p === `${base}/events`) {
        if (Date.now() < refuseSseUntil) { res.writeHead(503, { 'content-type': 'text/plain' }); return res.end('unavailable'); }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.write(': hello\n\n');
        const last = req.headers['last-event-id'] || url.searchParams.get('last_event_id');
        if (last) {
          const [e, n] = String(last).split('-').map(Number);
          const oldest = recent.length ? recent[0].n : eventN + 1;
          if (e !== epoch || n > eventN || n + 1 < oldest) send(res, 'resync', { missed: null });
          else for (const ev of recent) if (ev.n > n) send(res, ev.type, ev.data, ev.id);
        }
        clients.add(res);
        req.on('close', () => clients.delete(res));
        return;
      }
      // The first-run setup panel (ui/setup-panel.js): never shown on the fake wall.
      if (req.method === 'GET' && p === `${base}/setup`) return json(res, 200, { show: false });
      if (req.method === 'GET' && p === `${base}/operator`) {
        // The kiosk overlay's sign-in (the real server answers only the kiosk's own window: o.kiosk false → 403).
        if (o.kiosk === false) return json(res, 403, { code: 'forbidden', message: 'not the kiosk' });
        const consoleUrl = 'http://kiosk.test/admin';
        return json(res, 200, { console_url: consoleUrl, qr_svg: qrSvg(`${consoleUrl}#token=fake-admin-token`), token: 'fake-admin-token' });
      }
      if (req.method === 'POST' && p === `${base}/play`) {
        let body = '';
        req.on('data', (c) => { body += c; });
        req.on('end', () => {
          let j = {};
          try { j = JSON.parse(body); } catch { /* recorded as {} */ }
          plays.push(j);
          json(res, 202, { accepted: true });
          if (o.autoPlay !== false && j.participant_id) {
            const msg = [...state.messages].reverse().find((m) => m.participant_id === j.participant_id && m.status === 'ready' && (m.kind === 'voice' || m.kind === 'video'));
            if (msg) api.playback(msg.id, { durationMs: Math.min(msg.duration_ms || 4000, 4000) });
          }
        });
        return;
      }
      const av = p.match(/^\/media\/avatars\/(\w+?)(-thumb)?\.(png|svg|jpg)$/);
      if (req.method === 'GET' && av) {
        if (url.searchParams.has('missing')) return notFound(res);
        const thumb = !!av[2];
        if (av[3] === 'svg') {
          res.writeHead(200, { 'content-type': 'image/svg+xml', 'cache-control': 'max-age=3600' });
          return res.end(avatarSvg(av[1]));
        }
        if (av[3] === 'jpg') {
          if (!avatarSet) return notFound(res);
          const i = parseInt(av[1].replace(/\D/g, ''), 10) || 0;
          const set = thumb ? avatarSet.thumb : avatarSet.full;
          res.writeHead(200, { 'content-type': 'image/jpeg', 'cache-control': 'public, max-age=31536000, immutable' });
          return res.end(set[i % set.length]);
        }
        const png = avatarPng(av[1], thumb ? 64 : 96);
        res.writeHead(200, { 'content-type': 'image/png', 'cache-control': 'max-age=3600' });
        return res.end(png);
      }
      return notFound(res);
    } catch (err) {
      if (res.headersSent) res.destroy(); else { res.writeHead(500); res.end(String(err)); }
    }
  });
  server.keepAliveTimeout = 30000;

  function file(res, f) {
    fs.readFile(f, (err, buf) => {
      if (err) return notFound(res);
      res.writeHead(200, { 'content-type': TYPES[path.extname(f)] || 'application/octet-stream', 'cache-control': 'no-cache' });
      res.end(buf);
    });
  }
  function json(res, code, obj) { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(obj)); }
  function notFound(res) { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not found'); }

  await new Promise((resolve) => server.listen(o.port || 0, o.host || '127.0.0.1', resolve));
  const { port } = server.address();
  const origin = `http://127.0.0.1:${port}`;

  const api = {
    origin,
    port,
    wallUrl: `${origin}/wall/${wallId}`,
    state,
    plays,
    requests,
    schemaViolations,
    get sseClients() { return clients.size; },
    emit,
    /** add a participant (and broadcast participant_joined unless silent) */
    addParticipant(extra = {}, { silent = false } = {}) {
      const pp = newParticipant(extra);
      state.participants.push(pp);
      emit('participant_joined', { participant: pp }, { silent });
      return pp;
    },
    removeParticipant(id) {
      state.participants = state.participants.filter((x) => x.id !== id);
      emit('participant_left', { participant_id: id });
    },
    addMessage(participantId, opts = {}, { silent = false } = {}) {
      const msg = makeMessage(participantId, opts);
      state.messages.push(msg);
      emit('message_added', { message: msg }, { silent });
      return msg;
    },
    updateMessage(id, patch) {
      const msg = state.messages.find((x) => x.id === id);
      Object.assign(msg, patch);
      emit('message_updated', { message: msg });
      return msg;
    },
    /** script a playback: started, progress every 1000/hz ms, finished. Resolves when finished. */
    playback(messageId, { durationMs, hz = 12, outcome = 'finished' } = {}) {
      const msg = state.messages.find((x) => x.id === messageId);
      const dur = durationMs ?? msg?.duration_ms ?? 5000;
      const t0 = Date.now();
      state.playback = { message_id: messageId, participant_id: msg?.participant_id, position_ms: 0, duration_ms: dur };
      emit('playback_started', { message_id: messageId, participant_id: msg?.participant_id, duration_ms: dur });
      return new Promise((resolve) => {
        const t = setInterval(() => {
          const pos = Math.min(dur, Date.now() - t0);
          if (state.playback) state.playback.position_ms = pos;
          emit('playback_progress', { message_id: messageId, position_ms: pos, duration_ms: dur });
          if (pos >= dur) {
            clearInterval(t); timers.delete(t);
            state.playback = null;
            if (msg && outcome === 'finished') msg.played_count = (msg.played_count || 0) + 1;
            emit('playback_finished', { message_id: messageId, outcome });
            if (msg) emit('message_updated', { message: msg });
            resolve();
          }
        }, Math.round(1000 / hz));
        timers.add(t);
      });
    },
    /** add `perSec` participants per second until stopped */
    startJoins(perSec) {
      const t = setInterval(() => api.addParticipant(), Math.round(1000 / perSec));
      timers.add(t);
      return () => { clearInterval(t); timers.delete(t); };
    },
    /** close every SSE stream; refuse new ones (503) for refuseMs */
    /** drop every event stream; `restart` (default): as a server restart, the event history is gone and
     * a resuming page is told to resync; `restart: false`: pages resume and get what they missed */
    dropStreams({ refuseMs = 0, restart = true } = {}) {
      refuseSseUntil = Date.now() + refuseMs;
      if (restart) { epoch += 1; recent.length = 0; }
      for (const res of clients) { res.destroy(); }
      clients.clear();
    },
    rotateJoin() {
      joinVersion++;
      state.join.url = `http://wall.example/join/${wallId}?t=abc${joinVersion}`;
      state.join.qr_svg_url = `/api/walls/${wallId}/qr.svg?v=${joinVersion}`;
      emit('join_updated', { join_url: state.join.url });
    },
    async close() {
      for (const t of timers) clearInterval(t);
      timers.clear();
      for (const res of clients) res.destroy();
      clients.clear();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}

// ------------------------------------------------------------------ standalone
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
  const srv = await startFakeServer({ participants: +arg('participants', 12), port: +arg('port', 8787), locale: arg('locale', 'zh-CN'), demo: process.argv.includes('--demo') });
  console.log(`fake wall server: ${srv.wallUrl}`);
  const joins = +arg('joins', 0);
  if (joins) srv.startJoins(joins);
  if (process.argv.includes('--play')) {
    const loop = async () => {
      const ps = srv.state.participants;
      if (ps.length) {
        const pp = ps[Math.floor(Math.random() * ps.length)];
        const m = srv.addMessage(pp.id, { duration_ms: 6000, transcript: '大家好，今晚的演出太精彩了！' });
        await srv.playback(m.id);
      }
      setTimeout(loop, 1500);
    };
    loop();
  }
}
