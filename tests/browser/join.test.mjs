// Browser tests of the guest's join page (ui/join.*) against the REAL server binary (target/debug/voicewall).
// Run: cargo build -p voicewall && node --test tests/browser/join.test.mjs
// Screenshots (phone size 390x844): target/test-output/screenshots/join-*.png
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium, newPage, waitFor, saveScreenshot } from './lib.mjs';
import { startServer, lanIPv4, ROOT } from './server.mjs';

const PHONE = { width: 390, height: 844 };
const FIXTURES = path.join(ROOT, 'tests', 'fixtures', 'audio');
const SPEECH = path.join(FIXTURES, 'join-speech.wav');

let browser;
let srv; // the main wall: 2 messages per minute per phone, to reach 429 quickly
let rotating; // a wall whose token rotates every 10 s with no grace, to see an expired link
let rotatingUrl;

before(async () => {
  [srv, rotating] = await Promise.all([
    startServer({ web: { messages_per_minute: 2 } }),
    startServer({ locale: 'zh-CN', web: { token_rotate_s: 10, token_grace_s: 0 } }),
  ]);
  rotatingUrl = await rotating.joinUrl();
  browser = await launchChromium({
    extraArgs: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${SPEECH}`],
  });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
  await rotating?.stop();
});

async function phone(locale = 'en-US') {
  const page = await newPage(browser, { ...PHONE, locale, hasTouch: false });
  page.__404 = [];
  page.on('response', (r) => { if (r.status() === 404) page.__404.push(new URL(r.url()).pathname); });
  // Every request the page makes (the network log): the page must not poll /me.
  page.__requests = [];
  page.on('request', (r) => page.__requests.push(new URL(r.url()).pathname));
  return page;
}

/** Page errors, less the expected 404 of `GET /me` before this phone joined. */
function realErrors(page) {
  const unexpected404 = page.__404.filter((p) => !/^\/api\/join\/[^/]+\/me$/.test(p));
  assert.deepEqual(unexpected404, [], 'unexpected 404s');
  return page.__errors.filter((e) => !/status of 404/.test(e));
}

async function openJoin(page, url) {
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await waitFor(page, () => ['profile', 'talk', 'notice'].includes(document.body.dataset.view), null, { message: 'join page ready' });
}

async function joinAs(page, nickname) {
  await page.fill('#nickname', nickname);
  await page.click('#join-btn');
  await waitFor(page, () => document.body.dataset.view === 'talk', null, { message: 'talk view' });
}

async function visibleError(page, sel) {
  await waitFor(page, (s) => { const e = document.querySelector(s); return e && !e.hidden && e.textContent.length > 0; }, sel, { message: `${sel} shown` });
  return page.textContent(sel);
}

function readyMessage(state, participantId) {
  return state.messages.find((m) => m.participant_id === participantId && m.status === 'ready');
}

test('full flow: nickname, generated avatar, hold to talk (fake mic), preview, send → ready on the wall', async () => {
  const page = await phone();
  const t0 = Date.now();
  const url = await srv.joinUrl();
  assert.match(url, /\/join\/main\?t=[\w-]+$/);
  await openJoin(page, url);
  assert.equal(await page.evaluate(() => document.body.dataset.view), 'profile');
  assert.equal(await page.evaluate(() => window.isSecureContext), true, '127.0.0.1 is a secure context');
  await saveScreenshot(page, 'join-profile');

  await page.fill('#nickname', 'Ada Lovelace');
  await saveScreenshot(page, 'join-profile-filled');
  await page.click('#join-btn');
  await waitFor(page, () => document.body.dataset.view === 'talk', null, { message: 'talk view' });
  assert.ok(await page.isVisible('#talk-btn'), 'hold-to-talk button');
  assert.ok(!(await page.isVisible('#fallback')), 'no fallback in a secure context');
  await saveScreenshot(page, 'join-talk');

  // Hold to talk for ~2.5 s.
  const box = await page.locator('#talk-btn').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await waitFor(page, () => document.body.classList.contains('recording'), null, { message: 'recording started' });
  const recStart = Date.now();
  await page.waitForTimeout(1200);
  await saveScreenshot(page, 'join-recording');
  await page.waitForTimeout(Math.max(0, 2500 - (Date.now() - recStart)));
  await page.mouse.up();

  // Preview: it plays back locally.
  await waitFor(page, () => !document.getElementById('preview').hidden, null, { message: 'preview shown' });
  const mime = await page.evaluate(() => window.__join.recorded.blob.type);
  assert.match(mime, /^audio\/(webm|mp4|ogg)/, mime);
  await page.click('#play-btn');
  await waitFor(page, () => document.getElementById('preview-audio').currentTime > 0.2, null, { message: 'preview playing' });
  await saveScreenshot(page, 'join-preview');

  // Send, with progress; then "you're on the wall".
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/api/join/main/voice')),
    page.click('#send-btn'),
  ]);
  assert.equal(resp.status(), 201);
  const { message_id: mid } = await resp.json();
  await waitFor(page, () => !document.getElementById('onwall').hidden, null, { message: 'on the wall' });
  const pid = await page.evaluate(() => window.__join.me.participant.id);
  const state = await srv.waitWall((s) => readyMessage(s, pid), { message: 'message ready' });
  const flowMs = Date.now() - t0;
  assert.equal(state.id, mid);
  assert.ok(state.duration_ms >= 2000 && state.duration_ms <= 4000, `duration_ms ${state.duration_ms}`);
  await waitFor(page, (id) => document.querySelector(`#sent li[data-id="${id}"][data-status="ready"]`), mid, { message: 'page shows ready' });
  await saveScreenshot(page, 'join-sent');
  // The page learnt "ready" from its own stream: one /me (before it joined, a 404), never polled.
  const meReads = page.__requests.filter((p) => p === '/api/join/main/me');
  assert.ok(meReads.length <= 1, `/me read ${meReads.length} times: ${page.__requests.join(' ')}`);
  // One stream since the talk view opened; a second only if the guest took longer than the linger
  // (10 s) to record and send, which closes the first.
  const streams = () => page.__requests.filter((p) => p === '/api/join/main/me/events').length;
  assert.ok(streams() >= 1 && streams() <= 2, `streams opened: ${streams()}`);
  // And the stream keeps telling: the voice is played on the (null) speakers, the phone learns it.
  await waitFor(page, (id) => (window.__join.messages.find((m) => m.id === id) || {}).played_count >= 1, mid, { message: 'played count on the phone' });
  assert.ok(page.__requests.filter((p) => p === '/api/join/main/me').length <= 1, 'still no /me polling');
  // Nothing in flight any more: the page gives its connection back (the server's connection cap is
  // shared with the webhooks and displays), and opens no other.
  const opened = streams();
  await waitFor(page, () => window.__join.live.source === null, null, { timeout: 20000, message: 'stream closed once the voice was played' });
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(streams(), opened, 'no stream reopened after it settled');
  assert.ok(page.__requests.filter((p) => p === '/api/join/main/me').length <= 1, 'no /me polling once closed either');

  const wall = await srv.wall();
  const p = wall.participants.find((x) => x.id === pid);
  assert.equal(p.display_name, 'Ada Lovelace');
  assert.match(pid, /^web:/);
  const avatar = await srv.get(p.avatar_url);
  assert.equal(avatar.headers.get('content-type'), 'image/svg+xml', 'the generated avatar');
  const upload = await page.evaluate(() => Math.round(window.__join.lastUploadMs));
  console.log(`# join flow: page open → message ready on the wall in ${flowMs} ms (hold 2.5 s; upload ${upload} ms; recorded ${mime}; decoded ${state.duration_ms} ms)`);
  assert.deepEqual(realErrors(page), []);
  await page.context().close();
});

test('a selfie is cropped to a 256x256 JPEG on the phone; the name can be changed later (same participant)', async () => {
  const page = await phone();
  await openJoin(page, await srv.joinUrl());
  // Any non-square picture will do: a screenshot of the page itself (390x844 PNG).
  const shot = await page.screenshot();
  await page.setInputFiles('#avatar-camera', { name: 'selfie.png', mimeType: 'image/png', buffer: shot });
  await waitFor(page, () => !document.getElementById('avatar-img').hidden, null, { message: 'avatar preview' });
  assert.equal(await page.getAttribute('#avatar-camera', 'capture'), 'user');
  assert.equal(await page.getAttribute('#avatar-camera', 'accept'), 'image/*');
  await page.fill('#nickname', 'Grace');
  await saveScreenshot(page, 'join-profile-photo');
  const sent = await page.evaluate(() => ({ type: window.__join.avatar.blob.type, size: window.__join.avatar.blob.size }));
  assert.equal(sent.type, 'image/jpeg', 'cropped and encoded on the phone');
  assert.ok(sent.size < shot.length / 2, `shrunk on the phone: ${sent.size} < ${shot.length}`);
  await joinAs(page, 'Grace');
  const me = await page.evaluate(() => window.__join.me.participant);
  const r = await srv.get(me.avatar_url);
  assert.equal(r.headers.get('content-type'), 'image/jpeg');
  const jpeg = Buffer.from(await r.arrayBuffer());
  const dims = await page.evaluate(async (b64) => {
    const img = await createImageBitmap(await (await fetch(`data:image/jpeg;base64,${b64}`)).blob());
    return [img.width, img.height];
  }, jpeg.toString('base64'));
  assert.deepEqual(dims, [256, 256]);

  // Change the name: tap the chip, edit, save.
  await page.click('#me-chip');
  await waitFor(page, () => document.body.dataset.view === 'profile', null, { message: 'edit profile' });
  await page.fill('#nickname', 'Grace Hopper');
  await page.click('#join-btn');
  await waitFor(page, () => document.body.dataset.view === 'talk', null, { message: 'back to talk' });
  const wall = await srv.waitWall((s) => s.participants.find((p) => p.id === me.id && p.display_name === 'Grace Hopper'), { message: 'renamed' });
  assert.equal(wall.avatar_url, me.avatar_url, 'the photo is kept');
  assert.deepEqual(realErrors(page), []);
  await page.context().close();
});

test('fallback: on a non-secure origin the page records with the phone’s own recorder (file input)', async () => {
  const page = await phone();
  const url = new URL(await srv.joinUrl());
  const lan = lanIPv4();
  if (lan) {
    url.hostname = lan; // http://<LAN IP> is not a secure context: no getUserMedia
  } else {
    await page.addInitScript(() => { Object.defineProperty(window, 'isSecureContext', { get: () => false }); delete Navigator.prototype.mediaDevices; });
  }
  await openJoin(page, url.toString());
  assert.equal(await page.evaluate(() => window.isSecureContext), false);
  await joinAs(page, 'Ming');
  assert.ok(await page.isVisible('#fallback'), 'fallback shown');
  assert.ok(!(await page.isVisible('#talk-btn')), 'no hold button without a microphone');
  assert.equal(await page.getAttribute('#fallback-input', 'accept'), 'audio/*');
  assert.notEqual(await page.getAttribute('#fallback-input', 'capture'), null);
  await saveScreenshot(page, 'join-fallback');

  // What iOS's recorder hands back: AAC in MP4.
  await page.setInputFiles('#fallback-input', path.join(FIXTURES, 'hello.m4a'));
  await waitFor(page, () => !document.getElementById('preview').hidden, null, { message: 'preview' });
  await saveScreenshot(page, 'join-fallback-preview');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/voice')),
    page.click('#send-btn'),
  ]);
  assert.equal(resp.status(), 201);
  const pid = await page.evaluate(() => window.__join.me.participant.id);
  const m = await srv.waitWall((s) => readyMessage(s, pid), { message: 'fallback message ready' });
  assert.ok(m.duration_ms >= 2000 && m.duration_ms <= 4000, `duration_ms ${m.duration_ms}`);
  await waitFor(page, () => !document.getElementById('onwall').hidden && !document.getElementById('fallback').hidden, null, { message: 'can send more' });
  assert.deepEqual(realErrors(page), []);
  await page.context().close();
});

