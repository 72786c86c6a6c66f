// Soak of the real server (issue 18; a bench, not a CI test): `voicewall serve` (target/debug/voicewall
// or $VOICEWALL_BIN) with the null audio output and two walls — "tg", a Telegram wall taking signed
// text updates at --pushes per second, and "main", the web join page taking --uploads voice uploads per
// second from a few joined phones (the voices queue and play on the null output). Every 10 s it samples
// the server's RSS, open files (/proc/PID/fd), the data dir's size (and its sled database's), and the event-stream lag (a
// push's send time, carried in its text, to its `message_added` on /api/walls/tg/events). At the end:
// growth after warm-up (the first --warmup seconds; also from 2, 5 and 10 min, beside the moments the
// speaker queue and the media store first filled) and the worst lag, per window and overall. The
// live/free columns are jemalloc's own figures from /metrics (Rust's allocations; the C libraries keep
// glibc's malloc, whose brk heap and 64 MiB arenas are the heap/arenas columns): RSS growing while
// live does not is the allocator's fragmentation, not data.
//
//   node bench/soak.mjs [--minutes 10] [--pushes 50] [--uploads 2] [--warmup 60] [--phones 20] [--max-mib N] [--cache-mib N]
//
// --max-mib sets `[storage] max_bytes` (default: the built-in 2 GiB), to watch eviction hold the media
// store at its cap; --cache-mib sets `[storage] cache_bytes` (the database's page cache); the media columns come from /healthz (`media.bytes`, `media.evicted_blobs`).
//
// Figures, never pass/fail. Print `uptime` beside them: the machine is shared.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../tests/browser/server.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = process.env.VOICEWALL_BIN || path.join(ROOT, 'target', 'debug', 'voicewall');
const argv = process.argv.slice(2);
const arg = (name, def) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? +argv[i + 1] : def; };
const minutes = arg('minutes', 10), pushRate = arg('pushes', 50), uploadRate = arg('uploads', 2);
const warmupS = arg('warmup', 60), phones = arg('phones', 20), maxMiB = arg('max-mib', 0), cacheMiB = arg('cache-mib', 0);
const TOKEN = 'soak-admin-token', SECRET = 'soak-secret-token';
const AUDIO = fs.readFileSync(path.join(ROOT, 'tests/fixtures/audio/hello.ogg'));
// Media is content-addressed: the same file uploaded twice is one blob. Each upload gets its own Ogg
// stream serial number (every page's, its CRC recomputed), so every voice is a distinct blob as a real
// evening's are — the media store grows and the cap (--max-mib) has something to evict.
const CRC = new Uint32Array(256).map((_, i) => { let r = i << 24; for (let k = 0; k < 8; k++) r = (r & 0x80000000) ? ((r << 1) ^ 0x04c11db7) : (r << 1); return r >>> 0; });
function oggWithSerial(src, serial) {
  const b = Buffer.from(src);
  for (let at = 0; at + 27 <= b.length && b.toString('latin1', at, at + 4) === 'OggS';) {
    const segs = b[at + 26];
    let len = 27 + segs;
    for (let i = 0; i < segs; i++) len += b[at + 27 + i];
    b.writeUInt32LE(serial >>> 0, at + 14);
    b.writeUInt32LE(0, at + 22);
    let crc = 0;
    for (let i = at; i < at + len; i++) crc = ((crc << 8) ^ CRC[((crc >>> 24) ^ b[i]) & 0xff]) >>> 0;
    b.writeUInt32LE(crc, at + 22);
    at += len;
  }
  return b;
}

