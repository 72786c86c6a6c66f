// Browser tests of the big-screen wall page (ui/wall.*) against tests/browser/fake-server.mjs.
// Run: node --test tests/browser/wall.test.mjs   (screenshots: target/test-output/screenshots/)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeServer } from './fake-server.mjs';
import { launchChromium, newPage, openWall, waitFor, waitForSettled, saveScreenshot, intersects } from './lib.mjs';

const SIZES = [
  { width: 1920, height: 1080, suffix: '' },
  { width: 1280, height: 720, suffix: '-1280x720' },
];

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

/** Unexpected page errors (the deliberately missing avatars log 404s; those are fine). */
function realErrors(page) {
  return page.__errors.filter((e) => !/status of 404/.test(e));
}

async function avatarRects(page, { sample = 0 } = {}) {
  return page.evaluate((sample) => {
    let els = [...document.querySelectorAll('#grid .av:not(.leave)')];
    if (sample && els.length > sample) {
      const step = els.length / sample;
      els = Array.from({ length: sample }, (_, i) => els[Math.floor(i * step)]).concat(els.slice(-20));
    }
    return els.map((e) => { const r = e.getBoundingClientRect(); return { pid: e.dataset.pid, x: r.left, y: r.top, w: r.width, h: r.height }; });
  }, sample);
}

