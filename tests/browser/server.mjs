// Spawns the REAL kiosk server (target/debug/voicewall serve) for browser tests: a temp data dir, the null
// audio output, a free port, one wall. Build it first: `cargo build -p voicewall`.
//
//   const srv = await startServer({ web: { messages_per_minute: 3 }, locale: 'en' });
//   srv.url, srv.port, await srv.wall(), await srv.joinUrl(), await srv.stop()
//   await srv.get('/media/…')       (a display route, with the admin token as Bearer)
//   await srv.displayUrl()          (a one-time link: a browser that opens it becomes a display of the wall)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BINARY = process.env.VOICEWALL_BIN || path.join(ROOT, 'target', 'debug', 'voicewall');
/** The admin token of the servers this starts. */
export const ADMIN_TOKEN = 'test-admin-token';

/** A free TCP port on this machine. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '0.0.0.0', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** This machine's first non-loopback IPv4 address (a non-secure origin for the browser), or null. */
export function lanIPv4() {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs || []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}

function toml(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/**
 * Start the server. Options: wall id (default "main"), title, locale ("en"), web (extra [walls.web] keys),
 * listen host (default 0.0.0.0, so the LAN address works too), public host for the QR (default 127.0.0.1).
 */
export async function startServer({ wall = 'main', title = 'Voicewall test', locale = 'en', web = {}, host = '0.0.0.0', publicHost = '127.0.0.1', env = {} } = {}) {
  if (!fs.existsSync(BINARY)) throw new Error(`${BINARY} is missing: run \`cargo build -p voicewall\` first`);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voicewall-browser-'));
  const webKeys = Object.entries(web).map(([k, v]) => `${k} = ${toml(v)}`).join('\n');
  const config = `[server]
listen = "${host}:${port}"
public_url = "http://${publicHost}:${port}"
[storage]
data_dir = ${toml(path.join(dir, 'data'))}
[audio]
output = "null"
gap_ms = 100
[admin]
token = "${ADMIN_TOKEN}"
[[walls]]
id = ${toml(wall)}
title = ${toml(title)}
locale = ${toml(locale)}
[walls.web]
${webKeys}
`;
  const configPath = path.join(dir, 'voicewall.toml');
  fs.writeFileSync(configPath, config);
  const logPath = path.join(dir, 'server.log');
  const log = fs.openSync(logPath, 'a');
  const proc = spawn(BINARY, ['serve', '--config', configPath], {
    stdio: ['ignore', log, log],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info', ...env },
  });
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) throw new Error(`voicewall exited early (${JSON.stringify(exited)}):\n${fs.readFileSync(logPath, 'utf8')}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch (_) { /* not up yet */ }
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`voicewall did not answer /healthz:\n${fs.readFileSync(logPath, 'utf8')}`); }
    await new Promise((r) => setTimeout(r, 100));
  }
  const srv = {
    url, port, dir, configPath, logPath, proc, wallId: wall,
    /** GET a path as the operator (Bearer admin token), as a display route accepts. */
    get(p, init = {}) {
      return fetch(`${url}${p}`, { ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${ADMIN_TOKEN}` } });
    },
    /** A one-time display link for wall `id` (absolute URL): a browser opening it gets the display cookie. */
    async displayUrl(id = wall) {
      const r = await fetch(`${url}/api/admin/walls/${id}/displays`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      if (!r.ok) throw new Error(`POST /api/admin/walls/${id}/displays: ${r.status}`);
      return url + (await r.json()).url;
    },
    async wall(id = wall) {
      const r = await srv.get(`/api/walls/${id}`);
      if (!r.ok) throw new Error(`GET /api/walls/${id}: ${r.status}`);
      return r.json();
    },
    /** The join URL the wall's QR encodes right now. */
    async joinUrl(id = wall) { return (await srv.wall(id)).join.url; },
    /** Poll the wall state until pred(state) is truthy. */
    async waitWall(pred, { timeout = 20000, id = wall, message = 'wall state' } = {}) {
      const end = Date.now() + timeout;
      let s;
      for (;;) {
        s = await srv.wall(id);
        const v = pred(s);
        if (v) return v === true ? s : v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${message}: ${JSON.stringify(s).slice(0, 2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    log() { return fs.readFileSync(logPath, 'utf8'); },
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const end = Date.now() + 10000;
        while (!exited && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        if (!exited) proc.kill('SIGKILL');
      }
      fs.closeSync(log);
      if (!process.env.KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return srv;
}
