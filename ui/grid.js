/* Voicewall — the wall's crowd: how everyone is drawn (ui/wall.js keeps the data flow).
 *
 * Plain JS, no build step; loaded before wall.js, exposes `window.VoicewallGrid`:
 *   const grid = VoicewallGrid.create({ root, crowd, stage, mosaic, app, onTap, isBooting })
 *   grid.set(participants)        whole list in join order (state load / resync): keeps known faces
 *   grid.add(p, animate)          a join or a profile update (upsert); laid out by the next grid.layout
 *   grid.remove(id)
 *   grid.speaking(id | null)      who is speaking now (one at a time)
 *   grid.badge(id, {lit, n, d, latestAt})   unplayed voice/video count and duration (computed by wall.js)
 *   grid.fresh(id)                a new message: the face pulses for a moment
 *   grid.layout(area, vmin)       lay out in `area` (CSS px, the #grid box); returns true when the spotlight
 *                                 should be re-placed (mode or stage geometry changed)
 *   grid.spotArea()               where the spotlight may go, relative to the area (covers the mosaic only)
 *   grid.theme()                  the accent colour changed
 *   grid.info / rectOf / stageIds / tileOf / imagesPending / settled   read-only hooks for tests and benches
 * Shared face helpers for the spotlight and bubbles: VoicewallGrid.fillFace, .initials, .colourFor.
 *
 * Two ways to draw the crowd:
 * - A grid of DOM avatars while every face is still readable: cell >= MIN_FACE_FRAC of the short side
 *   (54 px at 1920x1080, 36 px at 1280x720). Avatars are in normal flow inside one flex-wrap box of rows
 *   (each row a stacking context, so a join repaints one row), names when cells are big, FLIP glides.
 * - The big room, when cells would fall below that: a "stage" row of large named faces (the speaking
 *   person first, people with new voice messages, the newest arrivals; each stays STAGE_DWELL_MS so a
 *   fast-filling room stays readable), ended by a count disc "+4,994 more" the back row can read, above a
 *   mosaic of everyone drawn on ONE canvas.
 *   Why a canvas rather than CSS containment or WebGL: with thousands of DOM avatars every join, badge or
 *   ring costs style/layout/paint work that grows with the crowd, and software compositing (the kiosk and
 *   the bench) pays for every layer; containment only bounds the layout part. On a 2D canvas a join is one
 *   drawImage of a pre-decoded tile, the page has a few dozen elements whatever the crowd, and a re-layout
 *   is one pass of drawImage calls; WebGL would add a GPU dependency for no gain at 5,000 tiles. Tiles are
 *   fetched and decoded off the main thread at the size they are drawn (createImageBitmap with
 *   resizeWidth), circle-masked once, kept as small bitmaps (the image atlas is the canvas itself).
 * Avatar sizes: the smallest variant that covers what is drawn — `thumb_url` (a ~64 px square the server
 * may offer) when the drawn size x devicePixelRatio <= THUMB_PX, else `avatar_url` — falling back to
 * `avatar_url` when the thumbnail fails, then to initials.
 */