async function panelRect(page) {
  return page.evaluate(() => { const r = document.getElementById('qr-panel').getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
}

async function assertNoOverlap(page, opts) {
  const panel = await panelRect(page);
  const vp = page.viewportSize();
  const rects = await avatarRects(page, opts);
  assert.ok(rects.length > 0, 'some avatars');
  for (const r of rects) {
    assert.ok(!intersects(r, panel), `avatar ${r.pid} ${JSON.stringify(r)} overlaps QR panel ${JSON.stringify(panel)}`);
    assert.ok(r.x >= 0 && r.y >= 0 && r.x + r.w <= vp.width + 0.5 && r.y + r.h <= vp.height + 0.5, `avatar ${r.pid} off screen ${JSON.stringify(r)}`);
  }
  return rects.length;
}

async function assertQrBig(page) {
  const L = await page.evaluate(() => window.__wall.layout);
  const vmin = Math.min(L.viewport.w, L.viewport.h);
  assert.ok(L.qr.w >= 0.28 * vmin && L.qr.h >= 0.28 * vmin, `QR ${L.qr.w}x${L.qr.h} should be >= 28% of ${vmin}`);
  // QR fully on screen, and its image loaded
  assert.ok(L.qr.x >= 0 && L.qr.y >= 0 && L.qr.x + L.qr.w <= L.viewport.w && L.qr.y + L.qr.h <= L.viewport.h, 'QR on screen');
  await waitFor(page, () => { const i = document.getElementById('qr'); return i.complete && i.naturalWidth > 0; }, null, { message: 'QR image loaded' });
  return L;
}

async function waitImagesSettled(page) {
  await waitFor(page, () => [...document.querySelectorAll('#grid .face img')].every((i) => i.complete), null, { timeout: 30000, message: 'avatar images loaded' });
}

async function canvasInk(page) {
  return page.evaluate(() => {
    const c = document.getElementById('wave');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return { painted: n, total: c.width * c.height };
  });
}

test('idle wall: big QR, call to action, no avatars', async () => {
  const srv = await startFakeServer({ participants: 0, locale: 'en', demo: true });
  try {
    for (const size of SIZES) {
      const page = await newPage(browser, size);
      await openWall(page, srv.wallUrl, { participants: 0 });
      const L = await assertQrBig(page);
      assert.equal(L.mode, 'idle-row');
      assert.ok(L.qr.w >= 0.45 * Math.min(size.width, size.height), 'idle QR is extra large');
      assert.equal(await page.locator('#grid .av').count(), 0);
      assert.equal(await page.locator('#cta').isVisible(), true);
      assert.equal(await page.locator('#instructions').textContent(), 'Scan with your phone camera to join');
      assert.equal(await page.locator('.qr-primary').textContent(), 'Scan to join');
      assert.equal(await page.locator('#demo').isVisible(), true, 'DEMO label visible');
      assert.equal(await page.locator('#status').isVisible(), false, 'no reconnect marker');
      assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
      await page.waitForTimeout(400);
      await saveScreenshot(page, `wall-0${size.suffix}`);
      assert.deepEqual(realErrors(page), []);
      await page.context().close();
    }
  } finally { await srv.close(); }
});

test('12 participants: grid beside the QR, fallbacks, badges, spotlight, click to play', async () => {
  const srv = await startFakeServer({ participants: 12, locale: 'zh-CN', demo: false });
  try {
    const ps = srv.state.participants;
    for (const size of SIZES) {
      const page = await newPage(browser, size);
      await openWall(page, srv.wallUrl, { participants: 12 });
      await waitForSettled(page);
      await waitImagesSettled(page);
      await assertQrBig(page);
      assert.equal(await page.locator('#grid .av').count(), 12);
      assert.equal(await page.locator('#count-num').textContent(), '12');
      assert.equal(await page.locator('.qr-primary').textContent(), '扫码加入');
      assert.equal(await page.locator('#instructions').textContent(), '微信扫码关注，发送语音');
      assert.equal(await page.locator('#demo').isVisible(), false);
      assert.equal(await assertNoOverlap(page), 12, 'all 12 avatars checked');
      const L = await page.evaluate(() => window.__wall.layout);
      assert.equal(L.cols * L.rows >= 12, true);
      assert.ok(L.cell >= 0.12 * Math.min(size.width, size.height), `few people -> large avatars (cell ${L.cell})`);
      // every 5th avatar 404s in the fake server: a generated avatar (initials on a colour), never a broken image
      const fallback = await page.evaluate(() => [...document.querySelectorAll('#grid .av')].map((e) => ({
        pid: e.dataset.pid, noimg: e.querySelector('.face').classList.contains('noimg'), img: !!e.querySelector('.face img'),
        ini: e.querySelector('.ini').textContent, bg: getComputedStyle(e.querySelector('.face')).backgroundColor,
      })));
      const broken = ps.filter((p) => p.avatar_url.includes('missing')).map((p) => p.id);
      assert.ok(broken.length >= 2);
      for (const f of fallback) {
        if (broken.includes(f.pid)) {
          assert.ok(f.noimg && !f.img, `${f.pid} falls back to initials`);
          assert.ok(f.ini.length >= 1 && f.ini !== '?', `${f.pid} has initials`);
          assert.notEqual(f.bg, 'rgba(0, 0, 0, 0)');
        } else {
          assert.ok(f.img && !f.noimg, `${f.pid} shows its image`);
        }
      }
      await saveScreenshot(page, `wall-12${size.suffix}`);
      assert.deepEqual(realErrors(page), []);
      await page.context().close();
    }

    // --- messages, spotlight and click-to-play at 1920x1080
    const page = await newPage(browser, SIZES[0]);
    await openWall(page, srv.wallUrl, { participants: 12 });
    await waitForSettled(page);
    const who = ps[4];
    const badge = page.locator(`#grid .av[data-pid="${who.id}"] .badge`);
    const m1 = srv.addMessage(who.id, { duration_ms: 12000, transcript: '大家好，今晚的演出太精彩了！' });
    await badge.waitFor();
    assert.equal(await badge.locator('.n').textContent(), '1');
    assert.equal(await badge.locator('.d').textContent(), '0:12');
    assert.equal(await page.locator(`#grid .av[data-pid="${who.id}"]`).getAttribute('class').then((c) => c.includes('lit')), true);
    const m2 = srv.addMessage(who.id, { duration_ms: 7000, transcript: '大家好，今晚的演出太精彩了！我们爱你们！' });
    await waitFor(page, (id) => document.querySelector(`#grid .av[data-pid="${id}"] .badge .n`)?.textContent === '2', who.id, { message: 'badge count 2' });
    assert.equal(await badge.locator('.d').textContent(), '0:07', 'duration of the latest message');
    // a message still being fetched, on someone else
    srv.addMessage(ps[7].id, { status: 'fetching', duration_ms: 0 });
    await page.locator(`#grid .av[data-pid="${ps[7].id}"] .badge`).waitFor();

    // playback: spotlight with name, waveform, transcript, moving cursor
    const playing = srv.playback(m2.id, { durationMs: 4000, hz: 12 });
    await page.locator('#spotlight').waitFor({ state: 'visible' });
    await waitFor(page, () => window.__wall.spotlight && window.__wall.spotlight.position_ms > 300, null, { message: 'progress' });
    assert.equal(await page.locator('#spot-name').textContent(), who.display_name);
    assert.equal(await page.locator('#spot-transcript').textContent(), m2.transcript);
    assert.equal(await page.evaluate(() => window.__wall.spotlight.message_id), m2.id);
    assert.equal(await page.locator('#app').getAttribute('class').then((c) => c.includes('spotlit')), true, 'rest dims');
    const ink = await canvasInk(page);
    assert.ok(ink.painted > ink.total * 0.03, `waveform canvas painted (${ink.painted}/${ink.total})`);
    const p1 = await page.evaluate(() => window.__wall.spotlight.position_ms);
    await page.waitForTimeout(1200);
    await saveScreenshot(page, 'wall-spotlight');
    const p2 = await page.evaluate(() => window.__wall.spotlight.position_ms);
    assert.ok(p2 > p1, `cursor advances (${p1} -> ${p2})`);
    // the QR panel stays visible and undimmed while the spotlight is up
    const spot = await page.evaluate(() => { const r = document.getElementById('spotlight').getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
    assert.ok(!intersects(spot, await panelRect(page)), 'spotlight does not cover the QR panel');
    await playing;
    await page.locator('#spotlight').waitFor({ state: 'hidden', timeout: 5000 });
    await waitFor(page, (id) => document.querySelector(`#grid .av[data-pid="${id}"] .badge .n`)?.textContent === '1', who.id, { message: 'badge decrements after playing' });

    // text message -> bubble
    srv.addMessage(ps[2].id, { kind: 'text', text: 'Hello from row 12!' });
    await page.locator('#bubbles .bubble', { hasText: 'Hello from row 12!' }).waitFor();

    // click an avatar -> POST /play {participant_id}; the spotlight follows via events
    const target = ps[4];
    await page.locator(`#grid .av[data-pid="${target.id}"]`).click();
    await waitFor(page, () => window.__wall.plays.length > 0, null, { message: 'play requested' });
    const deadline = Date.now() + 5000;
    while (!srv.plays.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(srv.plays[0], { participant_id: target.id });
    await waitFor(page, (id) => window.__wall.spotlight && window.__wall.spotlight.participant_id === id, target.id, { message: 'spotlight follows the click' });
    assert.equal(await page.locator('#spot-name').textContent(), target.display_name);

    // spotlight at 1280x720 as well
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.waitForTimeout(500);
    await saveScreenshot(page, 'wall-spotlight-1280x720');
    await assertNoOverlap(page);
    assert.deepEqual(realErrors(page), []);
    await page.context().close();
  } finally { await srv.close(); }
});

test('2,000 participants: everyone fits beside the QR, joins animate in', async () => {
  const srv = await startFakeServer({ participants: 2000, locale: 'zh-CN' });
  try {
    for (const size of SIZES) {
      const page = await newPage(browser, size);
      await openWall(page, srv.wallUrl, { participants: srv.state.participants.length, timeout: 30000 });
      await waitForSettled(page);
      await assertQrBig(page);
      const n0 = srv.state.participants.length;
      assert.equal(await page.locator('#grid .av').count(), n0);
      assert.equal(await page.locator('#count-num').textContent(), String(n0));
      const L = await page.evaluate(() => window.__wall.layout);
      assert.ok(L.capacity >= n0, 'grid capacity fits everyone');
      assert.ok(L.cell >= 12, `cell ${L.cell}px`);
      // joins: new avatars appear, count follows
      const added = [srv.addParticipant(), srv.addParticipant(), srv.addParticipant()];
      await waitFor(page, (n) => window.__wall.participants === n, n0 + 3, { message: 'joins' });
      await page.locator(`#grid .av[data-pid="${added[2].id}"]`).waitFor();
      assert.equal(await page.locator('#count-num').textContent(), String(n0 + 3));
      await waitForSettled(page);
      await waitImagesSettled(page);
      assert.ok(await assertNoOverlap(page, { sample: 300 }) >= 300);
      // everyone's target cell is inside the free area
      const outside = await page.evaluate(() => {
        const L = window.__wall.layout; const a = L.area;
        return window.__wall.ids().filter((id) => {
          const r = window.__wall.targetRectOf(id);
          return r.x < a.x - 0.5 || r.y < a.y - 0.5 || r.x + r.w > a.x + a.w + 0.5 || r.y + r.h > a.y + a.h + 0.5;
        }).length;
      });
      assert.equal(outside, 0, 'no target cell outside the avatar area');
      // a message on a crowd member
      const pid = srv.state.participants[1234].id;
      srv.addMessage(pid, { duration_ms: 9000 });
      await page.locator(`#grid .av[data-pid="${pid}"] .badge`).waitFor();
      await page.waitForTimeout(300);
      await saveScreenshot(page, `wall-2000${size.suffix}`);
      assert.deepEqual(realErrors(page), []);
      await page.context().close();
    }
  } finally { await srv.close(); }
});

test('a dropped event stream shows a marker, reconnects and rebuilds state', async () => {
  const srv = await startFakeServer({ participants: 12, locale: 'en' });
  try {
    const page = await newPage(browser, SIZES[0]);
    await openWall(page, srv.wallUrl, { participants: 12 });
    assert.equal(await page.locator('#status').isVisible(), false);
    // the server drops the stream and refuses it for a while; meanwhile someone joins and leaves
    srv.dropStreams({ refuseMs: 2500 });
    const late = srv.addParticipant({ display_name: 'Late Larry' }, { silent: true });
    const gone = srv.state.participants[3].id;
    srv.state.participants = srv.state.participants.filter((p) => p.id !== gone);
    const msg = srv.addMessage(srv.state.participants[0].id, { duration_ms: 5000 }, { silent: true });
    await page.locator('#status').waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await page.evaluate(() => window.__wall.connected), false);
    assert.match(await page.locator('#status').textContent(), /Reconnecting/);
    assert.equal(await page.locator('#grid .av').count(), 12, 'the wall stays up while disconnected');
    await waitFor(page, () => window.__wall.connected, null, { timeout: 20000, message: 'reconnected' });
    assert.equal(await page.locator('#status').isVisible(), false, 'marker hidden again');
    assert.equal(await page.evaluate(() => window.__wall.participants), 12);
    await page.locator(`#grid .av[data-pid="${late.id}"]`).waitFor();
    await page.locator(`#grid .av[data-pid="${gone}"]`).waitFor({ state: 'detached' });
    await page.locator(`#grid .av[data-pid="${msg.participant_id}"] .badge`).waitFor();
    assert.ok(await page.evaluate(() => window.__wall.reconnects) >= 1);
    // and live events flow again
    const next = srv.addParticipant({ display_name: 'After Reconnect' });
    await page.locator(`#grid .av[data-pid="${next.id}"]`).waitFor();
    await waitForSettled(page);
    await assertNoOverlap(page);
    // join_updated -> the QR image is re-fetched
    const before = await page.locator('#qr').getAttribute('src');
    const reqs = srv.requests.length;
    srv.rotateJoin();
    await waitFor(page, (b) => document.getElementById('qr').getAttribute('src') !== b, before, { message: 'QR refreshed' });
    assert.ok(srv.requests.slice(reqs).some((r) => r.path.startsWith('/api/walls/main/qr.svg')), 'QR re-requested');
    // the dropped stream and the refused reconnects are logged by chromium itself; nothing else may be
    assert.deepEqual(realErrors(page).filter((e) => !/ERR_INCOMPLETE_CHUNKED_ENCODING|status of 503/.test(e)), []);
    await page.context().close();
  } finally { await srv.close(); }
});

test('state with a playback in progress shows the spotlight on load; video plays in the spotlight', async () => {
  const srv = await startFakeServer({ participants: 5, locale: 'en' });
  try {
    const p = srv.state.participants[2];
    const m = srv.addMessage(p.id, { duration_ms: 20000, transcript: 'Already playing' }, { silent: true });
    srv.state.playback = { message_id: m.id, participant_id: p.id, position_ms: 5000, duration_ms: 20000 };
    const page = await newPage(browser, SIZES[1]);
    await openWall(page, srv.wallUrl, { participants: 5 });
    await page.locator('#spotlight').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#spot-name').textContent(), p.display_name);
    assert.equal(await page.locator(`#grid .av[data-pid="${p.id}"]`).getAttribute('class').then((c) => c.includes('speaking')), true);
    srv.state.playback = null;
    srv.emit('playback_finished', { message_id: m.id, outcome: 'stopped' });
    await page.locator('#spotlight').waitFor({ state: 'hidden' });

    const v = srv.addMessage(srv.state.participants[1].id, { kind: 'video', duration_ms: 3000, media_url: '/media/messages/clip.mp4' });
    srv.emit('playback_started', { message_id: v.id, participant_id: v.participant_id, duration_ms: 3000 });
    await page.locator('#spotlight .spot-video').waitFor({ state: 'visible' });
    const vid = await page.evaluate(() => { const e = document.querySelector('#spotlight video'); return { src: e.getAttribute('src'), muted: e.muted }; });
    assert.equal(vid.src, '/media/messages/clip.mp4');
    // audio messages never create media elements: the native player plays them
    assert.equal(await page.evaluate(() => document.querySelectorAll('audio').length), 0);
    await page.context().close();
  } finally { await srv.close(); }
});
