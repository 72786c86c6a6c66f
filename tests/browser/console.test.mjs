// The operator's console (/admin) on the REAL server (target/debug/voicewall serve, null audio output) in
// real Chromium at phone size (390×844): sign-in, pre-moderation, remove while playing, ban, rotate,
// export, purge — each driven by tapping the console, each checked on the server (admin API, the wall
// page opened with a display credential from the console, the guest's join API).
// "Played" on the null output = now_playing / queue of GET /api/admin/playback.
//
// Screenshots: target/test-output/console-*.png (390×844 zh-CN, 1280×800 en).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  launchChromium, newPage, waitFor, ROOT, ADMIN_TOKEN, adminApi, until, guestJoins, guestSpeaks,
} from './lib.mjs';
import { startServer } from './server.mjs';

const PHONE = { width: 390, height: 844 };
const OUT = path.join(ROOT, 'target', 'test-output');

async function shot(page, name, opts = {}) {
  fs.mkdirSync(OUT, { recursive: true });
  const file = path.join(OUT, `console-${name}.png`);
  await page.screenshot({ path: file, ...opts });
  return file;
}

/** Open /admin and sign in through the form; resolves when the console shows the wall's live list. */
async function signIn(page, srv) {
  await page.goto(`${srv.url}/admin`, { waitUntil: 'domcontentloaded' });
  await waitFor(page, () => window.__console && window.__console.view === 'login', null, { message: 'sign-in form' });
  await page.fill('#token', ADMIN_TOKEN);
  await page.click('#login-btn');
  await consoleReady(page);
}
async function consoleReady(page) {
  await waitFor(page, () => window.__console.view === 'console' && window.__console.connected, null, { message: 'console connected' });
}

/** The console's view of a message, once pred holds for it. */
function consoleMessage(page, pid, pred = 'true', message = 'message in the console') {
  return waitFor(page, ([p, src]) => {
    const m = window.__console.messages().find((x) => x.participant_id === p);
    // eslint-disable-next-line no-new-func
    return m && new Function('m', `return ${src}`)(m) ? m : null;
  }, [pid, pred], { timeout: 20000, message });
}

/** Tap a message's action button in the console list. */
async function tap(page, mid, act) {
  const sel = `#messages li[data-id="${mid}"] button[data-act="${act}"]`;
  await page.waitForSelector(sel, { timeout: 10000 });
  await page.click(sel);
}

async function playback(srv) {
  const r = await adminApi(srv, 'GET', '/api/admin/playback');
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data;
}
const playingOrQueued = (p, mid) => (p.now_playing && p.now_playing.message_id === mid) || p.queue.some((q) => q.message_id === mid);

/** Open the wall on a second page with a one-time display link made by the console ("open a display"). */
async function openDisplay(browser, console, srv) {
  await console.click('.tabs button[data-tab="wall"]');
  await console.click('#display-btn');
  const link = await waitFor(console, () => { const a = document.getElementById('display-link'); return a && a.href.includes('/display/') ? a.href : null; }, null, { message: 'display link' });
  assert.ok(link.startsWith(`${srv.url}/display/`), link);
  const wall = await newPage(browser, { width: 1280, height: 720 });
  await wall.goto(link, { waitUntil: 'domcontentloaded' });
  assert.equal(new URL(wall.url()).pathname, `/wall/${srv.wallId}`, 'the one-time link lands on the clean wall URL');
  await waitFor(wall, () => window.__wall && window.__wall.connected, null, { timeout: 20000, message: 'wall connected' });
  await console.click('.tabs button[data-tab="messages"]');
  return { wall, link };
}

async function withConsole(opts, fn) {
  const srv = await startServer({ title: '婚礼 Wedding', ...opts });
  const browser = await launchChromium();
  try {
    await fn(srv, browser);
  } catch (err) {
    err.message += `\n--- server log (tail) ---\n${srv.log().split('\n').slice(-40).join('\n')}`;
    throw err;
  } finally {
    await browser.close();
    await srv.stop();
  }
}

