// The operator's console, /admin. Plain JS, no build step, no external URLs; the page holds no data:
// everything comes from /api/admin/… with the session cookie that POST /api/admin/login sets.
//
// - Sign in with the admin token, typed or from a `#token=…` fragment (the kiosk overlay's QR); the
//   fragment is wiped from the address bar before anything else happens.
// - A 401 from any call sends the page back to the sign-in form. A network error or a 5xx never shows a
//   dead page: the "reconnecting" bar appears and the page retries with backoff until the server answers,
//   then rebuilds everything from the API (the live list from the admin SSE of the chosen wall).
// - "Listen" plays a message in THIS browser (one <audio> element on media_url); "speakers" asks the
//   kiosk to play it in the room.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const BACKOFF = [1000, 2000, 4000, 8000, 15000];
  const HEARTBEAT_TIMEOUT_MS = 45000;
  const POLL_MS = 3000;

  // ---------- i18n (navigator language, like the join page) ----------
  const T = {
    en: {
      login_title: 'Operator console',
      login_lead: "Sign in with the admin token (printed in the kiosk's terminal at first start, or scan the QR of the kiosk overlay: Ctrl+Shift+A).",
      token: 'Admin token', sign_in: 'Sign in', sign_out: 'Sign out', wrong_token: 'That token is not right.',
      token_required: 'Enter the admin token.', reconnecting: 'Reconnecting…', offline_retry: 'Server unreachable, retrying in {s} s…',
      wall: 'Wall', tab_messages: 'Messages', tab_playback: 'Speakers', tab_wall: 'Wall', tab_health: 'Health',
      mode_post: 'Post-moderation', mode_pre: 'Pre-moderation',
      mode_post_hint: 'Messages go on the wall at once; remove what should not be there.',
      mode_pre_hint: 'Messages wait here until you approve them.',
      approve_all: 'Approve all pending ({n})', f_all: 'All', f_pending: 'Pending', f_approved: 'On the wall',
      f_hidden: 'Hidden', f_failed: 'Failed', no_messages: 'No messages yet.', no_match: 'Nothing here.',
      listen: 'Listen', stop_listening: 'Stop', approve: 'Approve', reject: 'Reject', remove: 'Remove', restore: 'Restore',
      on_speakers: 'Speakers', ban: 'Ban', unban: 'Unban', banned: 'banned',
      st_fetching: 'fetching', st_ready: 'ready', st_failed: 'failed',
      m_pending: 'pending', m_approved: 'on the wall', m_rejected: 'rejected', m_removed: 'removed',
      k_text: 'text', k_image: 'picture', k_video: 'video', k_voice: 'voice',
      speakers: 'Speakers', now_playing: 'Now playing', nothing_playing: 'Nothing playing', paused: 'paused',
      playing: 'playing', pause: 'Pause', resume: 'Resume', skip: 'Skip', stop: 'Stop', volume: 'Volume',
      queue: 'Queue', queue_empty: 'Nothing waiting.', play_next: 'Play next', dequeue: 'Remove',
      qr_visible: 'QR code on the wall', qr_visible_sub: 'Guests scan it to join.',
      idle_loop: 'Idle loop', idle_loop_sub: 'Replay approved voices after this many quiet seconds (empty = off).',
      save: 'Save', saved: 'Saved.', off: 'off', display: 'Open a display', display_sub: 'A one-time link for a browser or projector (valid 10 minutes).',
      create_link: 'Create link', copy: 'Copy', copied: 'Copied.', rotate: 'New join link',
      rotate_sub: 'The QR changes; the old link stops working at once.', rotate_btn: 'Rotate', rotated: 'New join link is on the wall.',
      no_join_token: "This wall's platform has no join link to rotate.",
      clear: 'Clear the wall', clear_sub: 'Hides everything shown so far; nothing is deleted.', clear_btn: 'Clear',
      clear_confirm: 'Clear the wall?', clear_text: 'Everyone and everything shown so far leaves the screen. The recordings are kept.',
      cleared: 'The wall is clear.', privacy: 'Privacy', export: 'Export',
      export_sub: 'A zip of every approved voice with a manifest (JSON and CSV).', download: 'Download',
      purge: 'Delete everything', purge_sub: "The wall's people, voices and caches, for good.", purge_btn: 'Delete…',
      purge_confirm: 'Delete everything of this wall?',
      purge_text: 'Every participant, voice, picture and cache of “{wall}” is deleted. This cannot be undone.',
      purge_type: 'Type the wall id ({wall}) to confirm', purge_ok: 'Delete for good', purged: 'Everything of the wall is deleted.',
      cancel: 'Cancel', audit: 'Audit log', refresh: 'Refresh', more: 'More', no_audit: 'No actions yet.',
      version: 'Version', uptime: 'Up', audio: 'Audio output', platform: 'Platform link', queue_len: 'Queue', disk_used: 'Disk used',
      disk_free: 'Disk free', media: 'Media stored', evicted: 'evicted', participants: 'People', msgs: 'Messages', failed_fetch: 'Failed fetches',
      error: 'Something went wrong: {m}', ago: '{t} ago', just_now: 'just now', done: 'Done.', speakers_started: 'Playing in the room.',
    },
    zh: {
      login_title: '运营控制台',
      login_lead: '用管理令牌登录（首次启动时打印在大屏电脑的终端里，或在大屏上按 Ctrl+Shift+A 扫描二维码）。',
      token: '管理令牌', sign_in: '登录', sign_out: '退出', wrong_token: '令牌不正确。',
      token_required: '请输入管理令牌。', reconnecting: '正在重新连接…', offline_retry: '连不上服务器，{s} 秒后重试…',
      wall: '墙', tab_messages: '消息', tab_playback: '音箱', tab_wall: '墙', tab_health: '状态',
      mode_post: '先播后审', mode_pre: '先审后播',
      mode_post_hint: '消息立即上墙；不合适的请移除。',
      mode_pre_hint: '消息先留在这里，批准后才上墙。',
      approve_all: '全部批准（{n}）', f_all: '全部', f_pending: '待审', f_approved: '已上墙',
      f_hidden: '已隐藏', f_failed: '失败', no_messages: '还没有消息。', no_match: '这里没有内容。',
      listen: '试听', stop_listening: '停止', approve: '批准', reject: '拒绝', remove: '移除', restore: '恢复',
      on_speakers: '外放', ban: '拉黑', unban: '解除拉黑', banned: '已拉黑',
      st_fetching: '获取中', st_ready: '就绪', st_failed: '失败',
      m_pending: '待审', m_approved: '已上墙', m_rejected: '已拒绝', m_removed: '已移除',
      k_text: '文字', k_image: '图片', k_video: '视频', k_voice: '语音',
      speakers: '音箱', now_playing: '正在播放', nothing_playing: '没有在播放', paused: '已暂停',
      playing: '播放中', pause: '暂停', resume: '继续', skip: '跳过', stop: '停止', volume: '音量',
      queue: '播放队列', queue_empty: '队列是空的。', play_next: '下一个播', dequeue: '移出',
      qr_visible: '墙上显示二维码', qr_visible_sub: '来宾扫码加入。',
      idle_loop: '空闲轮播', idle_loop_sub: '安静这么多秒后重播已批准的语音（留空 = 关闭）。',
      save: '保存', saved: '已保存。', off: '关闭', display: '打开一个大屏', display_sub: '给浏览器或投影用的一次性链接（10 分钟内有效）。',
      create_link: '生成链接', copy: '复制', copied: '已复制。', rotate: '更换加入链接',
      rotate_sub: '二维码随之更换，旧链接立即失效。', rotate_btn: '更换', rotated: '新的加入链接已上墙。',
      no_join_token: '这面墙的平台没有可更换的加入链接。',
      clear: '清屏', clear_sub: '把目前显示的全部撤下；不会删除任何数据。', clear_btn: '清屏',
      clear_confirm: '要清屏吗？', clear_text: '目前显示的所有人和消息都会离开屏幕，录音仍会保留。',
      cleared: '已清屏。', privacy: '隐私', export: '导出',
      export_sub: '所有已批准语音的压缩包，附清单（JSON 和 CSV）。', download: '下载',
      purge: '彻底删除', purge_sub: '永久删除这面墙的参与者、语音和缓存。', purge_btn: '删除…',
      purge_confirm: '彻底删除这面墙的一切？',
      purge_text: '“{wall}” 的所有参与者、语音、头像和缓存都会被删除，无法恢复。',
      purge_type: '输入墙的 ID（{wall}）以确认', purge_ok: '永久删除', purged: '这面墙的数据已全部删除。',
      cancel: '取消', audit: '操作日志', refresh: '刷新', more: '更多', no_audit: '还没有操作。',
      version: '版本', uptime: '已运行', audio: '音频输出', platform: '平台连接', queue_len: '队列', disk_used: '已用空间',
      disk_free: '剩余空间', media: '已存媒体', evicted: '已清理', participants: '人数', msgs: '消息', failed_fetch: '获取失败',
      error: '出错了：{m}', ago: '{t}前', just_now: '刚刚', done: '完成。', speakers_started: '正在现场播放。',
    },
  };
  function pickLang() {
    for (const l of navigator.languages || [navigator.language || '']) {
      const tag = String(l).toLowerCase();
      if (tag.startsWith('zh')) return 'zh';
      if (tag.startsWith('en')) return 'en';
    }
    return null;
  }
  const lang = pickLang() || 'zh';
  const t = (k, vars) => String(T[lang][k] || T.en[k] || k).replace(/\{(\w+)\}/g, (_, v) => (vars && v in vars ? vars[v] : ''));
  function applyI18n() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $('idle-seconds').placeholder = t('off');
  }

  // ---------- state ----------
  const S = {
    view: 'loading', tab: 'messages', connected: false, reconnecting: false,
    walls: [], wall: null, messages: new Map(), filter: 'all',
    playback: null, health: null, audit: [], auditLimit: 50,
    listening: null, actor: null, errors: 0,
  };
  // For tests and the curious: the console's own view of things.
  window.__console = {
    get view() { return S.view; }, get connected() { return S.connected; }, get wall() { return S.wall; },
    get reconnecting() { return S.reconnecting; }, get playback() { return S.playback; },
    get listening() { return S.listening; },
    message(id) { return S.messages.get(id) || null; },
    messages() { return [...S.messages.values()]; },
  };

  function show(view) {
    S.view = view;
    document.body.dataset.view = view;
  }
  let toastTimer = null;
  function toast(msg, bad) {
    const el = $('toast');
    el.textContent = msg;
    el.classList.toggle('bad', !!bad);
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, bad ? 6000 : 2500);
  }

  // ---------- HTTP ----------
  class Unauthorized extends Error {}
  class Offline extends Error {}
  class Refused extends Error {
    constructor(status, code, message) { super(message || code || `HTTP ${status}`); this.status = status; this.code = code; }
  }
  // One call to the admin API. 401 → sign-in form; network error or 5xx → the reconnect loop; a 4xx
  // refusal is thrown with the server's {code, message} for the caller to show.
  async function api(method, path, body) {
    let r;
    try {
      r = await fetch(path, {
        method,
        credentials: 'same-origin',
        cache: 'no-store',
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      lostServer();
      throw new Offline('network');
    }
    if (r.status === 401) { signedOut(); throw new Unauthorized('401'); }
    if (r.status >= 500) { lostServer(); throw new Offline(`HTTP ${r.status}`); }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!r.ok) throw new Refused(r.status, data && data.code, data && data.message);
    return data;
  }
  // A button's action: errors other than 401/offline (handled globally) become a red toast.
  async function act(fn, okMsg) {
    try {
      const v = await fn();
      if (okMsg) toast(okMsg);
      return v;
    } catch (err) {
      if (err instanceof Refused) toast(t('error', { m: err.message }), true);
      return undefined;
    }
  }
  const wallPath = (p) => `/api/admin/walls/${encodeURIComponent(S.wall)}${p}`;

  // ---------- connection: sign-in, reconnect, rebuild ----------
  let attempt = 0;
  let retryTimer = null;
  let es = null;
  let lastEventAt = 0;
  let pollTimer = null;
  let sseFailures = 0;

  function setConnected(on) {
    S.connected = on;
    document.body.classList.toggle('offline', !on && S.view === 'console');
  }
  function lostServer() {
    if (S.view === 'login') return;
    if (S.reconnecting) return;
    S.reconnecting = true;
    closeStream();
    setConnected(false);
    scheduleRetry();
  }
  function scheduleRetry() {
    const base = BACKOFF[Math.min(attempt, BACKOFF.length - 1)];
    attempt++;
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    const conn = $('conn');
    conn.hidden = false;
    $('conn-text').textContent = attempt > 2 ? t('offline_retry', { s: Math.round(delay / 1000) }) : t('reconnecting');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(boot, delay);
  }
  function recovered() {
    attempt = 0;
    S.reconnecting = false;
    clearTimeout(retryTimer);
    $('conn').hidden = true;
    setConnected(true);
  }
  function signedOut() {
    closeStream();
    clearInterval(pollTimer);
    S.reconnecting = false;
    clearTimeout(retryTimer);
    $('conn').hidden = true;
    stopListening();
    if (S.view !== 'login') {
      show('login');
      setTimeout(() => $('token').focus(), 0);
    }
  }

  // Start (and restart after the server came back): who am I, the walls, the chosen wall's stream.
  async function boot() {
    S.reconnecting = false;
    try {
      const me = await api('GET', '/api/admin/whoami');
      S.actor = me && me.actor;
      const walls = await api('GET', '/api/admin/walls');
      S.walls = Array.isArray(walls) ? walls : (walls && walls.walls) || [];
      const saved = localStorage.getItem('vw.console.wall');
      if (!S.wall || !S.walls.some((w) => w.id === S.wall)) {
        S.wall = (S.walls.find((w) => w.id === saved) || S.walls[0] || {}).id || null;
      }
      renderWalls();
      show('console');
      recovered();
      openWall();
    } catch (err) {
      if (err instanceof Refused) { toast(t('error', { m: err.message }), true); lostServer(); }
      // Unauthorized → sign-in form already; Offline → retry scheduled
    }
  }

  async function signIn(token) {
    const err = $('login-error');
    err.hidden = true;
    if (!token) { err.textContent = t('token_required'); err.hidden = false; return false; }
    $('login-btn').disabled = true;
    try {
      const r = await fetch('/api/admin/login', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ token }),
      });
      if (r.status === 401 || r.status === 403) {
        err.textContent = t('wrong_token');
        err.hidden = false;
        show('login');
        return false;
      }
      if (!r.ok) throw new Refused(r.status);
      $('token').value = '';
      attempt = 0;
      await boot();
      return true;
    } catch (e) {
      err.textContent = e instanceof Refused ? t('error', { m: e.message }) : t('reconnecting');
      err.hidden = false;
      show('login');
      return false;
    } finally {
      $('login-btn').disabled = false;
    }
  }

  async function signOut() {
    try { await fetch('/api/admin/logout', { method: 'POST', credentials: 'same-origin' }); } catch (_) { /* offline: forget locally anyway */ }
    signedOut();
  }

  // ---------- the chosen wall: messages stream ----------
  function closeStream() {
    if (es) { es.close(); es = null; }
  }
  function openWall() {
    closeStream();
    S.messages.clear();
    renderMessages();
    if (!S.wall) return;
    localStorage.setItem('vw.console.wall', S.wall);
    $('export-link').href = wallPath('/export');
    const src = new EventSource(wallPath('/events'));
    es = src;
    const onAny = () => { lastEventAt = performance.now(); };
    src.addEventListener('hello', () => { onAny(); sseFailures = 0; loadMessages(src); });
    src.addEventListener('heartbeat', onAny);
    src.addEventListener('message', (e) => {
      onAny();
      let m;
      try { m = JSON.parse(e.data); } catch (_) { return; }
      if (m && m.id) upsert(m);
    });
    src.addEventListener('queue', (e) => {
      onAny();
      try { const q = JSON.parse(e.data); if (q && Array.isArray(q.queue)) { S.playback = q; renderPlayback(); } else loadPlayback(); } catch (_) { loadPlayback(); }
    });
    src.addEventListener('resync', () => loadMessages(src));
    src.onopen = () => { onAny(); loadMessages(src); };
    // EventSource cannot tell a 401 from a dead network: ask whoami, which routes to sign-in or to the
    // reconnect loop.
    src.onerror = () => {
      if (es !== src) return;
      src.close();
      es = null;
      const delay = Math.min(15000, 1000 * 2 ** Math.min(sseFailures++, 4));
      api('GET', '/api/admin/whoami').then(() => {
        if (!S.reconnecting) setTimeout(() => { if (!es && S.view === 'console' && !S.reconnecting) openWall(); }, delay);
      }).catch(() => {});
    };
    loadPlayback();
    loadHealth();
    loadAudit();
    clearInterval(pollTimer);
    pollTimer = setInterval(poll, POLL_MS);
  }
  let loadSeq = 0;
  async function loadMessages(src) {
    const seq = ++loadSeq;
    try {
      const data = await api('GET', wallPath('/messages'));
      if (es !== src || seq !== loadSeq) return;
      S.messages.clear();
      for (const m of (data && data.messages) || []) S.messages.set(m.id, m);
      renderMessages();
      renderPlayback();
      setConnected(true);
    } catch (_) { /* handled globally */ }
  }
  function poll() {
    if (S.view !== 'console' || S.reconnecting || document.hidden) return;
    if (es && S.connected && lastEventAt && performance.now() - lastEventAt > HEARTBEAT_TIMEOUT_MS) { lostServer(); return; }
    loadPlayback();
    if (S.tab === 'health' || wide()) loadHealth();
  }
  const wide = () => window.matchMedia('(min-width: 1000px)').matches;

  function upsert(m) {
    S.messages.set(m.id, m);
    renderMessages();
  }

  // ---------- rendering: walls ----------
  function renderWalls() {
    const sel = $('wall-select');
    sel.textContent = '';
    for (const w of S.walls) {
      const o = document.createElement('option');
      o.value = w.id;
      o.textContent = S.walls.filter((x) => x.title === w.title).length > 1 || !w.title ? `${w.title || ''} (${w.id})`.trim() : w.title;
      sel.appendChild(o);
    }
    sel.value = S.wall || '';
    $('wall-pick').hidden = S.walls.length < 2;
    const w = currentWall();
    $('wall-title').textContent = w ? (w.title || w.id) : '';
    $('wall-title').hidden = S.walls.length >= 2;
    renderWallSettings();
  }
  const currentWall = () => S.walls.find((w) => w.id === S.wall) || null;
  async function refreshWalls() {
    try {
      const walls = await api('GET', '/api/admin/walls');
      S.walls = Array.isArray(walls) ? walls : (walls && walls.walls) || [];
      renderWalls();
    } catch (_) { /* handled globally */ }
  }

  function renderWallSettings() {
    const w = currentWall();
    if (!w) return;
    document.querySelectorAll('#moderation button').forEach((b) => {
      b.setAttribute('aria-checked', String(b.dataset.mode === w.moderation));
    });
    $('mode-hint').textContent = t(w.moderation === 'pre' ? 'mode_pre_hint' : 'mode_post_hint');
    $('qr-visible').checked = w.qr_visible !== false;
    const idle = $('idle-seconds');
    if (document.activeElement !== idle) idle.value = w.idle_loop_s == null ? '' : String(w.idle_loop_s);
  }

  // ---------- rendering: messages ----------
  function hueOf(s) { let h = 2166136261; for (const c of String(s)) h = Math.imul(h ^ c.codePointAt(0), 16777619) >>> 0; return h % 360; }
  function initials(name) {
    const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
    return parts.length ? parts.slice(0, 2).map((w) => Array.from(w)[0]).join('').toUpperCase() : '?';
  }
  function fmtDuration(ms) {
    if (ms == null) return '';
    const s = Math.round(ms / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }
  function fmtTime(at) {
    const d = new Date(at);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleTimeString(lang === 'zh' ? 'zh-CN' : 'en', { hour: '2-digit', minute: '2-digit' });
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function button(label, cls, onClick, data) {
    const b = el('button', `btn ${cls || ''}`.trim(), label);
    b.type = 'button';
    if (data) b.dataset.act = data;
    b.addEventListener('click', async (e) => {
      e.stopPropagation();
      b.disabled = true;
      try { await onClick(); } finally { b.disabled = false; }
    });
    return b;
  }
  const FILTERS = {
    all: () => true,
    pending: (m) => m.moderation === 'pending',
    approved: (m) => m.moderation === 'approved' && !m.banned,
    hidden: (m) => m.moderation === 'rejected' || m.moderation === 'removed' || m.banned,
    failed: (m) => m.status === 'failed',
  };
  function renderMessages() {
    const all = [...S.messages.values()];
    const pending = all.filter((m) => m.moderation === 'pending' && !m.banned);
    const badge = $('pending-badge');
    badge.textContent = String(pending.length);
    badge.hidden = pending.length === 0;
    const bulk = $('approve-all');
    bulk.textContent = t('approve_all', { n: pending.length });
    bulk.hidden = pending.length === 0;
    document.querySelectorAll('#filters .chip').forEach((c) => c.setAttribute('aria-pressed', String(c.dataset.filter === S.filter)));
    const list = $('messages');
    const shown = all.filter(FILTERS[S.filter] || FILTERS.all).reverse(); // newest first
    const keep = new Set(shown.map((m) => m.id));
    for (const li of [...list.children]) if (!keep.has(li.dataset.id)) li.remove();
    let prev = null;
    for (const m of shown) {
      let li = list.querySelector(`li[data-id="${CSS.escape(m.id)}"]`);
      const sig = JSON.stringify(m) + (S.listening === m.id);
      if (!li || li.dataset.sig !== sig) {
        const fresh = renderMessage(m);
        fresh.dataset.sig = sig;
        if (li) li.replaceWith(fresh); else list.appendChild(fresh);
        li = fresh;
      }
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== li) list.insertBefore(li, want);
      prev = li;
    }
    const empty = $('messages-empty');
    empty.textContent = all.length ? t('no_match') : t('no_messages');
    empty.hidden = shown.length > 0;
  }

  function renderMessage(m) {
    const li = el('li', 'msg');
    li.dataset.id = m.id;
    li.dataset.moderation = m.moderation;
    li.dataset.status = m.status;
    if (m.banned) li.dataset.banned = 'true';
    const av = el('div', 'avatar');
    av.style.setProperty('--hue', hueOf(m.participant_id || m.name));
    av.textContent = initials(m.name);
    if (m.avatar_url) {
      const img = el('img');
      img.alt = '';
      img.loading = 'lazy';
      img.src = m.avatar_url;
      img.onerror = () => img.remove();
      av.appendChild(img);
    }
    li.appendChild(av);

    const body = el('div', 'msg-body');
    const head = el('div', 'msg-head');
    head.appendChild(el('strong', 'name', m.name || '?'));
    head.appendChild(el('span', 'provider', m.provider || ''));
    const meta = [fmtTime(m.created_at)];
    if (m.kind && m.kind !== 'voice') meta.push(t(`k_${m.kind}`));
    if (m.duration_ms) meta.push(fmtDuration(m.duration_ms));
    head.appendChild(el('span', 'meta', meta.filter(Boolean).join(' · ')));
    body.appendChild(head);

    const tags = el('div', 'tags');
    tags.appendChild(el('span', `tag mod-${m.moderation}`, t(`m_${m.moderation}`)));
    if (m.status !== 'ready') tags.appendChild(el('span', `tag st-${m.status}`, t(`st_${m.status}`)));
    if (m.banned) tags.appendChild(el('span', 'tag banned', t('banned')));
    body.appendChild(tags);
    if (m.failure) body.appendChild(el('p', 'failure', m.failure));
    if (m.text) body.appendChild(el('p', 'transcript', m.text));
    if (m.transcript) body.appendChild(el('p', 'transcript', m.transcript));
    if (m.kind === 'image' && m.media_url && m.status === 'ready') {
      const pic = el('img', 'picture');
      pic.alt = '';
      pic.loading = 'lazy';
      pic.src = m.media_url;
      body.appendChild(pic);
    }

    const actions = el('div', 'actions');
    const playable = m.status === 'ready' && m.media_url;
    if (playable && (m.kind === 'voice' || m.kind === 'video' || !m.kind)) {
      const on = S.listening === m.id;
      actions.appendChild(button(on ? t('stop_listening') : t('listen'), `listen${on ? ' on' : ''}`, () => toggleListen(m), 'listen'));
    }
    const post = (what) => () => act(() => api('POST', wallPath(`/messages/${encodeURIComponent(m.id)}/${what}`)).then(refreshAfterAction));
    if (m.moderation !== 'approved') actions.appendChild(button(m.moderation === 'pending' ? t('approve') : t('restore'), 'ok', post('approve'), 'approve'));
    if (m.moderation === 'pending') actions.appendChild(button(t('reject'), 'warn', post('reject'), 'reject'));
    if (m.moderation === 'approved') actions.appendChild(button(t('remove'), 'warn', post('remove'), 'remove'));
    if (playable && m.moderation === 'approved' && !m.banned) {
      actions.appendChild(button(t('on_speakers'), '', () => act(() => api('POST', wallPath(`/messages/${encodeURIComponent(m.id)}/play`)).then(loadPlayback), t('speakers_started')), 'play'));
    }
    if (m.participant_id) {
      const what = m.banned ? 'unban' : 'ban';
      actions.appendChild(button(t(what), m.banned ? '' : 'danger', () => act(() => api('POST', wallPath(`/participants/${encodeURIComponent(m.participant_id)}/${what}`)).then(refreshAfterAction)), what));
    }
    body.appendChild(actions);
    li.appendChild(body);
    return li;
  }
  // The stream brings each change too; a direct reload keeps the page right if an event was missed.
  function refreshAfterAction() {
    if (es) loadMessages(es);
    loadPlayback();
    refreshWalls();
    if (S.tab === 'health' || wide()) { loadHealth(); loadAudit(); }
  }

  // ---------- listen in this browser ----------
  const audio = $('listen');
  function toggleListen(m) {
    if (S.listening === m.id) { stopListening(); return; }
    audio.src = m.media_url;
    S.listening = m.id;
    audio.play().catch(() => { S.listening = null; renderMessages(); });
    renderMessages();
  }
  function stopListening() {
    audio.pause();
    audio.removeAttribute('src');
    audio.load();
    if (S.listening) { S.listening = null; renderMessages(); }
  }
  audio.addEventListener('ended', () => { S.listening = null; renderMessages(); });

  // ---------- playback (the speakers) ----------
  async function loadPlayback() {
    try { S.playback = await api('GET', '/api/admin/playback'); renderPlayback(); } catch (_) { /* handled globally */ }
  }
  function nameOf(wall, id, fallback) {
    const m = wall === S.wall ? S.messages.get(id) : null;
    return (m && m.name) || fallback || id;
  }
  function renderPlayback() {
    const p = S.playback || { now_playing: null, paused: false, volume: 1, queue: [] };
    const now = p.now_playing;
    $('now-name').textContent = now ? nameOf(now.wall, now.message_id, now.name) : t('nothing_playing');
    $('now-state').textContent = now ? t(p.paused ? 'paused' : 'playing') : '';
    const frac = now && now.duration_ms ? Math.min(1, (now.position_ms || 0) / now.duration_ms) : 0;
    $('now-fill').style.width = `${(frac * 100).toFixed(1)}%`;
    const toggle = $('pb-toggle');
    toggle.dataset.act = p.paused ? 'resume' : 'pause';
    $('pb-toggle-label').textContent = t(p.paused ? 'resume' : 'pause');
    const vol = $('volume');
    if (document.activeElement !== vol && typeof p.volume === 'number') {
      vol.value = String(Math.round(p.volume * 100));
      $('volume-out').textContent = `${vol.value}%`;
    }
    const q = Array.isArray(p.queue) ? p.queue : [];
    const list = $('queue');
    list.textContent = '';
    q.forEach((item, i) => {
      const li = el('li', 'qitem');
      li.dataset.id = item.message_id;
      li.appendChild(el('span', 'qpos', String(i + 1)));
      const who = el('span', 'qname', nameOf(item.wall, item.message_id, item.name));
      if (S.walls.length > 1) who.appendChild(el('small', '', ` ${item.wall}`));
      li.appendChild(who);
      const path = `/api/admin/playback/queue/${encodeURIComponent(item.wall)}/${encodeURIComponent(item.message_id)}`;
      if (i > 0) li.appendChild(button(t('play_next'), 'small', () => act(() => api('POST', `${path}/next`).then(loadPlayback)), 'next'));
      li.appendChild(button(t('dequeue'), 'small warn', () => act(() => api('DELETE', path).then(loadPlayback)), 'dequeue'));
      list.appendChild(li);
    });
    $('queue-count').textContent = p.queue_max ? `(${q.length} / ${p.queue_max})` : (q.length ? `(${q.length})` : '');
    $('queue-empty').hidden = q.length > 0;
  }
  let volumeTimer = null;
  function sendVolume() {
    clearTimeout(volumeTimer);
    volumeTimer = setTimeout(() => {
      const volume = Number($('volume').value) / 100;
      act(() => api('PUT', '/api/admin/playback/volume', { volume }));
    }, 150);
  }

  // ---------- health and audit ----------
  function fmtBytes(n) {
    if (n == null) return '—';
    const u = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    let v = n;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${u[i]}`;
  }
  function fmtUptime(s) {
    if (s == null) return '—';
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
  }
  async function loadHealth() {
    try { S.health = await api('GET', '/api/admin/health'); renderHealth(); } catch (_) { /* handled globally */ }
  }
  function renderHealth() {
    const h = S.health || {};
    const audio = h.audio || {};
    const w = (h.walls || []).find((x) => x.id === S.wall) || {};
    const counts = w.counts || {};
    const stats = $('stats');
    stats.textContent = '';
    const audioBad = audio.state && audio.state !== 'ok' && audio.state !== 'null';
    const rows = [
      ['audio', (audio.detail && String(audio.detail).startsWith(audio.state) ? audio.detail : [audio.state, audio.detail].filter(Boolean).join(' · ')) || '—', audioBad],
      // The wall's link with its platform (e.g. Telegram's setWebhook result), when it reports one.
      ...(w.provider_status ? [['platform', [w.provider_status.state, w.provider_status.detail].filter(Boolean).join(' · '), w.provider_status.ok === false]] : []),
      ['queue_len', h.queue_len ?? '—'],
      ['participants', w.participants ?? '—'],
      ['msgs', Object.entries(counts).filter(([, n]) => n).map(([k, n]) => `${n} ${t(k === 'failed' ? 'st_failed' : `m_${k}`)}`).join(' · ') || '0'],
      ['disk_used', fmtBytes(h.disk && h.disk.used_bytes)],
      ['disk_free', fmtBytes(h.disk && h.disk.free_bytes)],
      // The stored media against [storage] max_bytes, and what was evicted to stay under it.
      ...(h.media ? [['media', `${fmtBytes(h.media.bytes)} / ${fmtBytes(h.media.max_bytes)}${h.media.evicted_blobs ? ` · ${h.media.evicted_blobs} ${t('evicted')} (${fmtBytes(h.media.evicted_bytes)})` : ''}`, h.media.bytes > h.media.max_bytes]] : []),
      ['uptime', fmtUptime(h.uptime_s)],
      ['version', h.version || '—'],
    ];
    for (const [k, v, bad] of rows) {
      const div = el('div', bad ? 'stat bad' : 'stat');
      div.dataset.stat = k;
      div.appendChild(el('dt', '', t(k)));
      div.appendChild(el('dd', '', String(v)));
      stats.appendChild(div);
    }
    const fails = $('failures');
    fails.textContent = '';
    for (const f of w.failed_fetches || []) {
      const li = el('li', 'failure');
      li.appendChild(el('strong', '', `${t('failed_fetch')}: `));
      li.appendChild(document.createTextNode(`${nameOf(S.wall, f.message_id, f.message_id)} — ${f.reason}`));
      fails.appendChild(li);
    }
    $('health-badge').hidden = !(audioBad || (w.failed_fetches || []).length);
  }
  async function loadAudit() {
    try {
      const data = await api('GET', `/api/admin/audit?limit=${S.auditLimit}`);
      S.audit = (data && data.entries) || [];
      renderAudit();
    } catch (_) { /* handled globally */ }
  }
  function renderAudit() {
    const list = $('audit');
    list.textContent = '';
    for (const e of S.audit) {
      const li = el('li', 'entry');
      li.appendChild(el('time', '', `${new Date(e.at).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en', { month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' })}`));
      li.appendChild(el('strong', 'action', e.action));
      const what = [e.wall, e.target, e.detail].filter((x) => x != null && x !== '').map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' · ');
      li.appendChild(el('span', 'what', what));
      li.appendChild(el('small', 'actor', e.actor || ''));
      list.appendChild(li);
    }
    if (!S.audit.length) list.appendChild(el('li', 'empty', t('no_audit')));
    $('audit-more').hidden = S.audit.length < S.auditLimit;
  }

  // ---------- a tiny QR encoder (byte mode, level L, versions 1–6): the one-time display link ----------
  // The link is made here, in this browser, and must not travel through any other service to become a QR.
  const QR = (() => {
    const DATA = [0, 19, 34, 55, 80, 108, 136];
    const ECC = [0, 7, 10, 15, 20, 26, 18];
    const BLOCKS = [0, 1, 1, 1, 1, 1, 2];
    const ALIGN = [0, 0, 18, 22, 26, 30, 34];
    const EXP = new Uint8Array(512);
    const LOG = new Uint8Array(256);
    for (let i = 0, x = 1; i < 255; i++) { EXP[i] = x; LOG[x] = i; x <<= 1; if (x & 256) x ^= 0x11d; }
    for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
    const mul = (a, b) => (a && b ? EXP[LOG[a] + LOG[b]] : 0);
    function rs(data, n) {
      let gen = [1];
      for (let i = 0; i < n; i++) {
        const next = new Array(gen.length + 1).fill(0);
        for (let j = 0; j < gen.length; j++) { next[j] ^= gen[j]; next[j + 1] ^= mul(gen[j], EXP[i]); }
        gen = next;
      }
      const rem = new Array(n).fill(0);
      for (const d of data) {
        const f = d ^ rem[0];
        rem.shift(); rem.push(0);
        for (let j = 0; j < n; j++) rem[j] ^= mul(gen[j + 1], f);
      }
      return rem;
    }
    function encode(text) {
      const bytes = new TextEncoder().encode(text);
      let v = 1;
      while (v <= 6 && 4 + 8 + bytes.length * 8 > DATA[v] * 8) v++;
      if (v > 6) return null;
      const bits = [];
      const put = (val, len) => { for (let i = len - 1; i >= 0; i--) bits.push((val >>> i) & 1); };
      put(4, 4); put(bytes.length, 8);
      for (const b of bytes) put(b, 8);
      const cap = DATA[v] * 8;
      put(0, Math.min(4, cap - bits.length));
      while (bits.length % 8) bits.push(0);
      for (let pad = 0xec; bits.length < cap; pad ^= 0xec ^ 0x11) put(pad, 8);
      const cw = [];
      for (let i = 0; i < bits.length; i += 8) cw.push(bits.slice(i, i + 8).reduce((a, b) => (a << 1) | b, 0));
      const nb = BLOCKS[v];
      const per = DATA[v] / nb;
      const blocks = [];
      for (let b = 0; b < nb; b++) { const d = cw.slice(b * per, (b + 1) * per); blocks.push([d, rs(d, ECC[v])]); }
      const out = [];
      for (let i = 0; i < per; i++) for (const [d] of blocks) out.push(d[i]);
      for (let i = 0; i < ECC[v]; i++) for (const [, e] of blocks) out.push(e[i]);
      const size = 17 + 4 * v;
      const m = Array.from({ length: size }, () => new Array(size).fill(0));
      const fn = Array.from({ length: size }, () => new Array(size).fill(false));
      const set = (x, y, on) => { m[y][x] = on ? 1 : 0; fn[y][x] = true; };
      const finder = (cx, cy) => {
        for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) {
          const x = cx + dx; const y = cy + dy;
          if (x < 0 || y < 0 || x >= size || y >= size) continue;
          const d = Math.max(Math.abs(dx), Math.abs(dy));
          set(x, y, d !== 2 && d !== 4);
        }
      };
      for (let i = 0; i < size; i++) { set(6, i, i % 2 === 0); set(i, 6, i % 2 === 0); }
      finder(3, 3); finder(size - 4, 3); finder(3, size - 4);
      if (v > 1) {
        const a = ALIGN[v];
        for (let dy = -2; dy <= 2; dy++) for (let dx = -2; dx <= 2; dx++) set(a + dx, a + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
      }
      const format = (mask) => {
        const data = (1 << 3) | mask; // level L = 01
        let rem = data;
        for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
        const f = ((data << 10) | rem) ^ 0x5412;
        const bit = (i) => (f >>> i) & 1;
        for (let i = 0; i <= 5; i++) set(8, i, bit(i));
        set(8, 7, bit(6)); set(8, 8, bit(7)); set(7, 8, bit(8));
        for (let i = 9; i < 15; i++) set(14 - i, 8, bit(i));
        for (let i = 0; i < 8; i++) set(size - 1 - i, 8, bit(i));
        for (let i = 8; i < 15; i++) set(8, size - 15 + i, bit(i));
        set(8, size - 8, 1);
      };
      format(0); // reserve the format areas before placing data
      let i = 0;
      for (let right = size - 1; right >= 1; right -= 2) {
        if (right === 6) right = 5;
        for (let vert = 0; vert < size; vert++) {
          for (let j = 0; j < 2; j++) {
            const x = right - j;
            const up = ((right + 1) & 2) === 0;
            const y = up ? size - 1 - vert : vert;
            if (!fn[y][x] && i < out.length * 8) { m[y][x] = (out[i >>> 3] >>> (7 - (i & 7))) & 1; i++; }
          }
        }
      }
      const MASKS = [
        (x, y) => (x + y) % 2 === 0, (x, y) => y % 2 === 0, (x) => x % 3 === 0, (x, y) => (x + y) % 3 === 0,
        (x, y) => (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0, (x, y) => ((x * y) % 2) + ((x * y) % 3) === 0,
        (x, y) => (((x * y) % 2) + ((x * y) % 3)) % 2 === 0, (x, y) => (((x + y) % 2) + ((x * y) % 3)) % 2 === 0,
      ];
      const apply = (k) => { for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) if (!fn[y][x] && MASKS[k](x, y)) m[y][x] ^= 1; };
      const penalty = () => {
        let p = 0;
        for (let pass = 0; pass < 2; pass++) {
          for (let a = 0; a < size; a++) {
            let run = 1;
            for (let b = 1; b < size; b++) {
              const cur = pass ? m[b][a] : m[a][b];
              const prev = pass ? m[b - 1][a] : m[a][b - 1];
              if (cur === prev) { run++; if (b === size - 1 && run >= 5) p += run - 2; } else { if (run >= 5) p += run - 2; run = 1; }
            }
          }
        }
        for (let y = 0; y < size - 1; y++) for (let x = 0; x < size - 1; x++) {
          const c = m[y][x];
          if (c === m[y][x + 1] && c === m[y + 1][x] && c === m[y + 1][x + 1]) p += 3;
        }
        let dark = 0;
        for (const row of m) for (const c of row) dark += c;
        p += Math.floor(Math.abs(dark * 20 - size * size * 10) / (size * size)) * 10;
        return p;
      };
      let best = 0;
      let bestP = Infinity;
      for (let k = 0; k < 8; k++) {
        apply(k); format(k);
        const p = penalty();
        if (p < bestP) { bestP = p; best = k; }
        apply(k);
      }
      apply(best); format(best);
      return m;
    }
    function svg(text) {
      const m = encode(text);
      if (!m) return null;
      const n = m.length + 8;
      let d = '';
      m.forEach((row, y) => row.forEach((c, x) => { if (c) d += `M${x + 4} ${y + 4}h1v1h-1z`; }));
      return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${n} ${n}" shape-rendering="crispEdges"><rect width="${n}" height="${n}" fill="#fff"/><path d="${d}" fill="#000"/></svg>`;
    }
    return { svg, encode };
  })();
  window.__console.qrSvg = QR.svg;

  // ---------- modal (typed confirmations) ----------
  let modalResolve = null;
  function confirmSheet({ title, text, ok, typed }) {
    $('modal-title').textContent = title;
    $('modal-text').textContent = text;
    $('modal-ok').textContent = ok;
    const field = $('modal-field');
    const input = $('modal-input');
    field.hidden = !typed;
    input.value = '';
    if (typed) { $('modal-field-label').textContent = typed.label; input.placeholder = typed.value; }
    $('modal-ok').disabled = !!typed;
    input.oninput = () => { $('modal-ok').disabled = typed ? input.value.trim() !== typed.value : false; };
    $('modal').hidden = false;
    setTimeout(() => (typed ? input : $('modal-cancel')).focus(), 0);
    return new Promise((resolve) => { modalResolve = resolve; });
  }
  function closeModal(value) {
    $('modal').hidden = true;
    if (modalResolve) { const r = modalResolve; modalResolve = null; r(value); }
  }

  // ---------- wiring ----------
  function setTab(tab) {
    S.tab = tab;
    document.body.dataset.tab = tab;
    document.querySelectorAll('.tabs button').forEach((b) => b.setAttribute('aria-current', String(b.dataset.tab === tab)));
    if (tab === 'health') { loadHealth(); loadAudit(); }
    if (tab === 'playback') loadPlayback();
    window.scrollTo(0, 0);
  }
  function wire() {
    $('login-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('token').value.trim()); });
    $('logout-btn').addEventListener('click', signOut);
    $('wall-select').addEventListener('change', (e) => { S.wall = e.target.value; renderWalls(); openWall(); });
    document.querySelectorAll('.tabs button').forEach((b) => b.addEventListener('click', () => setTab(b.dataset.tab)));
    document.querySelectorAll('#filters .chip').forEach((c) => c.addEventListener('click', () => { S.filter = c.dataset.filter; renderMessages(); }));
    document.querySelectorAll('#moderation button').forEach((b) => b.addEventListener('click', () => act(async () => {
      await api('PUT', wallPath('/moderation'), { mode: b.dataset.mode });
      const w = currentWall();
      if (w) w.moderation = b.dataset.mode;
      renderWallSettings();
      refreshWalls();
    })));
    $('approve-all').addEventListener('click', () => act(async () => {
      const ids = [...S.messages.values()].filter((m) => m.moderation === 'pending' && !m.banned).map((m) => m.id);
      if (ids.length) await api('POST', wallPath('/messages/approve'), { ids });
      refreshAfterAction();
    }));
    $('pb-toggle').addEventListener('click', () => act(() => api('POST', `/api/admin/playback/${$('pb-toggle').dataset.act}`).then(loadPlayback)));
    $('pb-skip').addEventListener('click', () => act(() => api('POST', '/api/admin/playback/skip').then(loadPlayback)));
    $('pb-stop').addEventListener('click', () => act(() => api('POST', '/api/admin/playback/stop').then(loadPlayback)));
    $('volume').addEventListener('input', () => { $('volume-out').textContent = `${$('volume').value}%`; sendVolume(); });
    $('qr-visible').addEventListener('change', (e) => act(async () => {
      await api('PUT', wallPath('/qr'), { visible: e.target.checked });
      refreshWalls();
    }));
    $('idle-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $('idle-seconds').value.trim();
      const seconds = v === '' ? null : Math.max(1, Math.round(Number(v)));
      act(() => api('PUT', wallPath('/idle-loop'), { seconds }).then(refreshWalls), t('saved'));
    });
    $('display-btn').addEventListener('click', () => act(async () => {
      const r = await api('POST', wallPath('/displays'));
      const url = new URL(r.url, location.origin).href;
      const a = $('display-link');
      a.href = url;
      a.textContent = url;
      const svg = r.qr_svg || QR.svg(url);
      $('display-qr').innerHTML = svg || '';
      $('display-out').hidden = false;
    }));
    $('display-copy').addEventListener('click', () => {
      const url = $('display-link').href;
      (navigator.clipboard ? navigator.clipboard.writeText(url) : Promise.reject()).then(() => toast(t('copied')), () => {
        const r = document.createRange(); r.selectNodeContents($('display-link'));
        const s = getSelection(); s.removeAllRanges(); s.addRange(r);
      });
    });
    $('rotate-btn').addEventListener('click', async () => {
      try {
        await api('POST', wallPath('/join/rotate'));
        toast(t('rotated'));
      } catch (err) {
        if (err instanceof Refused) toast(err.status === 409 ? t('no_join_token') : t('error', { m: err.message }), true);
      }
    });
    $('clear-btn').addEventListener('click', async () => {
      const ok = await confirmSheet({ title: t('clear_confirm'), text: t('clear_text'), ok: t('clear_btn') });
      if (ok) act(() => api('POST', wallPath('/clear')).then(refreshAfterAction), t('cleared'));
    });
    $('purge-btn').addEventListener('click', async () => {
      const wall = S.wall;
      const ok = await confirmSheet({
        title: t('purge_confirm'), text: t('purge_text', { wall }), ok: t('purge_ok'),
        typed: { label: t('purge_type', { wall }), value: wall },
      });
      if (ok) act(() => api('POST', wallPath('/purge'), { confirm: wall }).then(refreshAfterAction), t('purged'));
    });
    $('modal-form').addEventListener('submit', (e) => { e.preventDefault(); if (!$('modal-ok').disabled) closeModal(true); });
    $('modal-cancel').addEventListener('click', () => closeModal(false));
    $('modal').addEventListener('click', (e) => { if (e.target === $('modal')) closeModal(false); });
    document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !$('modal').hidden) closeModal(false); });
    $('audit-refresh').addEventListener('click', loadAudit);
    $('audit-more').addEventListener('click', () => { S.auditLimit += 100; loadAudit(); });
    // Back online or back to the tab: try at once instead of waiting out the backoff.
    window.addEventListener('online', () => { if (S.reconnecting) { clearTimeout(retryTimer); boot(); } });
    document.addEventListener('visibilitychange', () => { if (!document.hidden && S.reconnecting) { clearTimeout(retryTimer); boot(); } });
  }

  applyI18n();
  wire();
  setTab('messages');
  // The kiosk overlay's QR carries the token in the fragment (never sent to the server, never in logs):
  // take it, wipe it from the address bar and history entry, sign in with it.
  const frag = new URLSearchParams(location.hash.replace(/^#/, ''));
  const fragToken = frag.get('token');
  if (fragToken) {
    history.replaceState(null, '', location.pathname + location.search);
    signIn(fragToken);
  } else {
    boot();
  }
}());
