// Hostile network clients against the REAL server (`voicewall serve`, target/debug/voicewall unless
// VOICEWALL_BIN is set): a web wall "main" and a WeChat wall "wx" (its platform unreachable; only the
// webhook is used). Prints figures, asserts nothing (issue #18). Build the binary first
// (`cargo test -p voicewall --no-run`), then:
//
//   node bench/hostile-upload.mjs            (HOSTILE_BYTES=1073741824 per upload, IDLE_SOCKETS=2000)
//
// 1. RSS of the server while HOSTILE_BYTES of hostile multipart are streamed (chunked, no Content-Length)
//    at /api/join/main/voice and /profile: a field header that never ends; a body without its boundary;
//    without a token, and with a valid token and device cookie (what any guest who scanned the QR has).
// 2. How long a slowloris socket (one header byte every 2 s) stays open (given up after 60 s).
// 3. How many of IDLE_SOCKETS idle sockets are still open after 20 s.
// 4. A webhook push declaring `Content-Length: 100000000` that sends 1 KiB: time to an answer.
import { spawn, execSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BINARY = process.env.VOICEWALL_BIN || path.join(ROOT, 'target', 'debug', 'voicewall');
const HOSTILE_BYTES = Number(process.env.HOSTILE_BYTES || 1 << 30);
const IDLE_SOCKETS = Number(process.env.IDLE_SOCKETS || 2000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function start() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voicewall-hostile-'));
  const config = `[server]
listen = "127.0.0.1:${port}"
public_url = "http://127.0.0.1:${port}"
[storage]
data_dir = ${JSON.stringify(path.join(dir, 'data'))}
[audio]
output = "null"
[admin]
token = "bench-admin-token"
[[walls]]
id = "main"
[walls.web]
[[walls]]
id = "wx"
[walls.wechat]
app_id = "wxb11529c136998cb6"
app_secret = "s3cr3t"
token = "pamtest"
original_id = "gh_97417a04a28d"
api_base = "http://127.0.0.1:9"
oauth_base = "http://127.0.0.1:9"
`;
  fs.writeFileSync(path.join(dir, 'voicewall.toml'), config);
  const log = fs.openSync(path.join(dir, 'server.log'), 'a');
  const proc = spawn(BINARY, ['serve', '--config', path.join(dir, 'voicewall.toml')], { stdio: ['ignore', log, log] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${url}/healthz`)).ok) break; } catch (_) { /* not yet */ }
    if (i > 600 || proc.exitCode !== null) throw new Error(fs.readFileSync(path.join(dir, 'server.log'), 'utf8'));
    await sleep(100);
  }
  return { port, url, proc, dir };
}

function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function openFds(pid) {
  try { return fs.readdirSync(`/proc/${pid}/fd`).length; } catch (_) { return NaN; }
}

/** A guest's credentials: the join token of the wall and a device cookie (from GET /join). */
async function guest(srv) {
  const state = await (await fetch(`${srv.url}/api/walls/main`, { headers: { authorization: 'Bearer bench-admin-token' } })).json();
  const t = new URL(state.join.url).searchParams.get('t');
  const r = await fetch(`${srv.url}/join/main?t=${t}`, { redirect: 'manual' });
  const cookie = (r.headers.get('set-cookie') || '').split(';')[0];
  return { t, cookie };
}

/**
 * Stream `prefix` then filler up to HOSTILE_BYTES, chunked; sample RSS. Returns what the server took
 * (bytes written before it closed or answered), its answer, the peak RSS growth and the time.
 */
function hostileUpload(srv, route, { headers = {}, prefix = '' }) {
  return new Promise((resolve) => {
    const base = rssMiB(srv.proc.pid);
    let peak = base;
    const sampler = setInterval(() => { peak = Math.max(peak, rssMiB(srv.proc.pid)); }, 50);
    const started = Date.now();
    const sock = net.connect(srv.port, '127.0.0.1');
    let sent = 0; let answer = ''; let done = false;
    const head = [`POST ${route} HTTP/1.1`, `Host: 127.0.0.1:${srv.port}`, 'Transfer-Encoding: chunked',
      'Content-Type: multipart/form-data; boundary=XyZ', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
    const chunk = Buffer.alloc(256 * 1024, 'a');
    const frame = (buf) => Buffer.concat([Buffer.from(buf.length.toString(16) + '\r\n'), buf, Buffer.from('\r\n')]);
    const finish = (why) => {
      if (done) return; done = true;
      clearInterval(sampler);
      peak = Math.max(peak, rssMiB(srv.proc.pid));
      sock.destroy();
      resolve({ route, sentMiB: +(sent / 1048576).toFixed(1), answer: answer.split('\r\n')[0] || `(none: ${why})`, growthMiB: +(peak - base).toFixed(1), seconds: +((Date.now() - started) / 1000).toFixed(1) });
    };
    sock.on('data', (d) => { answer += d.toString('latin1'); });
    sock.on('error', () => finish('reset'));
    sock.on('close', () => finish('closed'));
    const pump = () => {
      while (!done && sent < HOSTILE_BYTES) {
        const ok = sock.write(frame(chunk));
        sent += chunk.length;
        if (!ok) { sock.once('drain', pump); return; }
      }
      if (!done) { sock.write('0\r\n\r\n'); setTimeout(() => finish('sent all'), 5000); }
    };
    sock.write(head);
    sock.write(frame(Buffer.from(prefix)));
    pump();
  });
}

/** Headers trickled one byte every 2 s: seconds until the server closes the socket (≤ 60). */
function slowloris(srv) {
  return new Promise((resolve) => {
    const started = Date.now();
    const text = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(100)}`;
    const sock = net.connect(srv.port, '127.0.0.1');
    let i = 0;
    const timer = setInterval(() => { if (i < text.length) sock.write(text[i++]); }, 2000);
    const end = (how) => { clearInterval(timer); sock.destroy(); resolve({ seconds: +((Date.now() - started) / 1000).toFixed(1), how, bytesSent: i }); };
    sock.on('close', () => end('closed by the server'));
    sock.on('error', () => end('reset by the server'));
    setTimeout(() => end('still open (gave up)'), 60000);
  });
}

/** Open `n` sockets that send nothing; after `waitS` count those the server has not closed. */
async function idleSockets(srv, n, waitS) {
  const socks = [];
  let closed = 0; let failed = 0;
  for (let i = 0; i < n; i++) {
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => { closed++; });
    s.on('connect', () => {});
    socks.push(s);
    if (i % 200 === 199) await sleep(50);
  }
  await sleep(2000);
  const fdsAfterOpen = openFds(srv.proc.pid);
  const closedEarly = closed;
  await sleep(waitS * 1000);
  const open = n - closed;
  const health = await fetch(`${srv.url}/healthz`).then((r) => r.status).catch((e) => String(e));
  for (const s of socks) s.destroy();
  return { opened: n, closedWithin2s: closedEarly, stillOpenAfter: open, afterSeconds: waitS + 2, serverFdsWhileOpen: fdsAfterOpen, healthzWhileOpen: health, failed };
}