test('expired, invalid and missing tokens: a localized "scan the screen again" page', async () => {
  // Invalid (Chinese phone): 403.
  let page = await phone('zh-CN');
  const base = new URL(await srv.joinUrl());
  let resp = await page.goto(`${base.origin}/join/main?t=forged`);
  assert.equal(resp.status(), 403);
  assert.match(await page.textContent('body'), /请重新扫描屏幕上的二维码/);
  await saveScreenshot(page, 'join-invalid-zh');
  resp = await page.goto(`${base.origin}/join/main`);
  assert.equal(resp.status(), 403, 'missing token');
  await page.context().close();

  // Expired (English phone): the rotating wall's first URL, once its token has rotated past the grace.
  page = await phone('en-US');
  await rotating.waitWall((s) => s.join.url !== rotatingUrl, { timeout: 15000, message: 'token rotated' });
  resp = await page.goto(rotatingUrl);
  assert.equal(resp.status(), 410);
  assert.match(await page.textContent('h1'), /changed/i);
  assert.match(await page.textContent('body'), /Scan the QR code on the screen again/);
  await saveScreenshot(page, 'join-expired');
  // The current one works.
  resp = await page.goto(await rotating.joinUrl());
  assert.equal(resp.status(), 200);
  await page.context().close();
});

