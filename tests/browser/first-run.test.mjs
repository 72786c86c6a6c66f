// First run on the REAL server (target/debug/voicewall serve): with a fresh config (one wall, nobody ever
// signed in) the wall shows the operator console's address as a QR beside the join QR, so setup happens
// from a phone. The QR decodes (zbarimg) to the console URL and holds no token (the screen is public).
// Once an operator signs in, the panel leaves the open wall, and a reload does not bring it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { launchChromium, newPage, openWall, waitFor, saveScreenshot, intersects, SCREENSHOT_DIR, ADMIN_TOKEN } from './lib.mjs';
import { startServer } from './server.mjs';

test('first run: the console QR stands beside the join QR until an operator signs in', async () => {
  const srv = await startServer({ title: 'First run', locale: 'zh-CN' });
  const browser = await launchChromium();
  try {
    const page = await newPage(browser, { width: 1280, height: 720 });
    await openWall(page, await srv.displayUrl(), { participants: 0 });
    await page.waitForSelector('#setup-panel .setup-qr svg', { timeout: 20000 });
    const consoleUrl = `${srv.url}/admin`; // the test server's public_url is http://127.0.0.1:{port}
    assert.equal(await page.textContent('#setup-panel .setup-url'), consoleUrl);

    // Beside the join QR, not over it.
    const panel = await page.locator('#setup-panel').boundingBox();
    const join = await page.locator('#qr-panel').boundingBox();
    assert.ok(panel && join && !intersects(panel, join), `${JSON.stringify(panel)} vs ${JSON.stringify(join)}`);

    // What a phone reads from the screen.
    fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const qrFile = path.join(SCREENSHOT_DIR, 'first-run-console-qr.png');
    await page.locator('#setup-panel .setup-qr').screenshot({ path: qrFile });
    const decoded = execFileSync('zbarimg', ['-q', '--raw', qrFile]).toString().trim();
    assert.equal(decoded, consoleUrl);
    assert.ok(!decoded.includes(ADMIN_TOKEN) && !(await page.textContent('#setup-panel')).includes(ADMIN_TOKEN), 'no token on a public screen');
    await saveScreenshot(page, 'first-run-wall');

    // An operator signs in (as the phone would): the open wall drops the panel.
    const login = await fetch(`${srv.url}/api/admin/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: ADMIN_TOKEN }),
    });
    assert.equal(login.status, 204, await login.text());
    await waitFor(page, () => document.documentElement.dataset.setupPanel === 'gone' && !document.getElementById('setup-panel'),
      null, { timeout: 20000, message: 'the panel gone after the sign-in' });

    // For good: a reloaded wall asks, is told no, and shows nothing.
    await page.reload({ waitUntil: 'domcontentloaded' });
    await waitFor(page, () => document.documentElement.dataset.setupPanel === 'gone', null, { message: 'the reloaded page was answered' });
    assert.equal(await page.locator('#setup-panel').count(), 0);
    const answer = await srv.get('/api/walls/main/setup');
    assert.deepEqual(await answer.json(), { show: false });
    assert.deepEqual(page.__errors.filter((e) => !/Failed to load resource/.test(e)), []);
  } finally {
    await browser.close();
    await srv.stop();
  }
});
