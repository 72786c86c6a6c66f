// Shared helpers for the browser tests (tests/browser/*.test.mjs) and benches.
// Chromium is the system one (/usr/bin/chromium); playwright-core never downloads a browser.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOT_DIR = path.join(ROOT, 'target', 'test-output', 'screenshots');
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic',
];

/** Launch the system chromium (fresh temp profile per launch). `extraArgs` are appended. */
export async function launchChromium({ extraArgs = [], ...opts } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required', ...extraArgs],
    ...opts,
  });
}

/** A new page of the given viewport; console errors and page errors are collected in page.__errors. */
export async function newPage(browser, { width = 1920, height = 1080, ...ctx } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, deviceScaleFactor: 1, ...ctx });
  const page = await context.newPage();
  page.__errors = [];
  page.on('pageerror', (e) => page.__errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') page.__errors.push(`console: ${m.text()}`); });
  return page;
}

/** Save a screenshot to target/test-output/screenshots/{name}.png and return its path. */
export async function saveScreenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Poll fn (run in the page) until it returns truthy; returns its value. */
export async function waitFor(page, fn, arg, { timeout = 10000, message = 'condition' } = {}) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    return h.jsonValue();
  } catch (err) {
    throw new Error(`timed out waiting for ${message}: ${err.message.split('\n')[0]}`);
  }
}

/** Open a wall page and wait until window.__wall is connected with `participants` people (if given). */
export async function openWall(page, url, { participants, timeout = 20000 } = {}) {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await waitFor(page, (n) => window.__wall && window.__wall.connected && (n == null || window.__wall.participants === n),
    participants ?? null, { timeout, message: `wall connected with ${participants ?? 'any'} participants` });
}

/** Wait until the avatar layout has stopped gliding. */
export async function waitForSettled(page, timeout = 10000) {
  await waitFor(page, () => window.__wall && window.__wall.settled, null, { timeout, message: 'layout settled' });
  // let the last compositor transitions finish
  await page.waitForTimeout(100);
}

export function intersects(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/**
 * Measure frame times with requestAnimationFrame for `ms` milliseconds inside the page.
 * Returns {frames, medianFps, p5Fps, meanFps, maxFrameMs}. p5Fps is the 5th percentile fps (i.e. from the
 * 95th percentile frame time).
 */
export async function measureFps(page, ms) {
  const deltas = await page.evaluate((dur) => new Promise((resolve) => {
    const out = [];
    let last = 0;
    const t0 = performance.now();
    function f(t) {
      if (last) out.push(t - last);
      last = t;
      if (t - t0 < dur) requestAnimationFrame(f); else resolve(out);
    }
    requestAnimationFrame(f);
  }), ms);
  return fpsStats(deltas);
}

export function fpsStats(deltas) {
  const s = [...deltas].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.max(0, Math.floor(p * (s.length - 1))))];
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return {
    frames: s.length,
    medianFps: 1000 / q(0.5),
    p5Fps: 1000 / q(0.95),
    meanFps: 1000 / mean,
    maxFrameMs: s[s.length - 1],
  };
}

// ---------- the operator's side (console.test.mjs) ----------

import { ADMIN_TOKEN } from './server.mjs';

export { ADMIN_TOKEN };

/** Call the real server as the operator (admin Bearer): {status, data, headers}. */
export async function adminApi(srv, method, urlPath, body) {
  const r = await fetch(`${srv.url}${urlPath}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let data = text;
  try { data = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
  return { status: r.status, data, headers: r.headers };
}

/** Poll an async fn until it returns truthy (bounded; the value is returned). */
export async function until(fn, { timeout = 20000, message = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out waiting for ${message}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A guest on their phone: opens the wall's current join link, saves a profile (generated avatar).
 * Returns {participant, cookie, token, joinUrl}. The join link is read as the operator (display routes
 * accept the admin Bearer).
 */
export async function guestJoins(srv, nickname) {
  const state = await adminApi(srv, 'GET', `/api/walls/${srv.wallId}`);
  if (state.status !== 200) throw new Error(`wall state: ${state.status}`);
  const joinUrl = state.data.join.url;
  const token = new URL(joinUrl).searchParams.get('t');
  const page = await fetch(joinUrl);
  if (page.status !== 200) throw new Error(`join page: ${page.status}`);
  const cookie = page.headers.get('set-cookie').split(';')[0];
  const profile = new FormData();
  profile.append('token', token);
  profile.append('nickname', nickname);
  profile.append('avatar_mode', 'generated');
  const p = await fetch(`${srv.url}/api/join/${srv.wallId}/profile`, { method: 'POST', body: profile, headers: { cookie } });
  if (!p.ok) throw new Error(`profile: ${p.status} ${await p.text()}`);
  return { participant: (await p.json()).participant, cookie, token, joinUrl };
}

/** The guest sends a voice file from tests/fixtures/audio; returns the fetch Response. */
export async function guestSpeaks(srv, guest, file = 'hello.ogg', uploadId = `up-${Math.random().toString(36).slice(2)}`) {
  const voice = new FormData();
  voice.append('token', guest.token);
  voice.append('upload_id', uploadId);
  voice.append('audio', new Blob([fs.readFileSync(path.join(ROOT, 'tests/fixtures/audio', file))]), file);
  return fetch(`${srv.url}/api/join/${srv.wallId}/voice`, { method: 'POST', body: voice, headers: { cookie: guest.cookie } });
}