test('limits: long nickname, non-image avatar, non-audio upload (415), too many messages (429) — the page shows the reason', async () => {
  const page = await phone();
  await openJoin(page, await srv.joinUrl());

  await page.fill('#nickname', 'A very very long nickname indeed');
  let [resp] = await Promise.all([page.waitForResponse((r) => r.url().includes('/profile')), page.click('#join-btn')]);
  assert.equal(resp.status(), 422);
  assert.match(await visibleError(page, '#profile-error'), /too long.*24/);
  await saveScreenshot(page, 'join-error-nickname');

  await page.fill('#nickname', 'Lin');
  await page.setInputFiles('#avatar-file', { name: 'photo.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is not a jpeg, just text pretending to be one') });
  [resp] = await Promise.all([page.waitForResponse((r) => r.url().includes('/profile')), page.click('#join-btn')]);
  assert.equal(resp.status(), 415);
  assert.match(await visibleError(page, '#profile-error'), /not a picture/);
  await saveScreenshot(page, 'join-error-avatar');

  await page.click('#avatar-generated');
  await joinAs(page, 'Lin');

  // A file that is not audio (the file input is there for every browser, visible or not).
  await page.setInputFiles('#fallback-input', { name: 'voice.m4a', mimeType: 'audio/mp4', buffer: Buffer.from('<html>not audio</html>') });
  await waitFor(page, () => !document.getElementById('preview').hidden, null, { message: 'preview' });
  [resp] = await Promise.all([page.waitForResponse((r) => r.url().includes('/voice')), page.click('#send-btn')]);
  assert.equal(resp.status(), 415);
  assert.match(await visibleError(page, '#talk-error'), /not a voice recording/);
  await saveScreenshot(page, 'join-error-not-audio');

  // Two per minute per phone on this wall (the refused upload above counted as one attempt).
  const before = (await srv.wall()).messages.length;
  await page.click('#discard-btn');
  await page.setInputFiles('#fallback-input', path.join(FIXTURES, 'hello.ogg'));
  [resp] = await Promise.all([page.waitForResponse((r) => r.url().includes('/voice')), page.click('#send-btn')]);
  assert.equal(resp.status(), 201);
  await page.setInputFiles('#fallback-input', path.join(FIXTURES, 'hello.webm'));
  [resp] = await Promise.all([page.waitForResponse((r) => r.url().includes('/voice')), page.click('#send-btn')]);
  assert.equal(resp.status(), 429);
  assert.match(await visibleError(page, '#talk-error'), /too fast.*seconds/);
  await saveScreenshot(page, 'join-error-429');
  const after = (await srv.wall()).messages.length;
  assert.equal(after, before + 1, 'only the accepted upload became a message');
  await page.context().close();
});

test('the profile page in Chinese', async () => {
  const page = await phone('zh-CN');
  await openJoin(page, await srv.joinUrl());
  assert.equal(await page.textContent('#join-btn'), '加入');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-CN');
  await page.fill('#nickname', '小明');
  await saveScreenshot(page, 'join-profile-zh');
  await joinAs(page, '小明');
  assert.equal(await page.textContent('#hold-hint'), '按住 说话');
  await saveScreenshot(page, 'join-talk-zh');
  assert.ok(fs.existsSync(SPEECH));
  await page.context().close();
});