const port = await freePort();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voicewall-soak-'));
const dataDir = path.join(dir, 'data');
fs.writeFileSync(path.join(dir, 'voicewall.toml'), `[server]
listen = "127.0.0.1:${port}"
public_url = "http://127.0.0.1:${port}"
[storage]
data_dir = "${dataDir}"
${maxMiB ? `max_bytes = ${maxMiB * 1048576}\n` : ''}${cacheMiB ? `cache_bytes = ${cacheMiB * 1048576}\n` : ''}[audio]
output = "null"
gap_ms = 100
[admin]
token = "${TOKEN}"
[[walls]]
id = "main"
title = "soak"
locale = "en"
[walls.web]
messages_per_minute = 1000000
messages_per_ip_per_minute = 1000000
new_devices_per_ip_per_minute = 1000000
max_messages = 100000000
[[walls]]
id = "tg"
title = "soak telegram"
locale = "en"
[walls.telegram]
bot_token = "123456:AAHsoak_soak_soak_soak_soak"
bot_username = "soak_bot"
secret_token = "${SECRET}"
api_base = "http://127.0.0.1:9"
`);
const log = fs.openSync(path.join(dir, 'server.log'), 'a');
const proc = spawn(BIN, ['serve', '--config', path.join(dir, 'voicewall.toml')], { stdio: ['ignore', log, log], env: { ...process.env, RUST_LOG: 'warn' } });
const url = `http://127.0.0.1:${port}`;
const auth = { authorization: `Bearer ${TOKEN}` };
const stop = () => { try { proc.kill('SIGTERM'); } catch (_) { /* gone */ } };
process.on('exit', stop);
for (let i = 0; ; i++) {
  try { if ((await fetch(`${url}/healthz`)).ok) break; } catch (_) { /* not up yet */ }
  if (i > 600) throw new Error(`the server did not start: see ${dir}/server.log`);
  await new Promise((r) => setTimeout(r, 100));
}

// Phones: join page (device cookie), then a profile.
const state = await (await fetch(`${url}/api/walls/main`, { headers: auth })).json();
const joinUrl = new URL(state.join.url);
let joinToken = joinUrl.searchParams.get('t');
const guests = [];
for (let i = 0; i < phones; i++) {
  const page = await fetch(`${url}${joinUrl.pathname}${joinUrl.search}`);
  const cookie = page.headers.get('set-cookie').split(';')[0];
  const form = new FormData();
  form.append('token', joinToken);
  form.append('nickname', `Soak ${i}`);
  const r = await fetch(`${url}/api/join/main/profile`, { method: 'POST', body: form, headers: { cookie } });
  if (!r.ok) throw new Error(`profile ${i}: ${r.status} ${await r.text()}`);
  guests.push(cookie);
}

// Event-stream lag: each pushed text carries its send time.
let windowLag = 0, worstLag = 0, seen = 0;
const lagWindows = [];
(async () => {
  const r = await fetch(`${url}/api/walls/tg/events`, { headers: auth });
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut); buf = buf.slice(cut + 2);
      if (!ev.includes('event: message_added')) continue;
      const m = /soak@(\d+)/.exec(ev);
      if (!m) continue;
      const lag = Date.now() - +m[1];
      seen++;
      windowLag = Math.max(windowLag, lag); worstLag = Math.max(worstLag, lag);
    }
  }
})().catch((e) => console.error('event stream:', e.message));

// Load.
let updateId = 1, sent = 0, failed = 0, uploads = 0, uploadFailed = 0;
const statuses = {};
async function push() {
  const id = updateId++;
  const user = 1000 + (id % 500);
  const body = { update_id: id, message: { message_id: id, date: Math.floor(Date.now() / 1000), chat: { id: user, type: 'private' }, from: { id: user, is_bot: false, first_name: `P${user}` }, text: `soak@${Date.now()} #${id}` } };
  try {
    const r = await fetch(`${url}/webhook/telegram/tg`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRET } });
    await r.arrayBuffer();
    statuses[r.status] = (statuses[r.status] || 0) + 1;
    if (r.ok) sent++; else failed++;
  } catch (_) { failed++; }
}
let uploadN = 0;
async function upload() {
  const n = uploadN++;
  const form = new FormData();
  form.append('token', joinToken);
  form.append('upload_id', `soak-${n}`);
  form.append('audio', new Blob([oggWithSerial(AUDIO, 0x50000000 + n)]), 'hello.ogg');
  try {
    const r = await fetch(`${url}/api/join/main/voice`, { method: 'POST', body: form, headers: { cookie: guests[n % guests.length] } });
    const reply = await r.json().catch(() => ({}));
    // The join token rotates (token_rotate_s): an open page keeps the one each answer hands back.
    if (reply.token) joinToken = reply.token;
    statuses[`upload ${r.status}`] = (statuses[`upload ${r.status}`] || 0) + 1;
    if (r.ok) uploads++; else uploadFailed++;
  } catch (_) { uploadFailed++; }
}
const tickMs = 100;
let pushDebt = 0, uploadDebt = 0;
const ticker = setInterval(() => {
  pushDebt += pushRate * tickMs / 1000; uploadDebt += uploadRate * tickMs / 1000;
  for (; pushDebt >= 1; pushDebt--) push();
  for (; uploadDebt >= 1; uploadDebt--) upload();
}, tickMs);