test('sign-in: a wrong token is refused on the form, the right one opens the console; #token= signs in and is wiped; 401 and a dropped network are recovered', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'zh-CN' });
    await page.goto(`${srv.url}/admin`, { waitUntil: 'domcontentloaded' });
    await waitFor(page, () => window.__console && window.__console.view === 'login', null, { message: 'sign-in form' });
    await shot(page, '390-login');
    await page.fill('#token', 'not-the-token');
    await page.click('#login-btn');
    await page.waitForSelector('#login-error:not([hidden])');
    assert.match(await page.textContent('#login-error'), /令牌不正确/);
    assert.equal(await page.evaluate(() => window.__console.view), 'login');

    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-btn');
    await consoleReady(page);
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === 'vw_session');
    assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(cookies));
    // The session survives a reload (no token kept in the page).
    await page.reload({ waitUntil: 'domcontentloaded' });
    await consoleReady(page);

    // Signed out elsewhere (the cookie is gone): the next call answers 401 and the page goes back to the form.
    await page.context().clearCookies();
    // The next call answers 401: the tab's, or a load the reload started that was still in flight (on a
    // loaded machine it lands first and the form is back before the tab can be clicked — as it should).
    if (await page.evaluate(() => window.__console.view === 'console')) {
      await page.click('.tabs button[data-tab="health"]', { timeout: 5000 }).catch(() => { /* the form came back first */ });
    }
    await waitFor(page, () => window.__console.view === 'login', null, { message: 'back to sign-in after 401' });

    // The network drops: a visible "reconnecting" state, then back by itself.
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-btn');
    await consoleReady(page);
    await page.context().setOffline(true);
    await page.click('.tabs button[data-tab="playback"]');
    await page.click('#pb-skip');
    await page.waitForSelector('#conn:not([hidden])');
    assert.equal(await page.evaluate(() => window.__console.reconnecting), true);
    await shot(page, '390-reconnecting');
    await page.context().setOffline(false);
    await waitFor(page, () => !window.__console.reconnecting && window.__console.connected, null, { timeout: 30000, message: 'recovered after the network came back' });
    assert.equal(await page.isHidden('#conn'), true);

    // Sign out → the form; the session is gone on the server too.
    await page.click('#logout-btn');
    await waitFor(page, () => window.__console.view === 'login', null, { message: 'signed out' });
    const after = await page.evaluate(() => fetch('/api/admin/whoami').then((r) => r.status));
    assert.equal(after, 401);

    // The kiosk overlay's QR: /admin#token=… signs in and the fragment is wiped.
    const phone = await newPage(browser, { ...PHONE, locale: 'en' });
    await phone.goto(`${srv.url}/admin#token=${encodeURIComponent(ADMIN_TOKEN)}`, { waitUntil: 'domcontentloaded' });
    await consoleReady(phone);
    assert.equal(new URL(phone.url()).hash, '');
    assert.ok(!phone.url().includes(ADMIN_TOKEN));
    assert.deepEqual(phone.__errors.filter((e) => !/Failed to load resource/.test(e)), []);
  });
});

test('pre-moderation: a held voice is neither on the wall nor played until approved, then it appears and plays; listen plays it in the browser', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'zh-CN' });
    await signIn(page, srv);
    await page.click('#moderation button[data-mode="pre"]');
    await until(async () => (await adminApi(srv, 'GET', '/api/admin/walls')).data.find((w) => w.id === srv.wallId).moderation === 'pre', { message: 'moderation pre' });
    await waitFor(page, () => document.querySelector('#moderation button[data-mode="pre"]').getAttribute('aria-checked') === 'true', null, { message: 'switch shows pre' });

    const { wall } = await openDisplay(browser, page, srv);
    const ada = await guestJoins(srv, 'Ada 小红');
    const r = await guestSpeaks(srv, ada, 'hello.ogg');
    assert.equal(r.status, 201, await r.text());

    // Held: pending in the console (live, from the admin SSE), ready to listen.
    const held = await consoleMessage(page, ada.participant.id, "m.status === 'ready' && m.moderation === 'pending'", 'held message ready');
    await page.waitForSelector(`#messages li[data-id="${held.id}"][data-moderation="pending"]`);
    assert.equal(await page.isVisible('#pending-badge'), true);
    await shot(page, '390-messages-held');
    // …not on the wall (page and state), not played.
    const st = await adminApi(srv, 'GET', `/api/walls/${srv.wallId}`);
    assert.equal(st.data.messages.length, 0, JSON.stringify(st.data.messages));
    assert.equal(await wall.evaluate(() => window.__wall.messages), 0);
    const p0 = await playback(srv);
    assert.ok(!playingOrQueued(p0, held.id), JSON.stringify(p0));

    // Listen in this browser: the page's own <audio> plays the media (the operator's session opens it).
    await tap(page, held.id, 'listen');
    await waitFor(page, () => { const a = document.getElementById('listen'); return a.readyState >= 2 && !a.error; }, null, { message: 'the browser loaded the voice' });
    assert.equal(await page.evaluate(() => window.__console.listening), held.id);
    assert.ok(!playingOrQueued(await playback(srv), held.id), 'listening never reaches the speakers');
    await tap(page, held.id, 'listen'); // stop

    // Approve → on the wall, and played on the speakers.
    await tap(page, held.id, 'approve');
    await waitFor(wall, () => window.__wall.messages === 1, null, { message: 'approved message on the wall' });
    await until(async () => playingOrQueued(await playback(srv), held.id), { message: 'approved message played' });
    await waitFor(page, (id) => document.querySelector(`#messages li[data-id="${id}"]`)?.dataset.moderation === 'approved', held.id, { message: 'console shows approved' });
    await page.click('.tabs button[data-tab="playback"]');
    await waitFor(page, () => document.getElementById('now-name').textContent.includes('Ada'), null, { timeout: 10000, message: 'now playing in the console' });
    await shot(page, '390-playback');
    assert.deepEqual(page.__errors.filter((e) => !/Failed to load resource/.test(e)), []);
  });
});