/** A push that declares 100 MB and sends 1 KiB: the answer and how long it took (≤ 40 s). */
function lyingPush(srv) {
  return new Promise((resolve) => {
    const started = Date.now();
    const sock = net.connect(srv.port, '127.0.0.1');
    let answer = '';
    const q = 'signature=x&timestamp=1&nonce=1';
    sock.write(`POST /webhook/wechat/wx?${q} HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 100000000\r\n\r\n`);
    sock.write('<xml>' + 'a'.repeat(1019));
    const end = (how) => { sock.destroy(); resolve({ answer: answer.split('\r\n')[0] || '(none)', how, seconds: +((Date.now() - started) / 1000).toFixed(1) }); };
    sock.on('data', (d) => { answer += d.toString('latin1'); });
    sock.on('close', () => end('closed'));
    sock.on('error', () => end('reset'));
    setTimeout(() => end('no answer (gave up)'), 40000);
  });
}

const srv = await start();
try {
  const g = await guest(srv);
  const never = 'Content-Disposition: form-data; name="audio"\r\nX-Never-Ends: ';
  console.log(`voicewall serve pid ${srv.proc.pid}; idle RSS ${rssMiB(srv.proc.pid).toFixed(1)} MiB; load ${load()}`);
  const uploads = [
    ['/api/join/main/voice', 'field header never ends, no token', {}, `--XyZ\r\n${never}`],
    ['/api/join/main/voice', 'field header never ends, token + cookie', { 'X-Join-Token': g.t, Cookie: g.cookie }, `--XyZ\r\n${never}`],
    ['/api/join/main/voice', 'no boundary in the body, token + cookie', { 'X-Join-Token': g.t, Cookie: g.cookie }, ''],
    ['/api/join/main/profile', 'field header never ends, no token', {}, `--XyZ\r\n${never}`],
    ['/api/join/main/profile', 'field header never ends, token', { 'X-Join-Token': g.t }, `--XyZ\r\n${never}`],
  ];
  for (const [route, what, headers, prefix] of uploads) {
    const r = await hostileUpload(srv, route, { headers, prefix });
    console.log(`upload ${route} (${what}): server took ${r.sentMiB} MiB of ${(HOSTILE_BYTES / 1048576).toFixed(0)} MiB in ${r.seconds} s, answer "${r.answer}", RSS growth ${r.growthMiB} MiB; load ${load()}`);
    await sleep(500);
  }
  const s = await slowloris(srv);
  console.log(`slowloris (1 header byte / 2 s): ${s.how} after ${s.seconds} s (${s.bytesSent} bytes sent); load ${load()}`);
  const idle = await idleSockets(srv, IDLE_SOCKETS, 20);
  console.log(`idle sockets: ${JSON.stringify(idle)}; load ${load()}`);
  const p = await lyingPush(srv);
  console.log(`webhook push, Content-Length 100000000 with 1 KiB sent: ${p.how}, answer "${p.answer}" after ${p.seconds} s; load ${load()}`);
  console.log(`final RSS ${rssMiB(srv.proc.pid).toFixed(1)} MiB; healthz ${(await fetch(`${srv.url}/healthz`)).status}; uptime: ${execSync('uptime').toString().trim()}`);
} finally {
  srv.proc.kill('SIGKILL');
  if (!process.env.KEEP_TEST_DIRS) fs.rmSync(srv.dir, { recursive: true, force: true });
}