// Samples.
// (a file evicted between the listing and its stat counts 0)
const dirBytes = (d) => { let n = 0; for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); n += e.isDirectory() ? dirBytes(p) : (fs.statSync(p, { throwIfNoEntry: false })?.size ?? 0); } return n; };
const rssKiB = () => +/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1];
const fds = () => fs.readdirSync(`/proc/${proc.pid}/fd`).length;
const threads = () => +/Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8'))[1];
// Where the RSS lives (KiB), from /proc/PID/smaps: the main heap ([heap], glibc's brk arena), anonymous
// mappings (jemalloc's extents, the other threads' glibc arenas, stacks) and file-backed pages (the
// binary and libraries).
function rssParts() {
  const parts = { heap: 0, anon: 0, file: 0, arenas: 0 };
  let kind = 'anon';
  for (const line of fs.readFileSync(`/proc/${proc.pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const f = line.split(/\s+/);
      const name = f.slice(5).join(' ');
      kind = name === '[heap]' ? 'heap' : (name === '' || name.startsWith('[')) ? 'anon' : 'file';
      const [lo, hi] = f[0].split('-').map((x) => parseInt(x, 16));
      // glibc's thread arenas: 64 MiB reserved at a 64 MiB boundary (HEAP_MAX_SIZE), the unused tail
      // mapped ---p; count each by that tail (or by a whole 64 MiB mapping when it is all in use).
      const M64 = 64 * 1048576;
      if (name === '' && hi % M64 === 0 && (f[1] === '---p' ? hi - lo > 65536 : (hi - lo === M64 && lo % M64 === 0))) parts.arenas++;
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r) parts[kind] += +r[1];
  }
  return parts;
}
const samples = [];
const start = Date.now();
const mib = (k) => (k / 1024).toFixed(1);
console.log(`soak: ${minutes} min, ${pushRate} pushes/s + ${uploadRate} uploads/s, server pid ${proc.pid}, data ${dataDir}`);
console.log('   t_s  rss_MiB  heap  anon  file  live  free  arenas thr  fds  data_MiB  media_MiB  evicted  queued  pushes_ok  uploads_ok  failed  events  max_lag_ms  load');
let media = { bytes: 0, evicted_blobs: 0 }, queued = 0, queueMax = 0;
const readMedia = () => fetch(`${url}/healthz`).then((r) => r.json()).then((h) => { if (h.media) media = h.media; if (h.audio) ({ queued, queue_max: queueMax } = h.audio); }).catch(() => {});
// jemalloc's own figures (/metrics): live = what Rust's allocations use, free = what it keeps resident beyond them.
// RSS growing while live does not is fragmentation, not data.
let heap = { live: 0, free: 0 };
const gauge = (text, name) => +(new RegExp(`^${name} (\\d+)$`, 'm').exec(text) || [0, 0])[1];
const readHeap = () => fetch(`${url}/metrics`).then((r) => r.text()).then((m) => { heap = { live: gauge(m, 'voicewall_heap_in_use_bytes') / 1024, free: gauge(m, 'voicewall_heap_free_bytes') / 1024 }; }).catch(() => {});
await new Promise((resolve) => {
  const sampler = setInterval(async () => {
    await readMedia();
    await readHeap();
    const t = Math.round((Date.now() - start) / 1000);
    const s = { t, rss: rssKiB(), parts: rssParts(), threads: threads(), fds: fds(), data: dirBytes(dataDir), db: fs.existsSync(path.join(dataDir, 'db')) ? dirBytes(path.join(dataDir, 'db')) : 0, lag: windowLag, heap, queued, evicted: media.evicted_blobs };
    samples.push(s); lagWindows.push(windowLag); windowLag = 0;
    const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
    const p = s.parts;
    console.log(`${String(t).padStart(6)}  ${mib(s.rss).padStart(7)}  ${mib(p.heap).padStart(5)} ${mib(p.anon).padStart(5)} ${mib(p.file).padStart(5)} ${mib(heap.live).padStart(5)} ${mib(heap.free).padStart(5)}  ${String(p.arenas).padStart(6)} ${String(s.threads).padStart(3)}  ${String(s.fds).padStart(3)}  ${(s.data / 1048576).toFixed(1).padStart(8)}  ${(media.bytes / 1048576).toFixed(1).padStart(9)}  ${String(media.evicted_blobs).padStart(7)}  ${String(queued).padStart(6)}  ${String(sent).padStart(9)}  ${String(uploads).padStart(10)}  ${String(failed + uploadFailed).padStart(6)}  ${String(seen).padStart(6)}  ${String(s.lag).padStart(10)}  ${load}`);
    if (Date.now() - start >= minutes * 60_000) { clearInterval(sampler); resolve(); }
  }, 10_000);
});
clearInterval(ticker);

const warm = samples.find((s) => s.t >= warmupS) || samples[0];
const last = samples[samples.length - 1];
const pct = (a, b) => `${(((b - a) / a) * 100).toFixed(1)} %`;
const half = Math.floor(lagWindows.length / 2);
const maxOf = (a) => a.reduce((m, x) => Math.max(m, x), 0);
console.log(`\nafter warm-up (t=${warm.t} s → ${last.t} s):`);
console.log(`  RSS ${mib(warm.rss)} → ${mib(last.rss)} MiB (${pct(warm.rss, last.rss)}); peak ${mib(maxOf(samples.map((s) => s.rss)))} MiB`);
const mid = samples[Math.floor(samples.length / 2)];
console.log(`  RSS over the second half (t=${mid.t} s → ${last.t} s): ${mib(mid.rss)} → ${mib(last.rss)} MiB (${pct(mid.rss, last.rss)})`);
// The same growth from other starting points, and the moments the bounded stores filled: the speaker
// queue at its cap (voices arrive faster than they play), the media store at its cap (eviction begins).
const from = [120, 300, 600].map((t0) => samples.find((x) => x.t >= t0)).filter((x) => x && x !== last);
console.log(`  RSS growth from ${from.map((x) => `${x.t} s (${mib(x.rss)} MiB): ${pct(x.rss, last.rss)}`).join('; ')}`);
const first = (f) => samples.find(f)?.t ?? 'never';
console.log(`  the speaker queue first full at ${first((x) => queueMax && x.queued >= queueMax)} s; eviction began at ${first((x) => x.evicted > 0)} s`);
console.log(`  open files ${warm.fds} → ${last.fds}; threads ${warm.threads} → ${last.threads}`);
for (const k of ['heap', 'anon', 'file']) console.log(`  RSS in ${k}: ${mib(warm.parts[k])} → ${mib(last.parts[k])} MiB`);
console.log(`  jemalloc: live ${mib(warm.heap.live)} → ${mib(last.heap.live)} MiB, held free ${mib(warm.heap.free)} → ${mib(last.heap.free)} MiB`);
console.log(`  glibc malloc arenas, the C libraries' (64 MiB reservations) ${warm.parts.arenas} → ${last.parts.arenas}`);
await readMedia();
console.log(`  media ${(media.bytes / 1048576).toFixed(1)} MiB (cap ${media.max_bytes ? (media.max_bytes / 1048576).toFixed(0) : '?'} MiB), evicted ${media.evicted_blobs} blobs / ${((media.evicted_bytes || 0) / 1048576).toFixed(1)} MiB`);
console.log(`  data dir ${(warm.data / 1048576).toFixed(1)} → ${(last.data / 1048576).toFixed(1)} MiB, of it the sled database (db/) ${(warm.db / 1048576).toFixed(1)} → ${(last.db / 1048576).toFixed(1)} MiB`);
console.log(`  event lag: worst ${worstLag} ms; worst per half: first ${maxOf(lagWindows.slice(0, half))} ms, second ${maxOf(lagWindows.slice(half))} ms`);
console.log(`  pushes ok ${sent}, uploads ok ${uploads}, failed ${failed + uploadFailed}, message_added seen ${seen}; statuses ${JSON.stringify(statuses)}`);
console.log(`  load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}; server log ${dir}/server.log`);
stop();
process.exit(0);