test('remove while playing: the voice stops and leaves the wall; bulk approve; queue "play next" and remove', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'en' });
    await signIn(page, srv);
    const { wall } = await openDisplay(browser, page, srv);
    const bob = await guestJoins(srv, 'Bob');
    assert.equal((await guestSpeaks(srv, bob, 'hello.ogg')).status, 201);
    const m = await consoleMessage(page, bob.participant.id, "m.status === 'ready'", 'Bob ready');
    await until(async () => { const p = await playback(srv); return p.now_playing && p.now_playing.message_id === m.id; }, { message: 'Bob playing' });
    await waitFor(wall, () => window.__wall.messages === 1, null, { message: 'on the wall' });
    await tap(page, m.id, 'remove');
    await until(async () => { const p = await playback(srv); return !playingOrQueued(p, m.id); }, { message: 'stopped and out of the queue' });
    await waitFor(wall, () => window.__wall.messages === 0, null, { message: 'off the wall' });
    await waitFor(page, (id) => document.querySelector(`#messages li[data-id="${id}"]`)?.dataset.moderation === 'removed', m.id, { message: 'console shows removed' });

    // Pre-moderation, three held voices, one tap approves them all; the speakers' queue in order.
    await page.click('#moderation button[data-mode="pre"]');
    await until(async () => (await adminApi(srv, 'GET', '/api/admin/walls')).data[0].moderation === 'pre', { message: 'pre' });
    await adminApi(srv, 'POST', '/api/admin/playback/pause');
    const guests = [];
    for (const name of ['Cleo', 'Dan', 'Eve']) {
      const g = await guestJoins(srv, name);
      assert.equal((await guestSpeaks(srv, g, 'hello.ogg')).status, 201);
      guests.push(await consoleMessage(page, g.participant.id, "m.status === 'ready'", `${name} ready`));
    }
    await page.waitForSelector('#approve-all:not([hidden])');
    await page.click('#approve-all');
    await until(async () => (await adminApi(srv, 'GET', `/api/admin/walls/${srv.wallId}/messages`)).data.messages.filter((x) => x.moderation === 'approved').length === 3, { message: 'all three approved' });
    await page.click('.tabs button[data-tab="playback"]');
    const queued = await until(async () => { const p = await playback(srv); const ids = [p.now_playing?.message_id, ...p.queue.map((q) => q.message_id)]; return guests.every((g) => ids.includes(g.id)) && p; }, { message: 'three queued' });
    if (queued.queue.length >= 2) {
      const last = queued.queue[queued.queue.length - 1].message_id;
      await page.waitForSelector(`#queue li[data-id="${last}"] button[data-act="next"]`);
      await page.click(`#queue li[data-id="${last}"] button[data-act="next"]`);
      await until(async () => (await playback(srv)).queue[0].message_id === last, { message: 'play next moved it to the front' });
      await page.waitForSelector(`#queue li[data-id="${last}"] button[data-act="dequeue"]`);
      await page.click(`#queue li[data-id="${last}"] button[data-act="dequeue"]`);
      await until(async () => !(await playback(srv)).queue.some((q) => q.message_id === last), { message: 'removed from the queue' });
    }
    await page.click('#pb-stop');
    await until(async () => { const p = await playback(srv); return !p.now_playing && p.queue.length === 0; }, { message: 'stopped' });
  });
});

