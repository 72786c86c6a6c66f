// Chinese must render on the kiosk, not as boxes (issue 20: a fresh Debian 12 machine had no CJK font and the
// wall's "扫码加入" was four empty boxes). In real Chromium, every CJK character of the UI's strings (wall and join
// page sources) is drawn on a canvas in the wall's own font stack (read from ui/wall.css) and compared with the
// drawing of a code point no font has (the .notdef box): a character that draws the box has no glyph.
//
// A control run points fontconfig at a config holding only non-CJK fonts (FONTCONFIG_FILE) and must find the
// boxes, so the detector itself is shown to fail on a machine without CJK fonts. To see this test go red, run it
// the same way: FONTCONFIG_FILE=<a fonts.conf without the CJK fonts> node --test tests/browser/fonts.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium, ROOT } from './lib.mjs';

/** Every distinct CJK character in the UI sources (wall.html/js, join.html/js). */
function uiCjkChars() {
  const chars = new Set();
  for (const f of fs.readdirSync(path.join(ROOT, 'ui'))) {
    if (!/\.(js|html)$/.test(f)) continue;
    const text = fs.readFileSync(path.join(ROOT, 'ui', f), 'utf8');
    for (const ch of text.match(/[\u3400-\u9fff\uff01-\uff5e\u3001-\u3002]/gu) || []) chars.add(ch);
  }
  return [...chars];
}

/** The wall's font stack, as declared in ui/wall.css (`--font: …;`). */
function wallFontStack() {
  const css = fs.readFileSync(path.join(ROOT, 'ui', 'wall.css'), 'utf8');
  const m = css.match(/--font:\s*([^;]+);/);
  assert.ok(m, 'ui/wall.css declares --font');
  return m[1].replace(/\s+/g, ' ').trim();
}

/** Characters that draw the same pixels as the .notdef box (or nothing) in the given font stack. */
async function charsWithoutGlyph(env, chars, font) {
  const browser = await launchChromium({ env: { ...process.env, ...env } });
  try {
    const page = await browser.newPage();
    await page.setContent('<!doctype html><html lang="zh-CN"><body></body></html>');
    return await page.evaluate(({ chars, font }) => {
      const canvas = document.createElement('canvas');
      canvas.width = 72; canvas.height = 72;
      document.body.appendChild(canvas);
      const g = canvas.getContext('2d', { willReadFrequently: true });
      const draw = (ch) => {
        g.clearRect(0, 0, 72, 72);
        g.fillStyle = '#000';
        g.font = `48px ${font}`;
        g.textBaseline = 'top';
        g.fillText(ch, 8, 8);
        const d = g.getImageData(0, 0, 72, 72).data;
        let sig = '';
        let ink = 0;
        for (let i = 3; i < d.length; i += 4) { sig += d[i] > 127 ? '1' : '0'; ink += d[i]; }
        return { sig, ink };
      };
      // U+0378 and U+10FFFD: unassigned / private-use code points no system font draws.
      const tofu = new Set([draw('\u0378').sig, draw('\u{10FFFD}').sig]);
      return chars.filter((ch) => { const r = draw(ch); return r.ink === 0 || tofu.has(r.sig); });
    }, { chars, font });
  } finally {
    await browser.close();
  }
}

/** A fonts.conf holding only the non-CJK font directories of this machine (DejaVu, Liberation). */
function fontconfigWithoutCjk() {
  const dirs = ['/usr/share/fonts/truetype/dejavu', '/usr/share/fonts/truetype/liberation']
    .filter((d) => fs.existsSync(d));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'voicewall-nocjk-'));
  const file = path.join(dir, 'fonts.conf');
  fs.writeFileSync(file, `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
${dirs.map((d) => `  <dir>${d}</dir>`).join('\n')}
  <cachedir>${dir}/cache</cachedir>
</fontconfig>
`);
  return { file, dir, usable: dirs.length > 0 };
}

test('every Chinese character of the wall and join page has a glyph in the wall font stack', async () => {
  const chars = uiCjkChars();
  assert.ok(chars.includes('扫') && chars.length > 50, `found the UI's Chinese strings (${chars.length} chars)`);
  const missing = await charsWithoutGlyph({}, chars, wallFontStack());
  assert.deepEqual(missing, [],
    `${missing.length} of ${chars.length} Chinese characters render as boxes: ${missing.join('')}\n` +
    'install a CJK font (Debian/Ubuntu: apt-get install fonts-noto-cjk; scripts/setup.sh does it)');
});

test('control: without CJK fonts the same check finds the boxes', async (t) => {
  const conf = fontconfigWithoutCjk();
  if (!conf.usable) { t.skip('no DejaVu/Liberation fonts to build a non-CJK fontconfig from'); return; }
  try {
    const chars = uiCjkChars();
    const missing = await charsWithoutGlyph({ FONTCONFIG_FILE: conf.file }, chars, wallFontStack());
    assert.equal(missing.length, chars.length,
      `with only non-CJK fonts every Chinese character should be a box; these were not: ${chars.filter((c) => !missing.includes(c)).join('')}`);
  } finally {
    fs.rmSync(conf.dir, { recursive: true, force: true });
  }
});
