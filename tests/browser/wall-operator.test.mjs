// The wall page follows the operator (issue 16): on the REAL server (target/debug/voicewall serve, null
// audio) in real Chromium, the wall opened as a display (one-time display link → cookie) drops a removed
// message, drops a banned participant's avatar and items, and hides / shows the QR panel — each after an
// admin API call, carried to the page by the server's `wall_changed` event (no reload, no reconnect).
// Checked on the DOM (`[data-pid]`, `#qr-panel`) and the page's hook `window.__wall`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, newPage, waitFor, adminApi, guestJoins, guestSpeaks } from './lib.mjs';
import { startServer } from './server.mjs';

/** A guest joins and speaks; resolves with {guest, message} once the message is on the wall's state. */
async function guestWithVoice(srv, nickname) {
  const guest = await guestJoins(srv, nickname);
  const r = await guestSpeaks(srv, guest);
  assert.ok(r.ok, `voice of ${nickname}: ${r.status} ${await r.text()}`);
  const message = await srv.waitWall(
    (s) => s.messages.find((m) => m.participant_id === guest.participant.id),
    { message: `${nickname}'s message on the wall` },
  );
  return { guest, message };
}

const onPage = (pid) => !!document.querySelector(`#app [data-pid="${pid}"]:not(.leave)`);

test('the wall page drops a removed message and a banned participant, and hides / shows the QR, on wall_changed', async () => {
  const srv = await startServer({ title: 'Operator wall' });
  const browser = await launchChromium();
  try {
    // The speakers stay paused: this test is about wall_changed. Playing, Bo's voice would start when
    // Ana's is removed, and the page's waveform fetch for it can land just after the ban (a correct 404,
    // and a console error this test would count).
    const paused = await adminApi(srv, 'POST', '/api/admin/playback/pause');
    assert.equal(paused.status, 202, JSON.stringify(paused.data));
    const ana = await guestWithVoice(srv, 'Ana');
    const bo = await guestWithVoice(srv, 'Bo');
    const anaId = ana.guest.participant.id;
    const boId = bo.guest.participant.id;

    const wall = await newPage(browser, { width: 1280, height: 720 });
    await wall.goto(await srv.displayUrl(), { waitUntil: 'domcontentloaded' });
    await waitFor(wall, () => window.__wall && window.__wall.connected && window.__wall.messages === 2, null,
      { timeout: 20000, message: 'wall connected with both messages' });
    await waitFor(wall, ([a, b]) => [a, b].every((p) => window.__wall.ids().includes(p)
      && !!document.querySelector(`#app [data-pid="${p}"]`)), [anaId, boId], { message: 'both avatars on the wall' });
    assert.equal(await wall.isVisible('#qr-panel'), true, 'the QR shows by default');
    const reconnects = await wall.evaluate(() => window.__wall.reconnects);

    // Remove Ana's message: it leaves the page; Bo's stays.
    const removed = await adminApi(srv, 'POST', `/api/admin/walls/${srv.wallId}/messages/${ana.message.id}/remove`);
    assert.equal(removed.status, 200, JSON.stringify(removed.data));
    await waitFor(wall, () => window.__wall.messages === 1, null, { message: 'removed message gone from the page' });
    const state = await srv.wall();
    assert.deepEqual(state.messages.map((m) => m.id), [bo.message.id], 'the server agrees: only Bo\'s message');

    // Ban Bo: avatar and items leave the page.
    const banned = await adminApi(srv, 'POST', `/api/admin/walls/${srv.wallId}/participants/${boId}/ban`);
    assert.equal(banned.status, 200, JSON.stringify(banned.data));
    await waitFor(wall, (pid) => !window.__wall.ids().includes(pid) && window.__wall.messages === 0, boId,
      { message: 'banned participant gone from the hook' });
    await waitFor(wall, (pid) => !document.querySelector(`#app [data-pid="${pid}"]`), boId,
      { message: 'banned participant\'s avatar gone from the DOM' });
    assert.equal(await wall.evaluate(onPage, anaId), (await srv.wall()).participants.some((p) => p.id === anaId),
      'Ana is on the page exactly when the server still lists her');

    // Hide the QR, then show it again.
    const hide = await adminApi(srv, 'PUT', `/api/admin/walls/${srv.wallId}/qr`, { visible: false });
    assert.equal(hide.status, 200, JSON.stringify(hide.data));
    await waitFor(wall, () => document.getElementById('qr-panel').hidden
      && getComputedStyle(document.getElementById('qr-panel')).display === 'none', null, { message: 'QR hidden' });
    assert.equal(await wall.isVisible('#qr-panel'), false);
    const show = await adminApi(srv, 'PUT', `/api/admin/walls/${srv.wallId}/qr`, { visible: true });
    assert.equal(show.status, 200, JSON.stringify(show.data));
    await waitFor(wall, () => !document.getElementById('qr-panel').hidden, null, { message: 'QR shown again' });
    assert.equal(await wall.isVisible('#qr-panel'), true);

    // All of it came over the open event stream, not from a reconnect's fresh state.
    assert.equal(await wall.evaluate(() => window.__wall.reconnects), reconnects, 'no reconnect happened');
    assert.deepEqual(wall.__errors, []);
  } catch (err) {
    err.message += `\n--- server log (tail) ---\n${srv.log().split('\n').slice(-40).join('\n')}`;
    throw err;
  } finally {
    await browser.close();
    await srv.stop();
  }
});
