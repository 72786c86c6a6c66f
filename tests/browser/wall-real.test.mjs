// The wall page on the REAL server (target/debug/voicewall serve): a guest joins and speaks through the
// join API; the open wall shows them, the native player (null output) plays the voice and the spotlight
// follows its events; a click on the avatar replays it. (Reconnects are driven in wall.test.mjs.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, newPage, openWall, waitFor, saveScreenshot, guestJoins, guestSpeaks } from './lib.mjs';
import { startServer } from './server.mjs';

async function guestJoinsAndSpeaks(srv, nickname, file) {
  const guest = await guestJoins(srv, nickname);
  const v = await guestSpeaks(srv, guest, file, `up-${nickname}`);
  assert.equal(v.status, 201, await v.clone().text());
  return guest.participant;
}

test('real server: join → avatar on the wall → native playback drives the spotlight → tap replays', async () => {
  const srv = await startServer({ title: 'Real wall', locale: 'en' });
  const browser = await launchChromium();
  try {
    const page = await newPage(browser, { width: 1280, height: 720 });
    // Without a display credential the wall is a 401 page that says how to open one.
    const locked = await page.goto(`${srv.url}/wall/main`);
    assert.equal(locked.status(), 401);
    assert.match(await page.textContent('body'), /Open a display/);
    // The console's one-time link: the browser gets the display cookie and lands on the clean URL.
    await openWall(page, await srv.displayUrl(), { participants: 0 });
    assert.equal(new URL(page.url()).pathname, '/wall/main');
    await saveScreenshot(page, 'real-wall-idle');

    const who = await guestJoinsAndSpeaks(srv, 'Ada', 'hello.ogg');
    await waitFor(page, () => window.__wall.participants === 1, null, { message: 'the guest on the wall' });
    const name = await page.textContent(`[data-pid="${who.id}"]`);
    assert.match(name, /Ada/);

    // Auto-play: the server's player starts it; the page's spotlight follows the events.
    const spot = await waitFor(page, () => window.__wall.spotlight, null, { timeout: 20000, message: 'spotlight' });
    assert.equal(spot.participant_id, who.id);
    assert.ok(spot.duration_ms > 2000 && spot.duration_ms < 4500, `duration ${spot.duration_ms}`);
    await waitFor(page, () => window.__wall.spotlight && window.__wall.spotlight.position_ms > 500, null, { message: 'progress' });
    await saveScreenshot(page, 'real-wall-spotlight');
    await waitFor(page, () => !window.__wall.spotlight, null, { timeout: 15000, message: 'playback finished' });
    await srv.waitWall((s) => s.messages[0].played_count === 1, { message: 'played_count 1' });

    // A tap on the avatar asks the server to play it again (the page never plays audio itself).
    await page.click(`[data-pid="${who.id}"]`);
    const again = await waitFor(page, () => window.__wall.spotlight, null, { timeout: 10000, message: 'replay spotlight' });
    assert.equal(again.participant_id, who.id);
    assert.equal(await page.evaluate(() => document.querySelectorAll('audio').length), 0);
    assert.deepEqual(page.__errors.filter((e) => !/Failed to load resource/.test(e)), []);
  } finally {
    await browser.close();
    await srv.stop();
  }
});