test('ban: the person and their messages leave the wall; unban brings them back', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'zh-CN' });
    await signIn(page, srv);
    const { wall } = await openDisplay(browser, page, srv);
    const troll = await guestJoins(srv, 'Troll');
    assert.equal((await guestSpeaks(srv, troll, 'hello.ogg')).status, 201);
    const m = await consoleMessage(page, troll.participant.id, "m.status === 'ready'", 'troll ready');
    await waitFor(wall, (pid) => !!document.querySelector(`[data-pid="${pid}"]`) && window.__wall.messages === 1, troll.participant.id, { message: 'troll on the wall' });
    await tap(page, m.id, 'ban');
    await waitFor(wall, (pid) => !document.querySelector(`[data-pid="${pid}"]`) && window.__wall.messages === 0, troll.participant.id, { message: 'troll gone from the wall' });
    const st = await adminApi(srv, 'GET', `/api/walls/${srv.wallId}`);
    assert.ok(!st.data.participants.some((p) => p.id === troll.participant.id), 'not in the wall state');
    await consoleMessage(page, troll.participant.id, 'm.banned', 'console shows banned');
    // Their next voice is refused with a message for their phone.
    const again = await guestSpeaks(srv, troll, 'hello.ogg');
    assert.ok(again.status >= 400, `a banned guest's voice: ${again.status}`);
    const body = await again.json();
    assert.ok(body.code && body.message, JSON.stringify(body));
    await shot(page, '390-messages-banned');
    await tap(page, m.id, 'unban');
    await waitFor(wall, (pid) => !!document.querySelector(`[data-pid="${pid}"]`), troll.participant.id, { message: 'back after unban' });
  });
});

test('rotate: the old join link is refused at once, the new one works; open a display shows a QR of its link', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'zh-CN' });
    await signIn(page, srv);
    const before = await guestJoins(srv, 'Early');
    await page.click('.tabs button[data-tab="wall"]');
    await page.click('#rotate-btn');
    await page.waitForSelector('#toast:not([hidden]):not(.bad)');
    const state = await adminApi(srv, 'GET', `/api/walls/${srv.wallId}`);
    assert.notEqual(state.data.join.url, before.joinUrl, 'a new join link');
    // The old token: refused for a new profile (a new phone) and for a voice.
    const profile = new FormData();
    profile.append('token', before.token);
    profile.append('nickname', 'Late');
    profile.append('avatar_mode', 'generated');
    const late = await fetch(`${srv.url}/api/join/${srv.wallId}/profile`, { method: 'POST', body: profile });
    assert.ok(late.status === 403 || late.status === 410, `old token profile: ${late.status}`);
    const oldVoice = await guestSpeaks(srv, before, 'hello.ogg');
    assert.ok(oldVoice.status === 403 || oldVoice.status === 410, `old token voice: ${oldVoice.status}`);
    // The new link works.
    const fresh = await guestJoins(srv, 'Fresh');
    assert.equal((await guestSpeaks(srv, fresh, 'hello.ogg')).status, 201);

    // Open a display: a one-time link and its QR (decoded from the screen).
    await page.click('#display-btn');
    await page.waitForSelector('#display-out:not([hidden]) svg');
    const link = await page.getAttribute('#display-link', 'href');
    const qrFile = path.join(OUT, 'console-display-qr.png');
    fs.mkdirSync(OUT, { recursive: true });
    await page.locator('#display-qr').screenshot({ path: qrFile });
    const decoded = execFileSync('zbarimg', ['-q', '--raw', qrFile]).toString().trim();
    assert.equal(decoded, link);
    await shot(page, '390-wall-display', { fullPage: true });
    // Single use: the first visit opens the wall, the second is refused.
    const once = await fetch(link, { redirect: 'manual' });
    assert.equal(once.status, 303);
    const twice = await fetch(link, { redirect: 'manual' });
    assert.ok(twice.status >= 400, `second use: ${twice.status}`);
  });
});

