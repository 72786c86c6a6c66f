// The kiosk's operator overlay: Ctrl+Shift+A shows the console's sign-in QR and the admin token over the
// wall, a second press hides it; a display that is not the kiosk (the server answers 403) shows nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeServer } from './fake-server.mjs';
import { launchChromium, newPage, openWall, waitFor, saveScreenshot } from './lib.mjs';

test('Ctrl+Shift+A toggles the operator overlay on the kiosk only', async () => {
  const browser = await launchChromium();
  const kiosk = await startFakeServer({ participants: 3, locale: 'en' });
  const other = await startFakeServer({ participants: 3, locale: 'en', kiosk: false });
  try {
    const page = await newPage(browser, { width: 1280, height: 720 });
    await openWall(page, kiosk.wallUrl, { participants: 3 });
    assert.equal(await page.locator('#operator-overlay').count(), 0);
    await page.keyboard.press('Control+Shift+A');
    await waitFor(page, () => document.getElementById('operator-overlay'), null, { message: 'overlay shown' });
    assert.equal(await page.locator('#operator-overlay .op-token').textContent(), 'fake-admin-token');
    assert.equal(await page.locator('#operator-overlay .op-url').textContent(), 'http://kiosk.test/admin');
    assert.equal(await page.locator('#operator-overlay svg').count(), 1, 'the QR');
    await saveScreenshot(page, 'wall-operator-overlay');
    await page.keyboard.press('Control+Shift+A');
    await waitFor(page, () => !document.getElementById('operator-overlay'), null, { message: 'overlay hidden' });

    const display = await newPage(browser, { width: 1280, height: 720 });
    await openWall(display, other.wallUrl, { participants: 3 });
    await display.keyboard.press('Control+Shift+A');
    await display.waitForTimeout(300);
    assert.equal(await display.locator('#operator-overlay').count(), 0, 'not the kiosk: nothing shown');
  } finally {
    await browser.close();
    await kiosk.close();
    await other.close();
  }
});
