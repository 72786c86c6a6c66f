// Driven by tests/desktop-e2e.sh (under Xvfb, with tauri-driver running at DRIVER_URL): the real `voicewall`
// kiosk binary through WebDriver (W3C protocol over plain fetch, no client library).
//   1. launch (tauri:options application + args) on a temp config; /healthz answers
//   2. the window is fullscreen: its rect and the page's viewport are the whole X screen
//   3. the QR code on the screen (X root screenshot, zbarimg) decodes to the wall's join URL
//   4. a guest joins through the web join API; their avatar appears in the real window
//   5. SIGKILL of the WebKit web process: a new one starts, the view reloads (log), the wall's QR is back on
//      screen, the server never stopped
//   6. SIGTERM quits; the log shows the clean shutdown
import { execFileSync, execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const BIN = process.env.VW_E2E_BIN;
const DRIVER = process.env.DRIVER_URL;
const OUT = process.env.OUT || 'target/test-output/desktop-e2e';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => console.log(`desktop-e2e: ${m}`);

async function wd(method, p, body) {
  const r = await fetch(`${DRIVER}${p}`, {
    method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`WebDriver ${method} ${p}: ${r.status} ${JSON.stringify(j).slice(0, 500)}`);
  return j.value;
}

async function until(what, fn, timeoutMs = 30000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try { const v = await fn(); if (v) return v; last = v; } catch (e) { last = e.message; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${String(last).slice(0, 300)})`);
    await sleep(everyMs);
  }
}

function freePortSync() {
  return Number(execSync(`python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'`).toString().trim());
}

function webProcesses(appPid) {
  // WebKit's web process is a child (or grandchild, through its sandbox launcher) of the app.
  const out = execSync('ps -eo pid=,ppid=,comm=').toString().trim().split('\n').map((l) => l.trim().split(/\s+/));
  const kids = new Map();
  for (const [pid, ppid, comm] of out) { (kids.get(ppid) || kids.set(ppid, []).get(ppid)).push({ pid, comm }); }
  const found = [];
  const walk = (p) => { for (const k of kids.get(String(p)) || []) { if (/WebKitWebProces/.test(k.comm)) found.push(k.pid); walk(k.pid); } };
  walk(appPid);
  return found;
}

/** Every QR code on the screen, decoded (a first run also shows the console's address as a QR). */
function screenQrs(name) {
  const file = path.join(OUT, `${name}.png`);
  execFileSync('import', ['-window', 'root', file]);
  try { return execFileSync('zbarimg', ['-q', '--raw', file]).toString().trim().split('\n'); } catch { return []; }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voicewall-e2e-'));
const port = freePortSync();
const base = `http://127.0.0.1:${port}`;
const cfg = path.join(dir, 'voicewall.toml');
fs.writeFileSync(cfg, `[server]
listen = "127.0.0.1:${port}"
public_url = "${base}"
[storage]
data_dir = "${dir}/data"
[audio]
output = "null"
[admin]
token = "e2e-admin-token"
[[walls]]
id = "main"
title = "E2E Wall"
locale = "en"
[walls.web]
`);
const appLog = path.join(dir, 'data', 'logs');
const appLogText = () => fs.readdirSync(appLog).map((f) => fs.readFileSync(path.join(appLog, f), 'utf8')).join('');
let session;
let passed = 0;
const step = (m) => { passed++; log(`ok ${passed} - ${m}`); };

try {
  const t0 = Date.now();
  session = (await wd('POST', '/session', {
    capabilities: { alwaysMatch: { 'tauri:options': { application: BIN, args: ['--config', cfg] } } },
  })).sessionId;
  assert.ok(session, 'a WebDriver session');
  await until('/healthz', async () => (await fetch(`${base}/healthz`)).ok);
  // The app WebKitWebDriver started: a `voicewall` process with our config on its command line.
  const appPid = Number(execSync('ps -eo pid=,comm=,args=').toString().split('\n')
    .map((l) => l.trim().split(/\s+/)).find(([, comm, ...args]) => comm === 'voicewall' && args.includes(cfg))[0]);
  step(`launched (pid ${appPid}) in ${Date.now() - t0} ms`);

  // 2. fullscreen
  const screen = execSync("xdpyinfo | awk '/dimensions:/ {print $2}'").toString().trim().split('x').map(Number);
  const rect = await until('window rect', () => wd('GET', `/session/${session}/window/rect`));
  const viewport = await until('wall page', () => wd('POST', `/session/${session}/execute/sync`, {
    script: 'return window.__wall ? [innerWidth, innerHeight] : null', args: [],
  }));
  assert.deepEqual([rect.width, rect.height], screen, `window rect ${JSON.stringify(rect)} vs screen ${screen}`);
  assert.deepEqual(viewport, screen, `page viewport ${viewport} vs screen ${screen}`);
  step(`fullscreen: window ${rect.width}x${rect.height} at ${rect.x},${rect.y}, viewport ${viewport.join('x')}, screen ${screen.join('x')}`);

  // 3. QR
  // A display route: the operator's Bearer token (the kiosk window opened its own one-time display link).
  const joinUrl = (await (await fetch(`${base}/api/walls/main`, { headers: { authorization: 'Bearer e2e-admin-token' } })).json()).join.url;
  const qr = await until('a QR on screen that decodes to the join URL', () => screenQrs('wall').includes(joinUrl) && joinUrl);
  step(`the QR on screen decodes to ${qr}`);

  // 4. a guest joins through the web join API
  const token = new URL(joinUrl).searchParams.get('t');
  const page = await fetch(joinUrl);
  assert.equal(page.status, 200);
  const cookie = page.headers.get('set-cookie').split(';')[0];
  const form = new FormData();
  form.append('token', token);
  form.append('nickname', 'E2E Guest');
  form.append('avatar_mode', 'generated');
  const joined = await fetch(`${base}/api/join/main/profile`, { method: 'POST', body: form, headers: { cookie } });
  assert.ok(joined.ok, `join: ${joined.status} ${await joined.clone().text()}`);
  const inWindow = 'return window.__wall && window.__wall.participants === 1 && document.body.innerText.includes("E2E Guest")';
  await until('the guest in the real window', () => wd('POST', `/session/${session}/execute/sync`, { script: inWindow, args: [] }));
  step('a guest who joined through the web join API appears in the real window');

  // 5. kill the web process
  const before = webProcesses(appPid);
  assert.ok(before.length > 0, `a WebKit web process under the app ${appPid}:\n${execSync('ps -eo pid,ppid,comm,args --forest | cut -c1-160').toString()}`);
  for (const pid of before) process.kill(Number(pid), 'SIGKILL');
  const after = await until('a new web process', () => {
    const now = webProcesses(appPid).filter((p) => !before.includes(p));
    return now.length ? now : null;
  });
  // WebKitWebDriver ends the session with the web process, so the view is checked on the screen itself.
  assert.ok((await fetch(`${base}/healthz`)).ok, 'the server carried on');
  await until('the reload in the log', () => /web process ended: reloading the view/.test(appLogText()), 30000, 500);
  await until('the wall (its QR) back on screen', () => screenQrs('after-crash').includes(joinUrl), 60000, 500);
  step(`killed web process ${before.join(',')} → new ${after.join(',')}; the view reloaded and the wall is back on screen; the server never stopped`);

  // 6. quit: SIGTERM (what the session sends at logout/shutdown) → clean stop, exit 0
  process.kill(appPid, 'SIGTERM');
  await until('the app to exit', () => { try { process.kill(appPid, 0); return false; } catch { return true; } }, 15000);
  assert.match(appLogText(), /kiosk stopped cleanly/);
  step('SIGTERM: the kiosk stopped cleanly (store flushed)');
  await wd('DELETE', `/session/${session}`).catch(() => {});
  session = null;
  log(`${passed} passed, 0 failed`);
} catch (e) {
  log(`FAIL: ${e.stack || e}`);
  try { fs.cpSync(path.join(dir, 'data', 'logs'), path.join(OUT, 'app-logs'), { recursive: true }); } catch { /* none */ }
  process.exitCode = 1;
} finally {
  if (session) await wd('DELETE', `/session/${session}`).catch(() => {});
  if (!process.env.KEEP_TEST_DIRS) fs.rmSync(dir, { recursive: true, force: true });
}
