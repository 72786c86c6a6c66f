// The wall's crowd layout (ui/grid.js) at the two ends: a dozen people, and a 5,000-person room.
// Real Chromium against tests/browser/fake-server.mjs, 1920x1080.
//   node --test --test-concurrency=1 tests/browser/wall-grid.test.mjs
// Writes target/test-output/wall-5000.png and wall-5000-speaking.png (the big room, for a person to look at).
//
// The readable minimum: a face must be at least READABLE_PX wide on a 1920x1080 wall (about 1/4 of a
// degree from 15 m: a face you can still recognise from the back row). Every face the wall draws as a face
// (a grid cell or a stage slot) is held to it; below it the crowd is a mosaic with a count beside the stage.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeServer } from './fake-server.mjs';
import { launchChromium, newPage, openWall, waitFor, waitForSettled, intersects, ROOT } from './lib.mjs';

const READABLE_PX = 48;
const SIZE = { width: 1920, height: 1080 };
const OUT = path.join(ROOT, 'target', 'test-output');

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

/** Every face drawn as a face (grid cells and stage slots), with its name; sizes at rest (a pop-in's scale aside). */
async function drawnFaces(page) {
  return page.evaluate(() => [...document.querySelectorAll('#grid .av:not([hidden])')].map((e) => {
    const r = e.getBoundingClientRect(), f = e.querySelector('.face');
    return {
      pid: e.dataset.pid, cell: { x: r.left, y: r.top, w: r.width, h: r.height }, face: { w: f.offsetWidth, h: f.offsetHeight },
      name: e.querySelector('.name').textContent, speaking: e.classList.contains('speaking'), stage: e.classList.contains('stage-av'),
    };
  }));
}

test('12 people: every one a readable cell, beside the QR', async () => {
  const srv = await startFakeServer({ participants: 12, locale: 'zh-CN' });
  try {
    const page = await newPage(browser, SIZE);
    await openWall(page, srv.wallUrl, { participants: 12 });
    await waitForSettled(page);
    const L = await page.evaluate(() => window.__wall.layout);
    assert.equal(L.room, false, 'a dozen people: the grid, not the big room');
    const faces = await drawnFaces(page);
    assert.deepEqual(faces.map((f) => f.pid).sort(), srv.state.participants.map((p) => p.id).sort(), 'everyone has a cell');
    const panel = await page.evaluate(() => { const r = document.getElementById('qr-panel').getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width, h: r.height }; });
    for (const f of faces) {
      assert.ok(f.face.w >= READABLE_PX && f.face.h >= READABLE_PX, `${f.pid}: face ${f.face.w}x${f.face.h} >= ${READABLE_PX}px`);
      assert.ok(f.cell.w >= L.minCell, `${f.pid}: cell ${f.cell.w} >= the wall's minimum ${L.minCell}`);
      assert.ok(f.cell.x >= 0 && f.cell.y >= 0 && f.cell.x + f.cell.w <= SIZE.width && f.cell.y + f.cell.h <= SIZE.height, `${f.pid} on screen`);
      assert.ok(!intersects(f.cell, panel), `${f.pid} clear of the QR panel`);
    }
    assert.ok(L.minCell >= READABLE_PX, `the wall's readable minimum ${L.minCell}px >= ${READABLE_PX}px at 1920x1080`);
    await page.context().close();
  } finally { await srv.close(); }
});

test('5,000 people: the newest and the speaker large, everyone else counted and in the mosaic', async () => {
  const srv = await startFakeServer({ participants: 5000, locale: 'zh-CN', thumbs: true });
  try {
    const page = await newPage(browser, SIZE);
    await openWall(page, srv.wallUrl, { participants: 5000, timeout: 60000 });
    await waitFor(page, () => window.__wall.imagesPending === 0, null, { timeout: 240000, message: 'avatars decoded' });
    const ps = srv.state.participants;
    // someone from the middle of the crowd sends a voice message; it plays
    const who = ps[2345];
    const msg = srv.addMessage(who.id, { duration_ms: 30000, transcript: '大家好，今晚的演出太精彩了！' });
    await waitFor(page, (id) => window.__wall.stage.includes(id), who.id, { timeout: 20000, message: 'sender on the stage' });
    await waitForSettled(page);
    await page.waitForTimeout(900);                       // the stage's pop-in
    const L = await page.evaluate(() => window.__wall.layout);
    assert.equal(L.room, true, '5,000 people: the big room');
    assert.ok(L.mosaic.cell < READABLE_PX, `the mosaic's cells (${L.mosaic.cell}px) are below a readable face: hence the stage`);

    const check = async (label) => {
      const faces = (await drawnFaces(page)).filter((f) => f.stage);
      assert.ok(faces.length >= 4, `${label}: ${faces.length} large faces`);
      for (const f of faces) {
        assert.ok(f.face.w >= READABLE_PX && f.face.h >= READABLE_PX, `${label}: stage face ${f.pid} ${f.face.w}px >= ${READABLE_PX}px`);
        assert.ok(f.name.length > 0, `${label}: stage face ${f.pid} has its name`);
      }
      assert.ok(faces.some((f) => f.pid === who.id), `${label}: the sender ${who.id} is among the large faces`);
      // the count says how many are not on the stage, in numbers a person can read
      const more = await page.evaluate(() => {
        const e = document.querySelector('#stage .stage-more');
        if (!e) return null;
        const r = e.getBoundingClientRect();
        return { text: e.querySelector('.more-n').textContent, label: e.querySelector('.more-label').textContent, count: e.dataset.count, rect: { x: r.left, y: r.top, w: r.width, h: r.height }, font: parseFloat(getComputedStyle(e.querySelector('.more-n')).fontSize) };
      });
      assert.ok(more, `${label}: a count of everyone not on the stage`);
      const rest = srv.state.participants.length - faces.length;
      assert.equal(more.count, String(rest), `${label}: the count is everyone not on the stage`);
      assert.equal(more.text, `+${rest.toLocaleString('zh-CN')}`);
      assert.ok(more.font >= READABLE_PX * 0.75, `${label}: the count's digits are ${more.font}px`);
      assert.ok(more.rect.x + more.rect.w <= L.area.x + L.area.w + 0.5, `${label}: the count is inside the free area`);
      // everyone is still on the wall: a mosaic tile per person
      const placed = await page.evaluate(() => window.__wall.ids().filter((id) => window.__wall.targetRectOf(id)).length);
      assert.equal(placed, srv.state.participants.length, `${label}: a mosaic tile per person`);
      return faces;
    };

    await check('a new message');
    fs.mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'wall-5000.png') });

    // while it plays: the speaker is marked on the stage, and stays there while others join
    const playing = srv.playback(msg.id, { durationMs: 6000, hz: 12 });
    await page.locator('#spotlight').waitFor({ state: 'visible' });
    for (let i = 0; i < 8; i++) srv.addParticipant();
    await waitFor(page, (n) => window.__wall.participants === n, 5008, { message: 'joins' });
    await page.waitForTimeout(700);
    const faces = await check('speaking');
    assert.ok(faces.find((f) => f.pid === who.id).speaking, 'the speaker is marked speaking on the stage');
    await page.screenshot({ path: path.join(OUT, 'wall-5000-speaking.png') });
    await playing;
    assert.deepEqual(page.__errors.filter((e) => !/status of 404/.test(e)), []);
    await page.context().close();
  } finally { await srv.close(); }
});