test('export: the console downloads a zip with every approved voice and its manifest', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'en', acceptDownloads: true });
    await signIn(page, srv);
    const files = ['hello.ogg', 'hello.mp3'];
    const ids = [];
    for (const [i, file] of files.entries()) {
      const g = await guestJoins(srv, `Guest ${i} 王`);
      assert.equal((await guestSpeaks(srv, g, file)).status, 201);
      ids.push((await consoleMessage(page, g.participant.id, "m.status === 'ready'", `${file} ready`)).id);
    }
    await page.click('.tabs button[data-tab="wall"]');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-link')]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voicewall-export-'));
    try {
      const zip = path.join(dir, 'export.zip');
      await download.saveAs(zip);
      execFileSync('unzip', ['-q', zip, '-d', path.join(dir, 'x')]);
      const x = path.join(dir, 'x');
      const all = execFileSync('find', [x, '-type', 'f']).toString().trim().split('\n');
      const manifest = JSON.parse(fs.readFileSync(all.find((f) => f.endsWith('manifest.json')), 'utf8'));
      const entries = Array.isArray(manifest) ? manifest : manifest.messages;
      assert.equal(entries.length, 2, JSON.stringify(manifest));
      const csv = fs.readFileSync(all.find((f) => f.endsWith('manifest.csv')), 'utf8').trim().split('\n');
      assert.equal(csv.length, 3, csv.join('\n'));
      assert.match(csv.join('\n'), /Guest 0 王/);
      // The original audio bytes of each upload are in the archive.
      const audio = all.filter((f) => !/manifest\.(json|csv)$/.test(f)).map((f) => fs.readFileSync(f));
      for (const file of files) {
        const want = fs.readFileSync(path.join(ROOT, 'tests/fixtures/audio', file));
        assert.ok(audio.some((b) => b.equals(want)), `${file} bytes in the archive (${audio.map((b) => b.length)})`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('purge: a typed confirmation, then nothing of the wall is left', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'zh-CN' });
    await signIn(page, srv);
    const g = await guestJoins(srv, 'Gone');
    assert.equal((await guestSpeaks(srv, g, 'hello.ogg')).status, 201);
    const m = await consoleMessage(page, g.participant.id, "m.status === 'ready'", 'ready');
    await page.click('.tabs button[data-tab="wall"]');
    await page.click('#purge-btn');
    await page.waitForSelector('#modal:not([hidden])');
    await page.fill('#modal-input', 'mai');
    assert.equal(await page.isDisabled('#modal-ok'), true, 'a wrong id does not arm the button');
    await shot(page, '390-purge');
    await page.fill('#modal-input', srv.wallId);
    assert.equal(await page.isDisabled('#modal-ok'), false);
    await page.click('#modal-ok');
    await until(async () => (await adminApi(srv, 'GET', `/api/admin/walls/${srv.wallId}/messages`)).data.messages.length === 0, { message: 'no messages left' });
    const st = await adminApi(srv, 'GET', `/api/walls/${srv.wallId}`);
    assert.deepEqual([st.data.participants.length, st.data.messages.length], [0, 0]);
    const media = await adminApi(srv, 'GET', m.media_url);
    assert.equal(media.status, 404, 'the voice is gone from the media store');
    await page.click('.tabs button[data-tab="messages"]');
    await waitFor(page, () => document.querySelectorAll('#messages li').length === 0, null, { message: 'console list empty' });
    // The audit log shows the purge.
    const audit = await adminApi(srv, 'GET', '/api/admin/audit?limit=20');
    assert.ok(audit.data.entries.some((e) => /purge/.test(e.action)), JSON.stringify(audit.data));
  });
});

