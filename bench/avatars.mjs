// A set of distinct, face-like 256 px JPEG avatars (plus 64 px thumbnails) for the wall benches.
//
// Real avatars are photos: 256 px JPEGs of 10–25 KB that cost a real JPEG decode each. The set is drawn
// with ImageMagick (`convert`, Debian's imagemagick package) once and cached under target/bench/avatars/;
// every face differs (background, skin, hair, shirt, eyes, mouth, glasses, photo-like noise). The fake
// server serves face i % count at a distinct URL per participant, so the browser fetches and decodes one
// image per person as it would on a real wall.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const AVATAR_DIR = path.join(ROOT, 'target', 'bench', 'avatars');

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
}
const pick = (r, a) => a[Math.floor(r() * a.length)];
const hsl = (h, s, l) => `hsl(${Math.round(h)},${Math.round(s)}%,${Math.round(l)}%)`;

/** ImageMagick arguments (one parenthesised image) for face `i`, written to `file` at 256 px. */
function faceArgs(i, file) {
  const r = rng(i * 2654435761 + 17);
  const hue = r() * 360;
  const bg1 = hsl(hue, 35 + r() * 40, 45 + r() * 25), bg2 = hsl(hue + 30 + r() * 60, 30 + r() * 40, 15 + r() * 20);
  const skin = pick(r, ['#f1c7a5', '#e0ac83', '#c68a5e', '#8d5a3b', '#f5d5bd', '#d9a066', '#6b4228']);
  const hair = pick(r, ['#1d1410', '#3b2a20', '#6b4a2b', '#b88a4a', '#2a2a36', '#8a8a8a', '#a0402a', '#101010']);
  const shirt = hsl(r() * 360, 30 + r() * 50, 20 + r() * 45);
  const cx = 118 + r() * 20, cy = 112 + r() * 16, fw = 44 + r() * 14, fh = 54 + r() * 14;
  const eyeY = cy + 2 + r() * 6, eyeDx = fw * (0.36 + r() * 0.1);
  const d = (s) => ['-draw', s];
  const a = ['(', '-size', '256x256', `gradient:${bg1}-${bg2}`];
  if (r() < 0.5) a.push('-rotate', String(Math.round(r() * 4) * 90));
  a.push('-fill', shirt, ...d(`ellipse ${cx},${262 + r() * 20} ${fw * 2 + r() * 20},${70 + r() * 20} 0,360`));
  if (r() < 0.35) a.push('-fill', hair, ...d(`ellipse ${cx},${cy + 10} ${fw + 14},${fh + 24} 0,360`)); // long hair
  a.push('-fill', skin, ...d(`ellipse ${cx},${cy} ${fw},${fh} 0,360`));
  a.push('-fill', hair, ...d(`ellipse ${cx},${cy - fh * 0.55} ${fw + 6},${fh * 0.6} 180,360`));
  a.push('-fill', '#141414', ...d(`circle ${cx - eyeDx},${eyeY} ${cx - eyeDx},${eyeY + 4 + r() * 3}`), ...d(`circle ${cx + eyeDx},${eyeY} ${cx + eyeDx},${eyeY + 4 + r() * 3}`));
  if (r() < 0.3) a.push('-fill', 'none', '-stroke', '#222', '-strokewidth', '3', ...d(`circle ${cx - eyeDx},${eyeY} ${cx - eyeDx},${eyeY + 13}`), ...d(`circle ${cx + eyeDx},${eyeY} ${cx + eyeDx},${eyeY + 13}`), '-stroke', 'none');
  const my = cy + fh * 0.45;
  a.push('-fill', 'none', '-stroke', pick(r, ['#7a3a2a', '#9a4a4a', '#5a2a20']), '-strokewidth', String(3 + Math.round(r() * 2)),
    ...d(`arc ${cx - 18},${my - 12} ${cx + 18},${my + 10} ${15 + r() * 15},${160 + r() * 10}`), '-stroke', 'none');
  a.push('-attenuate', (0.5 + r() * 0.5).toFixed(2), '+noise', 'Gaussian', '-blur', '0x0.6', '-quality', '85');
  a.push('-write', file, ')');
  return a;
}

/**
 * Make sure `count` faces exist (256 px `face-N.jpg`, 64 px `thumb-N.jpg`) and return their bytes.
 * Returns {full: Buffer[], thumb: Buffer[], bytes} ; throws with a clear message when ImageMagick is missing.
 */
export function ensureAvatarSet({ count = 400, dir = AVATAR_DIR, log = () => {} } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const full = (i) => path.join(dir, `face-${i}.jpg`);
  const thumb = (i) => path.join(dir, `thumb-${i}.jpg`);
  const missing = [];
  for (let i = 0; i < count; i++) if (!fs.existsSync(full(i)) || !fs.existsSync(thumb(i))) missing.push(i);
  if (missing.length) {
    log(`generating ${missing.length} avatar JPEGs with ImageMagick into ${path.relative(ROOT, dir)} (cached)…`);
    const BATCH = 40;
    for (let b = 0; b < missing.length; b += BATCH) {
      const ids = missing.slice(b, b + BATCH);
      const args = [];
      for (const i of ids) args.push(...faceArgs(i, full(i)));
      args.push('null:');
      try {
        execFileSync('convert', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (err) {
        throw new Error(`ImageMagick 'convert' failed (apt-get install imagemagick): ${err.stderr || err.message}`);
      }
      const targs = [];
      for (const i of ids) targs.push('(', full(i), '-resize', '64x64', '-quality', '85', '-write', thumb(i), ')');
      targs.push('null:');
      execFileSync('convert', targs, { stdio: ['ignore', 'ignore', 'pipe'] });
    }
  }
  const set = { full: [], thumb: [], bytes: 0 };
  for (let i = 0; i < count; i++) {
    set.full.push(fs.readFileSync(full(i)));
    set.thumb.push(fs.readFileSync(thumb(i)));
    set.bytes += set.full[i].length;
  }
  return set;
}

// Standalone: node bench/avatars.mjs [count]  — generate the set and print its size.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const n = +(process.argv[2] || 400);
  const t0 = Date.now();
  const set = ensureAvatarSet({ count: n, log: console.log });
  console.log(`${n} faces, mean ${Math.round(set.bytes / n)} B per 256 px JPEG, ${Date.now() - t0} ms`);
}