(() => {
  'use strict';

  const GLIDE_MS = 700;
  const FRESH_MS = 5000;         // how long a new message pulses
  const NAMED_MIN_CELL = 118;    // show names under avatars when cells are at least this big (px)
  const MIN_FACE_FRAC = 0.05;    // the readable minimum: below this cell (fraction of the short side) the big room takes over
  const THUMB_PX = 64;           // `thumb_url` covers faces drawn up to this many device pixels
  const STAGE_DWELL_MS = 4000;   // a face stays on the stage at least this long (the speaker takes a slot at once)
  const TILE_CONCURRENCY = 12;   // avatar fetch+decode jobs in flight (more than the 6 connections: decodes overlap fetches)
  const TAU = Math.PI * 2;

  // ---------------------------------------------------------------- face helpers (shared with wall.js)
  function hash(str) {
    let h = 2166136261;
    for (let i = 0; i < str.length; i++) { h ^= str.charCodeAt(i); h = Math.imul(h, 16777619); }
    return h >>> 0;
  }
  function colourFor(id) {
    const h = hash(String(id));
    return `hsl(${h % 360} ${55 + (h >> 9) % 20}% ${38 + (h >> 17) % 12}%)`;
  }
  const CJK = /[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]/;
  function initials(name) {
    const s = String(name || '').trim();
    if (!s) return '?';
    const chars = Array.from(s.replace(/[\s\p{P}\p{S}]+/gu, ' ').trim() || s);
    if (CJK.test(s)) {
      // Chinese/Japanese/Korean names: the first CJK character reads best.
      const c = chars.find((ch) => CJK.test(ch));
      return c || chars[0];
    }
    const words = chars.join('').split(/\s+/).filter(Boolean);
    if (words.length >= 2) return (Array.from(words[0])[0] + Array.from(words[1])[0]).toUpperCase();
    return Array.from(words[0] || s).slice(0, 2).join('').toUpperCase();
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function safeUrl(u) {
    // Only same-origin relative URLs (/media/…, /api/…); never hotlink anything else.
    if (typeof u !== 'string' || !u) return null;
    if (u.startsWith('/') && !u.startsWith('//')) return u;
    try {
      const url = new URL(u, location.href);
      if (url.origin === location.origin) return url.pathname + url.search;
    } catch (_) { /* ignore */ }
    return null;
  }
  // Which avatar URLs to try for a face drawn `drawPx` CSS pixels wide, best first. No profile yet: the
  // server's avatar is a generated placeholder too; drawing the initials here saves an image request.
  function avatarSources(p, drawPx) {
    if (!p || p.has_profile === false) return [];
    const full = safeUrl(p.avatar_url), thumb = safeUrl(p.thumb_url);
    const out = [];
    if (thumb && drawPx * (window.devicePixelRatio || 1) <= THUMB_PX) out.push(thumb);
    // (the server sends thumb_url = avatar_url when there is no thumbnail: a generated SVG)
    if (full && !out.includes(full)) out.push(full);
    return out;
  }
  // Face = coloured disc with initials underneath an <img>; a failed thumbnail falls back to the full
  // avatar, a failed avatar is removed so the generated one shows (never a broken-image icon).
  function fillFace(face, p, drawPx = Infinity) {
    face.style.setProperty('--c', colourFor(p.id || p.person_id || p.display_name));
    let ini = face.querySelector('.ini');
    if (!ini) { ini = el('span', 'ini'); face.appendChild(ini); }
    ini.textContent = initials(p.display_name);
    const srcs = avatarSources(p, drawPx);
    let img = face.querySelector('img');
    if (!srcs.length) { if (img) img.remove(); face.classList.add('noimg'); return; }
    if (img && img.dataset.primary === srcs[0] && !face.classList.contains('noimg')) return;
    face.classList.remove('noimg');
    if (!img) {
      img = document.createElement('img');
      img.alt = '';
      img.decoding = 'async';
      img.draggable = false;
      face.appendChild(img);
    }
    img.dataset.primary = srcs[0];
    img.dataset.fallback = srcs[1] || '';
    img.src = srcs[0];
  }
  // image errors do not bubble; catch them in the capture phase for the whole document.
  document.addEventListener('error', (e) => {
    const t = e.target;
    if (t && t.tagName === 'IMG' && t.parentElement && t.parentElement.classList.contains('face')) {
      if (t.dataset.fallback) { const next = t.dataset.fallback; t.dataset.fallback = ''; t.src = next; return; }
      t.parentElement.classList.add('noimg');
      t.remove();
    }
  }, true);
  function px(v) { return `${Math.round(v)}px`; }

  // ---------------------------------------------------------------- the grid
  function create({ root, crowd, stage: stageEl, mosaic: mosaicEl, app, onTap = () => {}, isBooting = () => false }) {
    const recs = new Map();      // id -> {p, view (grid DOM, lazy), tile (mosaic bitmap), idx, x, y, lit, badgeN, badgeD, latestAt, speaking, freshUntil…}
    let order = [];              // ids in join order
    const lit = new Set();       // ids with unplayed voice/video messages
    let speaker = null;
    let L = null;                // the last layout
    let lastChange = 0;
    const rowEls = [];
    let accentCache = '';
    let more = null;             // the stage's count disc

    function accentColour() {
      if (!accentCache) accentCache = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#ffb020';
      return accentCache;
    }

    // ---------------------------------------------------------------- DOM avatars
    /** A DOM avatar (grid cell or stage slot): {node, face, name, badge}. */
    function makeView(cls) {
      const node = el('div', cls);
      node.setAttribute('role', 'button');
      const face = el('div', 'face');
      const name = el('div', 'name');
      node.append(face, name);
      return { node, face, name, badge: null };
    }
    function fillView(v, rec, drawPx) {
      const p = rec.p;
      v.node.dataset.pid = p.id;
      fillFace(v.face, p, drawPx);
      if (v.name.textContent !== (p.display_name || '')) v.name.textContent = p.display_name || '';
      v.node.title = p.display_name || '';
      v.node.setAttribute('aria-label', p.display_name || '');
      v.node.classList.toggle('speaking', !!rec.speaking);
      paintBadge(v, rec);
    }
    function gridFacePx() { const c = (L && L.cell) || 120; return c * (c >= NAMED_MIN_CELL ? 0.72 : 0.86); }
    function ensureView(rec, animate) {
      if (rec.view) return rec.view;
      rec.view = makeView('av');
      fillView(rec.view, rec, gridFacePx());
      if (animate) {
        rec.view.node.classList.add('enter');
        const node = rec.view.node;
        setTimeout(() => node.classList.remove('enter'), 900);
      }
      return rec.view;
    }
    function dropView(rec) {
      if (!rec.view) return;
      rec.view.node.remove();
      rec.view = null;
      rec.row = -1; rec.col = -1;
    }
    function paintBadge(v, rec) {
      v.node.classList.toggle('lit', rec.lit);
      if (!rec.lit) {
        if (v.badge) { v.badge.remove(); v.badge = null; }
        return;
      }
      if (!v.badge) {
        v.badge = el('span', 'badge');
        v.badge.innerHTML = '<b class="n"></b><span class="d"></span>';
        v.face.appendChild(v.badge);
      }
      const nEl = v.badge.firstChild, dEl = v.badge.lastChild;
      if (nEl.textContent !== rec.badgeN) nEl.textContent = rec.badgeN;
      if (dEl.textContent !== rec.badgeD) dEl.textContent = rec.badgeD;
      v.badge.dataset.count = rec.badgeN;
    }

    // ---------------------------------------------------------------- the interface
    function add(p, animate) {
      if (!p || !p.id) return;
      let rec = recs.get(p.id);
      const avatarChanged = rec && (rec.p.avatar_url !== p.avatar_url || rec.p.thumb_url !== p.thumb_url || rec.p.has_profile !== p.has_profile);
      if (!rec) {
        rec = { p, view: null, tile: null, x: NaN, y: NaN, idx: -1, row: -1, col: -1, fresh: 0,
          lit: false, badgeN: '', badgeD: '', latestAt: '', speaking: p.id === speaker, freshUntil: 0 };
        recs.set(p.id, rec);
        order.push(p.id);
        // the DOM avatar (grid mode) or the tile (big room) is made by the next layout
        rec.enter = !!animate;
        if (animate) rec.freshUntil = performance.now() + 1500;
      }
      rec.p = p;
      if (avatarChanged) dropTile(rec);
      if (rec.view) fillView(rec.view, rec, gridFacePx());
      if (M.on && rec.idx >= 0 && avatarChanged) drawTile(rec, true);
      if (M.on) { const slot = stageSlotOf(p.id); if (slot) fillView(slot.view, rec, ST.cell * 0.72); }
    }

    function remove(id) {
      const rec = recs.get(id);
      if (!rec) return;
      recs.delete(id);
      lit.delete(id);
      const i = order.indexOf(id);
      if (i >= 0) order.splice(i, 1);
      dropView(rec);
      dropTile(rec);
      rec.idx = -1;
      M.dirty = true;                        // everyone after them moves up one tile
      scheduleStage();
    }

    /** The whole list (state load, resync): known faces keep their place, newcomers by join time. */
    function set(list, animateNew) {
      const ids = new Set(list.map((p) => p.id));
      for (const id of [...recs.keys()]) if (!ids.has(id)) remove(id);
      const known = new Map(order.map((id, i) => [id, i]));
      const sorted = list.slice().sort((a, b) => {
        const ka = known.has(a.id) ? known.get(a.id) : Infinity;
        const kb = known.has(b.id) ? known.get(b.id) : Infinity;
        if (ka !== kb) return ka - kb;
        return String(a.joined_at || '').localeCompare(String(b.joined_at || ''));
      });
      for (const p of sorted) add(p, !!animateNew && !recs.has(p.id));
      order = sorted.map((p) => p.id).filter((id) => recs.has(id));
      M.dirty = true;                        // the order may have changed: redraw the mosaic whole
    }

    function badge(id, b) {
      const rec = recs.get(id);
      if (!rec) return;
      const was = rec.lit;
      rec.lit = !!b.lit;
      rec.badgeN = String(b.n || 0);
      rec.badgeD = b.d || '';
      rec.latestAt = b.latestAt || '';
      if (rec.lit) lit.add(id); else lit.delete(id);
      if (rec.view) paintBadge(rec.view, rec);
      if (M.on) {
        const slot = stageSlotOf(id);
        if (slot) paintBadge(slot.view, rec);
        if (was !== rec.lit) {
          if (rec.idx >= 0) drawTile(rec, true);
          scheduleStage();
        }
      }
    }

    function fresh(id) {
      const rec = recs.get(id);
      if (!rec) return;
      const slot = M.on && stageSlotOf(id);
      const nodes = [rec.view && rec.view.node, slot && slot.view.node].filter(Boolean);
      for (const n of nodes) n.classList.add('fresh');
      clearTimeout(rec.fresh);
      rec.fresh = setTimeout(() => { for (const n of nodes) n.classList.remove('fresh'); }, FRESH_MS);
    }

    function speaking(id) {
      const prev = speaker;
      speaker = id || null;
      for (const pid of [prev, speaker]) {
        const rec = pid && recs.get(pid);
        if (!rec) continue;
        const on = pid === speaker;
        rec.speaking = on;
        if (rec.view) rec.view.node.classList.toggle('speaking', on);
        if (M.on && rec.idx >= 0) drawTile(rec, true);
        const slot = M.on && stageSlotOf(pid);
        if (slot) slot.view.node.classList.toggle('speaking', on);
      }
      scheduleStage();
    }

    // ---------------------------------------------------------------- layout
    function fitGrid(n, w, h, maxCell) {
      let best = { cell: 0, cols: 1 };
      for (let cols = 1; cols <= n; cols++) {
        const rows = Math.ceil(n / cols);
        const cell = Math.min(w / cols, h / rows);
        if (cell > best.cell) best = { cell, cols };
        if (w / cols < best.cell) break;            // more columns only shrink cells
      }
      const capped = best.cell > maxCell;
      const cell = Math.max(8, Math.min(Math.floor(best.cell), Math.floor(maxCell)));
      let cols;
      if (capped) {
        // few people: balanced rows (12 -> 4 x 3, not 5 + 5 + 2)
        const rows = Math.ceil(n / best.cols);
        cols = Math.ceil(n / rows);
      } else {
        cols = Math.max(1, Math.min(n, Math.floor(w / cell)));
      }
      return { cell, cols, capacity: cols * Math.max(1, Math.floor(h / cell)) };
    }

    /** Lay out in `area` ({x,y,w,h}, CSS px); true when the spotlight's place may have changed. */
    function layout(area, vmin) {
      const prev = L;
      const n = order.length;
      const frameKey = [area.x, area.y, area.w, area.h, vmin].join();
      // Readable faces: the DOM grid. Below MIN_FACE_FRAC of the short side: the big room (stage + mosaic),
      // with a little hysteresis so a crowd at the threshold does not flip back and forth.
      const maxCell = vmin * 0.24;
      const ideal = n > 0 ? fitGrid(n, area.w, area.h, maxCell) : null;
      const room = !!ideal && ideal.cell < vmin * MIN_FACE_FRAC * (M.on ? 1.1 : 1);
      const switched = room !== M.on;
      if (switched) switchMode(room);
      const f = { area, vmin, n };
      if (room) layoutRoom(f, frameKey, prev);
      else layoutGrid(f, frameKey, switched ? null : prev, ideal, maxCell);
      return !prev || prev.frameKey !== frameKey || switched || (room && prev.stageKey !== L.stageKey);
    }

    function layoutGrid(f, frameKey, prev, ideal, maxCell) {
      const n = f.n;
      // grid: keep the current cell size while it still fits and is not much too small
      const big = n > 40;
      let g = prev && prev.grid && !prev.room && prev.frameKey === frameKey ? prev.grid : null;
      if (n > 0) {
        const keep = g && big && g.capacity >= n && g.cell <= ideal.cell * 1.0 && g.cell >= ideal.cell * 0.9 && g.big;
        if (!keep) {
          if (big) {
            // leave ~6 % spare capacity so a growing crowd doesn't re-flow on every join
            const target = Math.ceil(n * 1.06) + 2;
            g = fitGrid(target, f.area.w, f.area.h, maxCell);
          } else {
            g = ideal;
          }
          g.big = big;
        }
      } else {
        g = { cell: 0, cols: 1, capacity: 0, big: false };
      }
      const cell = g.cell;
      const cols = Math.max(1, g.cols);
      const rowsUsed = n ? Math.ceil(n / cols) : 0;
      // for big crowds, centre the block of capacity (stable); for small ones centre what is used
      const rowsForCentre = g.big ? Math.min(Math.floor(f.area.h / Math.max(1, cell)), Math.ceil(g.capacity / cols)) : rowsUsed;
      const usedCols = g.big ? cols : Math.min(n, cols);
      const baseX = Math.max(0, Math.floor((f.area.w - usedCols * cell) / 2));
      const offY = Math.max(0, Math.floor((f.area.h - rowsForCentre * cell) / 2));
      const cellChanged = !prev || prev.grid.cell !== cell;
      const geomChanged = cellChanged || !prev || prev.cols !== usedCols || prev.offX !== baseX || prev.offY !== offY || prev.big !== g.big;

      // The crowd is ONE flex-wrap box: avatars are in normal flow (no per-avatar positioning, clip or
      // transform), so hundreds of them paint as one chunk and a join is a cheap append. Re-flows glide
      // with FLIP (Web Animations on transform) for the avatars that actually moved.
      const flipAll = geomChanged || n <= 400;
      const oldPos = flipAll ? new Map() : null;
      if (flipAll) for (const rec of recs.values()) if (!Number.isNaN(rec.x)) oldPos.set(rec, [rec.x, rec.y, prev ? prev.cell : cell]);
      if (geomChanged) {
        crowd.style.setProperty('--cell', px(cell));
        root.style.setProperty('--cell', px(cell));
        Object.assign(crowd.style, { left: px(baseX), top: px(offY), width: px(usedCols * cell) });
        crowd.classList.toggle('big', !!g.big);
        root.classList.toggle('named', cell >= NAMED_MIN_CELL);
        root.classList.toggle('tiny', cell > 0 && cell < 44);
      }
      // Rows: every row of avatars is its own small stacking context (cached paint), so a join
      // repaints one row, not every avatar. Positions are computed, never read back from layout.
      let moved = 0;
      const animateMoves = !!prev && prev.cell > 0 && !isBooting();
      const dirtyRows = new Set();
      const facePx = cell * (cell >= NAMED_MIN_CELL ? 0.72 : 0.86);
      for (let i = 0; i < n; i++) {
        const rec = recs.get(order[i]);
        const isNew = !rec.view;
        const v = ensureView(rec, rec.enter && !!prev);
        rec.enter = false;
        if (cellChanged && !isNew) fillFace(v.face, rec.p, facePx);   // thumbnail or full avatar for the new size
        const r = Math.floor(i / cols), c = i % cols;
        let x = c * cell;
        if (!g.big && r === rowsUsed - 1) x += Math.floor(((usedCols - (n - r * cols)) * cell) / 2);
        const y = r * cell;
        if (rec.row !== r || rec.col !== c) dirtyRows.add(r);
        rec.row = r; rec.col = c;
        const old = oldPos && oldPos.get(rec);
        if (old && animateMoves) {
          const dx = old[0] + prev.offX - (x + baseX), dy = old[1] + prev.offY - (y + offY);
          const k = old[2] / Math.max(1, cell);
          if (Math.abs(dx) >= 0.5 || Math.abs(dy) >= 0.5 || Math.abs(k - 1) >= 0.01) {
            moved++;
            v.node.animate([{ transform: `translate(${dx}px,${dy}px) scale(${k})` }, { transform: 'none' }],
              { duration: GLIDE_MS, easing: 'cubic-bezier(0.2, 0.8, 0.2, 1)' });
          }
        }
        rec.x = x; rec.y = y;
      }
      const nRows = rowsUsed;
      while (rowEls.length < nRows) { const row = el('div', 'row'); rowEls.push(row); crowd.appendChild(row); }
      while (rowEls.length > nRows) rowEls.pop().remove();
      if (rowEls.length && !dirtyRows.size && rowEls[rowEls.length - 1].childElementCount !== n - (nRows - 1) * cols) dirtyRows.add(nRows - 1);
      for (const r of dirtyRows) {
        const row = rowEls[r];
        const want = order.slice(r * cols, Math.min(n, (r + 1) * cols)).map((id) => recs.get(id).view.node);
        const have = row.children;
        let prefix = 0;
        while (prefix < have.length && prefix < want.length && have[prefix] === want[prefix]) prefix++;
        if (prefix === have.length) { for (let j = prefix; j < want.length; j++) row.appendChild(want[j]); }
        else row.replaceChildren(...want);
      }
      if (moved || dirtyRows.size) lastChange = performance.now();

      L = { frameKey, grid: g, f, cell, cols: usedCols, rows: rowsUsed, offX: baseX, offY, big: g.big, room: false, stageKey: '' };
    }

    // ---------------------------------------------------------------- the big room: stage + mosaic
    const mctx = mosaicEl.getContext('2d');
    // mosaic geometry (CSS px, relative to the grid area) and state
    const M = { on: false, y: 0, w: 0, h: 0, cell: 0, cols: 1, capacity: 0, offX: 0, offY: 0, dpr: 1, key: '', dirty: true };
    // avatar tiles waiting for fetch+decode (a FIFO with a moving head: thousands are queued on first load)
    const tiles = { queue: [], head: 0, inFlight: 0, pending: 0 };
    // stage: a few big faces; slots keep their place, their occupant changes; a count disc ends the row
    const ST = { cell: 0, k: 0, slots: [], queued: false, timer: 0 };

    function switchMode(room) {
      M.on = room;
      if (app) app.classList.toggle('big-room', room);
      stageEl.hidden = !room;
      mosaicEl.hidden = !room;
      crowd.hidden = room;
      if (room) {
        // the grid's DOM avatars go; the mosaic draws everyone
        crowd.replaceChildren();
        rowEls.length = 0;
        for (const rec of recs.values()) { dropView(rec); rec.x = NaN; rec.y = NaN; }
        root.classList.remove('named', 'tiny');
        M.key = '';
        M.dirty = true;
      } else {
        for (const s of ST.slots) s.view.node.remove();
        if (more) { more.node.remove(); more = null; }
        ST.slots = []; ST.k = 0;
        for (const rec of recs.values()) { dropTile(rec); rec.idx = -1; }
        mosaicEl.width = 1; mosaicEl.height = 1;
      }
      lastChange = performance.now();
    }

    function layoutRoom(f, frameKey, prev) {
      const n = f.n;
      const a = f.area;
      // stage: one row of big named faces across the top of the area, the last slot is the count disc
      const sCell = Math.floor(Math.min(a.h * 0.25, f.vmin * 0.24, a.w / 3));
      const k = Math.max(1, Math.min(10, Math.floor(a.w / sCell) - 1));
      const sGap = Math.round(f.vmin * 0.02);
      const stageKey = [frameKey, sCell, k].join();
      if (!prev || prev.stageKey !== stageKey) {
        ST.cell = sCell;
        stageEl.style.setProperty('--cell', px(sCell));
        Object.assign(stageEl.style, { left: px(Math.floor((a.w - (k + 1) * sCell) / 2)), top: '0px', width: px((k + 1) * sCell), height: px(sCell) });
        if (!more) {
          const node = el('div', 'stage-more');
          node.setAttribute('aria-live', 'polite');
          const disc = el('div', 'face more-disc');
          const num = el('span', 'more-n');
          disc.append(num);
          const label = el('div', 'more-label');
          node.append(disc, label);
          more = { node, num, label, n: -1 };
        }
        while (ST.slots.length < k) { const view = makeView('av stage-av'); stageEl.appendChild(view.node); ST.slots.push({ pid: null, since: 0, view }); }
        while (ST.slots.length > k) ST.slots.pop().view.node.remove();
        stageEl.appendChild(more.node);
        ST.k = k;
        for (const s of ST.slots) { const rec = s.pid && recs.get(s.pid); if (rec) fillView(s.view, rec, sCell * 0.72); }
      }
      // mosaic: everyone, in join order, below the stage
      const my = sCell + sGap, mw = a.w, mh = Math.max(10, a.h - my);
      const readable = f.vmin * MIN_FACE_FRAC;
      const ideal = fitMosaic(n, mw, mh, readable);
      const keep = M.key.startsWith(`${stageKey}|`) && M.capacity >= n && M.cell >= ideal.cell * 0.9;
      if (!keep) {
        // ~6 % spare capacity: a growing crowd re-lays the mosaic every few dozen joins, not on every one
        const g = fitMosaic(Math.ceil(n * 1.06) + 2, mw, mh, readable);
        const cell = g.cell;
        const cols = g.cols;
        const rows = Math.max(1, Math.floor(mh / cell + 1e-6));
        Object.assign(M, { y: my, w: mw, h: mh, cell, cols, capacity: cols * rows });
        M.offX = Math.floor((mw - cols * cell) / 2);
        M.offY = Math.max(0, Math.floor((mh - Math.min(rows, Math.ceil(M.capacity / cols)) * cell) / 2));
        M.key = `${stageKey}|${cell}|${cols}`;
        const dpr = window.devicePixelRatio || 1;
        M.dpr = dpr;
        Object.assign(mosaicEl.style, { left: '0px', top: px(my), width: px(mw), height: px(mh) });
        mosaicEl.width = Math.round(mw * dpr);
        mosaicEl.height = Math.round(mh * dpr);
        M.dirty = true;
      }
      // draw: everything after a re-layout or a departure, otherwise only the new tiles
      if (M.dirty) {
        mctx.setTransform(M.dpr, 0, 0, M.dpr, 0, 0);
        mctx.clearRect(0, 0, M.w, M.h);
        const now = performance.now();
        for (let i = 0; i < n; i++) {
          const rec = recs.get(order[i]);
          rec.idx = i;
          drawTile(rec, false);
          if (rec.freshUntil > now) unringLater(rec);
        }
        M.dirty = false;
      } else {
        for (let i = n - 1; i >= 0; i--) {
          const rec = recs.get(order[i]);
          if (rec.idx === i) break;                // joins only append: stop at the first one already drawn
          rec.idx = i;
          drawTile(rec, true);
          if (rec.freshUntil > performance.now()) unringLater(rec);
        }
      }
      const rows = Math.ceil(n / M.cols);
      L = { frameKey, f, room: true, stageKey, cell: M.cell, cols: M.cols, rows, offX: M.offX, offY: M.offY + M.y, big: true, grid: { cell: M.cell, cols: M.cols, capacity: M.capacity } };
      scheduleStage();
    }

    // Mosaic cells may be fractional (a tiny cell floored to whole pixels wastes up to a fifth of the area);
    // each tile's rectangle is snapped to whole pixels so a tile can be cleared and redrawn alone.
    function fitMosaic(n, w, h, maxCell) {
      let best = { cell: 0, cols: 1 };
      for (let cols = 1; cols <= Math.max(1, n); cols++) {
        const cell = Math.min(w / cols, h / Math.ceil(n / cols));
        if (cell > best.cell) best = { cell, cols };
        if (w / cols < best.cell) break;
      }
      if (best.cell <= maxCell && best.cell >= 3) return best;
      const cell = Math.max(3, Math.min(maxCell, best.cell));
      return { cell, cols: Math.max(1, Math.floor(w / cell + 1e-6)) };
    }
    // a newcomer's tile wears a white ring for a moment; redraw it plain afterwards
    function unringLater(rec) {
      setTimeout(() => { if (M.on && rec.idx >= 0 && recs.get(rec.p.id) === rec) drawTile(rec, true); }, rec.freshUntil - performance.now() + 20);
    }
    function faceDiameter(cell) { return cell * 0.88; }
    /** [x, y, w, h] of tile i in mosaic coordinates, on whole pixels */
    function tileRect(i) {
      const c = i % M.cols, r = Math.floor(i / M.cols);
      const x = Math.round(M.offX + c * M.cell), y = Math.round(M.offY + r * M.cell);
      return [x, y, Math.round(M.offX + (c + 1) * M.cell) - x, Math.round(M.offY + (r + 1) * M.cell) - y];
    }

    /** Draw one participant's tile on the mosaic (its bitmap, or a coloured disc while it loads / if it has none). */
    function drawTile(rec, clear) {
      const [x, y, w, h] = tileRect(rec.idx);
      const c = Math.min(w, h), d = faceDiameter(c), o = (c - d) / 2;
      const g = mctx;
      if (clear) g.clearRect(x, y, w, h);
      const t = rec.tile;
      const need = Math.ceil(d * M.dpr);
      if (t && t.bmp) g.drawImage(t.bmp, x + o, y + o, d, d);
      else {
        g.fillStyle = colourFor(rec.p.id || rec.p.person_id || rec.p.display_name);
        g.beginPath(); g.arc(x + c / 2, y + c / 2, d / 2, 0, TAU); g.fill();
        if (c >= 28) {
          g.fillStyle = 'rgba(255,255,255,0.95)';
          g.font = `800 ${Math.round(c * 0.34)}px sans-serif`;
          g.textAlign = 'center'; g.textBaseline = 'middle';
          g.fillText(initials(rec.p.display_name), x + c / 2, y + c / 2);
        }
      }
      if (!t || (t.state !== 'loading' && t.state !== 'none-available' && (!t.bmp || t.px < need * 0.75))) wantTile(rec, need);
      const ring = rec.speaking ? 0.13 : rec.lit ? 0.09 : rec.freshUntil > performance.now() ? 0.07 : 0;
      if (ring) {
        const lw = Math.max(1.5, c * ring);
        g.lineWidth = lw;
        g.strokeStyle = rec.speaking || rec.lit ? accentColour() : '#ffffff';
        g.beginPath(); g.arc(x + c / 2, y + c / 2, c / 2 - lw / 2, 0, TAU); g.stroke();
      }
    }

    function dropTile(rec) {
      const t = rec.tile;
      if (!t) return;
      release(t.bmp);
      if (t.state === 'loading') tiles.pending--;   // its job is dropped when it finishes (generation changed)
      rec.tile = null;
    }

    // Ask for the tile at `need` device pixels (rounded up to a multiple of 16, so a small re-layout
    // reuses the bitmap; a bitmap down to 3/4 of the need is drawn as is).
    function wantTile(rec, need) {
      const size = Math.max(16, Math.ceil(need / 16) * 16);
      const srcs = avatarSources(rec.p, size / M.dpr);
      const t = rec.tile || (rec.tile = { bmp: null, px: 0, state: 'none', gen: 0 });
      if (!srcs.length) { t.state = 'none-available'; return; }
      t.state = 'loading';
      t.gen++;
      tiles.pending++;
      tiles.queue.push({ rec, tile: t, gen: t.gen, px: size, srcs });
      pumpTiles();
    }

    function pumpTiles() {
      while (tiles.inFlight < TILE_CONCURRENCY && tiles.head < tiles.queue.length) {
        const job = tiles.queue[tiles.head];
        tiles.queue[tiles.head++] = null;
        if (tiles.head > 1024 && tiles.head * 2 > tiles.queue.length) { tiles.queue = tiles.queue.slice(tiles.head); tiles.head = 0; }
        if (job.rec.tile !== job.tile || job.tile.gen !== job.gen) continue;     // dropped or re-asked meanwhile
        tiles.inFlight++;
        loadTile(job).finally(() => { tiles.inFlight--; pumpTiles(); });
      }
    }

    async function loadTile(job) {
      let bmp = null;
      for (const src of job.srcs) {
        try { bmp = await bakeTile(src, job.px); break; } catch (_) { /* next source, then initials */ }
      }
      const t = job.tile;
      if (job.rec.tile !== t || t.gen !== job.gen) { release(bmp); return; }
      tiles.pending--;
      release(t.bmp);
      t.bmp = bmp;
      t.px = bmp ? job.px : 0;
      t.state = bmp ? 'image' : 'none-available';
      if (M.on && job.rec.idx >= 0 && recs.get(job.rec.p.id) === job.rec) drawTile(job.rec, true);
    }

    // Fetch an avatar and decode it at the size it is drawn (off the main thread), masked to a circle once.
    // Engines without createImageBitmap resize options or OffscreenCanvas (older WebKitGTK in the kiosk
    // shell) still get tiles: a full-size decode, and a plain canvas as the tile.
    async function bakeTile(src, size) {
      const r = await fetch(src);
      if (!r.ok) throw new Error(`avatar ${r.status}`);
      const blob = await r.blob();
      const img = typeof createImageBitmap === 'function'
        ? await createImageBitmap(blob, { resizeWidth: size, resizeQuality: 'medium' })
        : await imageOf(blob);
      try {
        const off = typeof OffscreenCanvas === 'function';
        const c = off ? new OffscreenCanvas(size, size) : Object.assign(document.createElement('canvas'), { width: size, height: size });
        const g = c.getContext('2d');
        g.beginPath(); g.arc(size / 2, size / 2, size / 2, 0, TAU); g.clip();
        const w = img.naturalWidth || img.width, h = img.naturalHeight || img.height;
        const s = Math.min(w, h);                              // cover: centre-crop the longer side
        g.drawImage(img, (w - s) / 2, (h - s) / 2, s, s, 0, 0, size, size);
        return off && c.transferToImageBitmap ? c.transferToImageBitmap() : c;
      } finally { release(img); }
    }
    function imageOf(blob) {
      const url = URL.createObjectURL(blob);
      const i = new Image();
      i.src = url;
      return i.decode().then(() => i, (err) => { throw err; }).finally(() => URL.revokeObjectURL(url));
    }
    function release(b) { if (b && typeof b.close === 'function') b.close(); }

    mosaicEl.addEventListener('click', (e) => {
      const r = mosaicEl.getBoundingClientRect();
      const cx = Math.floor((e.clientX - r.left - M.offX) / M.cell), cy = Math.floor((e.clientY - r.top - M.offY) / M.cell);
      if (cx < 0 || cx >= M.cols || cy < 0) return;
      const pid = order[cy * M.cols + cx];
      if (pid) onTap(pid);
    });
    root.addEventListener('click', (e) => {
      const av = e.target.closest && e.target.closest('.av');
      if (!av || !av.dataset.pid || av.classList.contains('leave')) return;
      onTap(av.dataset.pid);
      av.classList.remove('tap'); void av.offsetWidth; av.classList.add('tap');
      setTimeout(() => av.classList.remove('tap'), 600);
    });
    root.addEventListener('contextmenu', (e) => e.preventDefault());

    function stageSlotOf(pid) {
      for (const s of ST.slots) if (s.pid === pid) return s;
      return null;
    }
    function scheduleStage() {
      if (ST.queued || !M.on) return;
      ST.queued = true;
      requestAnimationFrame(() => { ST.queued = false; refreshStage(); });
    }

    /** Who deserves the stage, best first: the speaker, people with new messages (latest first), the newest. */
    function stageWant() {
      const out = [];
      const seen = new Set();
      const push = (pid) => { if (pid && !seen.has(pid) && recs.has(pid)) { seen.add(pid); out.push(pid); } };
      push(speaker);
      const litRecs = [...lit].map((id) => recs.get(id)).filter(Boolean);
      litRecs.sort((x, y) => (x.latestAt < y.latestAt ? 1 : x.latestAt > y.latestAt ? -1 : 0));
      for (const rec of litRecs.slice(0, ST.k)) push(rec.p.id);
      for (let i = order.length - 1; i >= 0 && out.length < ST.k * 2; i--) push(order[i]);
      return out;
    }

    function refreshStage() {
      if (!M.on || !ST.k) return;
      const now = performance.now();
      const want = stageWant();
      const rank = new Map(want.map((pid, i) => [pid, i]));
      for (const s of ST.slots) if (s.pid && !recs.has(s.pid)) s.pid = null;
      const shown = new Set(ST.slots.map((s) => s.pid).filter(Boolean));
      let nextDue = Infinity;
      for (const pid of want) {
        if (shown.has(pid)) continue;
        const r = rank.get(pid);
        // an empty slot, else the lowest-ranked occupant whose dwell has run out (the speaker does not wait)
        let best = null, bestRank = -1;
        for (const s of ST.slots) {
          if (!s.pid) { best = s; break; }
          if (s.pid === speaker) continue;
          const sr = rank.has(s.pid) ? rank.get(s.pid) : Infinity;
          if (sr <= r) continue;
          if (pid !== speaker && now - s.since < STAGE_DWELL_MS) { nextDue = Math.min(nextDue, s.since + STAGE_DWELL_MS); continue; }
          if (sr > bestRank || (sr === bestRank && s.since < best.since)) { best = s; bestRank = sr; }
        }
        if (!best) continue;
        if (best.pid) shown.delete(best.pid);
        shown.add(pid);
        best.pid = pid;
        best.since = now;
        fillView(best.view, recs.get(pid), ST.cell * 0.72);
        best.view.face.animate([{ transform: 'scale(0.2)', opacity: 0 }, { transform: 'scale(1.08)', opacity: 1, offset: 0.6 }, { transform: 'none', opacity: 1 }],
          { duration: 700, easing: 'cubic-bezier(0.2, 1.4, 0.4, 1)' });
      }
      let onStage = 0;
      for (const s of ST.slots) {
        s.view.node.hidden = !s.pid;
        if (s.pid) { onStage++; s.view.node.classList.toggle('speaking', s.pid === speaker); }
      }
      paintMore(order.length - onStage);
      clearTimeout(ST.timer);
      if (nextDue < Infinity) ST.timer = setTimeout(scheduleStage, Math.max(50, nextDue - now + 10));
    }

    // the count disc: everyone not on the stage, in the wall's language
    function paintMore(rest) {
      if (!more || more.n === rest) return;
      more.n = rest;
      const zh = /^zh/i.test(document.documentElement.lang || '');
      more.num.textContent = `+${rest.toLocaleString(zh ? 'zh-CN' : 'en-US')}`;
      more.label.textContent = zh ? '人也在墙上' : (rest === 1 ? 'more person' : 'more people');
      more.node.dataset.count = String(rest);
      more.node.setAttribute('aria-label', `${more.num.textContent} ${more.label.textContent}`);
    }

    // ---------------------------------------------------------------- read-only hooks
    return {
      set, add, remove, speaking, badge, fresh, layout,
      theme() { accentCache = ''; },
      /** where the spotlight may go, relative to the area: the mosaic in the big room, else the whole area */
      spotArea() { return M.on ? { x: 0, y: M.y, w: M.w, h: M.h } : null; },
      get settled() { return performance.now() - lastChange > GLIDE_MS + 150; },
      get minCell() { return L ? L.f.vmin * MIN_FACE_FRAC : 0; },
      get info() {
        if (!L) return null;
        return {
          cell: L.cell, cols: L.cols, rows: L.rows, capacity: L.grid.capacity, room: !!L.room, minCell: L.f.vmin * MIN_FACE_FRAC,
          stage: L.room ? { cell: ST.cell, slots: ST.slots.length, more: more ? more.n : 0 } : null,
          mosaic: L.room ? { cell: M.cell, cols: M.cols, offX: M.offX, offY: M.offY } : null,
        };
      },
      /** a participant's cell or mosaic tile relative to the area (independent of running glides) */
      rectOf(pid) {
        const rec = recs.get(pid);
        if (!rec || !L) return null;
        if (L.room) {
          if (rec.idx < 0) return null;
          const [x, y, w, h] = tileRect(rec.idx);
          return { x, y: M.y + y, w, h };
        }
        return { x: L.offX + rec.x, y: L.offY + rec.y, w: L.cell, h: L.cell };
      },
      stageIds() { return M.on ? ST.slots.map((s) => s.pid) : []; },
      tileOf(pid) { const rec = recs.get(pid); return rec && rec.tile ? { state: rec.tile.state, px: rec.tile.px } : null; },
      get imagesPending() {
        let n = tiles.pending;
        for (const i of root.querySelectorAll('.face img')) if (!i.complete) n++;
        return n;
      },
    };
  }

  window.VoicewallGrid = { create, fillFace, initials, colourFor, avatarSources, safeUrl, MIN_FACE_FRAC };
})();