test('controls: pause/resume, volume, QR on the wall, idle loop and clear reach the server', async () => {
  await withConsole({}, async (srv, browser) => {
    const page = await newPage(browser, { ...PHONE, locale: 'en' });
    await signIn(page, srv);
    const { wall } = await openDisplay(browser, page, srv);
    const g = await guestJoins(srv, 'Ivy');
    assert.equal((await guestSpeaks(srv, g, 'hello.ogg')).status, 201);
    await waitFor(wall, () => window.__wall.messages === 1, null, { message: 'on the wall' });
    const wallInfo = async () => (await adminApi(srv, 'GET', '/api/admin/walls')).data.find((w) => w.id === srv.wallId);

    await page.click('.tabs button[data-tab="playback"]');
    await page.click('#pb-toggle');
    await until(async () => (await playback(srv)).paused === true, { message: 'paused' });
    await waitFor(page, () => document.getElementById('pb-toggle').dataset.act === 'resume', null, { message: 'button offers resume' });
    await page.click('#pb-toggle');
    await until(async () => (await playback(srv)).paused === false, { message: 'resumed' });
    await page.locator('#volume').fill('40');
    await until(async () => Math.abs((await playback(srv)).volume - 0.4) < 0.01, { message: 'volume 0.4' });

    await page.click('.tabs button[data-tab="wall"]');
    await page.click('#qr-visible');
    await until(async () => (await wallInfo()).qr_visible === false, { message: 'QR hidden' });
    const st = await adminApi(srv, 'GET', `/api/walls/${srv.wallId}`);
    assert.equal(st.data.qr_visible, false);
    await page.click('#qr-visible');
    await until(async () => (await wallInfo()).qr_visible === true, { message: 'QR shown' });
    await page.fill('#idle-seconds', '30');
    await page.click('#idle-form button[type="submit"]');
    await until(async () => (await wallInfo()).idle_loop_s === 30, { message: 'idle loop 30 s' });
    await page.fill('#idle-seconds', '');
    await page.click('#idle-form button[type="submit"]');
    await until(async () => (await wallInfo()).idle_loop_s == null, { message: 'idle loop off' });

    await page.click('#clear-btn');
    await page.waitForSelector('#modal:not([hidden])');
    await page.click('#modal-ok');
    await waitFor(wall, () => window.__wall.messages === 0, null, { message: 'the wall is clear' });
    // Cleared, not deleted: the console still lists the message.
    assert.equal((await adminApi(srv, 'GET', `/api/admin/walls/${srv.wallId}/messages`)).data.messages.length, 1);
    const audit = (await adminApi(srv, 'GET', '/api/admin/audit?limit=50')).data.entries.map((e) => e.action);
    for (const a of ['playback.pause', 'playback.resume', 'wall.clear']) assert.ok(audit.includes(a), `${a} in ${audit}`);
  });
});

test('screenshots: the console with a few messages at 390×844 (zh-CN) and 1280×800 (en), no overflow, readable Chinese', async () => {
  await withConsole({}, async (srv, browser) => {
    const names = ['王小明', 'Alice Martin', '李娜 Lina', 'Maximilian Featherstone'];
    await adminApi(srv, 'PUT', `/api/admin/walls/${srv.wallId}/moderation`, { mode: 'pre' });
    const guests = [];
    for (const n of names) {
      const g = await guestJoins(srv, n);
      assert.equal((await guestSpeaks(srv, g, 'hello.ogg')).status, 201);
      guests.push(g);
    }
    const phone = await newPage(browser, { ...PHONE, locale: 'zh-CN' });
    await signIn(phone, srv);
    const first = await consoleMessage(phone, guests[1].participant.id, "m.status === 'ready'", 'ready');
    await tap(phone, first.id, 'approve');
    await consoleMessage(phone, guests[3].participant.id, "m.status === 'ready'", 'ready');
    await phone.waitForTimeout(300);
    await shot(phone, '390-messages');
    for (const tab of ['playback', 'wall', 'health']) {
      await phone.click(`.tabs button[data-tab="${tab}"]`);
      await phone.waitForTimeout(300);
      await shot(phone, `390-${tab}`, { fullPage: true });
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${tab}: horizontal overflow of ${overflow}px`);
    }
    // Every tap target on the phone is at least 40 px high.
    await phone.click('.tabs button[data-tab="messages"]');
    const small = await phone.evaluate(() => [...document.querySelectorAll('button, a.btn, select, input')]
      .filter((e) => e.offsetParent && e.type !== 'hidden')
      .map((e) => [e.id || e.className || e.tagName, Math.round(e.getBoundingClientRect().height)])
      .filter(([, h]) => h < 40));
    assert.deepEqual(small, []);
    // Chinese is drawn with real glyphs, not boxes: 消息 in the page's font does not render like two
    // characters no font has (private use area → the missing-glyph box).
    const tofu = await phone.evaluate(() => {
      const font = getComputedStyle(document.querySelector('.tabs button span')).font;
      const draw = (s) => {
        const c = document.createElement('canvas');
        c.width = 80; c.height = 40;
        const g = c.getContext('2d');
        g.font = font; g.fillStyle = '#000'; g.fillText(s, 2, 28);
        return c.toDataURL();
      };
      return draw('消息') === draw('\u{F0001}\u{F0002}') || draw('消息') === draw('');
    });
    assert.equal(tofu, false, 'Chinese renders as boxes');

    const laptop = await newPage(browser, { width: 1280, height: 800, locale: 'en' });
    await signIn(laptop, srv);
    await laptop.waitForTimeout(500);
    await shot(laptop, '1280');
    const overflow = await laptop.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `laptop: horizontal overflow of ${overflow}px`);
  });
});
