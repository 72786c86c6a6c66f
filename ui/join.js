// The guest's join page: nickname + avatar, then hold-to-talk. Plain JS, no build step, no external URLs.
// The wall's QR opens /join/{wall}?t=TOKEN; the server set a signed device cookie (one phone = one person).
// Where the browser cannot record (no secure context, no getUserMedia/MediaRecorder) the page falls back
// to <input type=file accept="audio/*" capture>, which opens the phone's own recorder.
(function () {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const wall = decodeURIComponent(location.pathname.split('/').filter(Boolean)[1] || '');
  const api = (p) => `/api/join/${encodeURIComponent(wall)}/${p}`;
  let token = new URLSearchParams(location.search).get('t') || '';

  // ---------- i18n ----------
  const T = {
    en: {
      profile_title: 'Join the wall', profile_lead: 'Pick a name and a picture. They appear on the big screen.',
      selfie: 'Selfie', photo: 'Photo', generated: 'Generated', nickname: 'Nickname', join: 'Join',
      save: 'Save', on_wall: "You're on the wall", on_wall_sub: 'Your voice plays on the big screen.',
      intro_title: 'Say hello to the room', intro_text: 'Hold the big button while you talk, release to listen, then send.',
      intro_text_file: 'Record a short message with your phone, listen, then send.',
      hold_hint: 'Hold to talk', release_hint: 'Release to finish', discard: 'Discard', send: 'Send',
      sending: 'Sending… {p}%', processing: 'On its way…', sent_ok: 'Sent!',
      fallback_why: 'This page cannot use the microphone directly. Record with your phone instead:',
      record_file: 'Record a voice message', scan_again: 'Scan the screen again',
      scan_hint: 'Point your phone camera at the QR code on the big screen.',
      too_short: 'Too short: hold the button while you talk.', mic_denied: 'The microphone is blocked. Allow it in your browser settings, or record with your phone:',
      mic_failed: 'Could not start the microphone.', network: 'Network problem. Check your connection and try again.',
      nickname_required: 'Please enter a nickname.', nickname_too_long: 'That nickname is too long: at most {n} characters.',
      not_an_image: 'That file is not a picture.', st_fetching: 'processing', st_ready: 'on the wall', st_failed: 'failed',
      play: 'Play', pause: 'Pause', voice: 'Voice', limit_reached: 'Reached the {n} s limit.',
    },
    zh: {
      profile_title: '加入语音墙', profile_lead: '起个昵称、选张头像，它们会出现在大屏幕上。',
      selfie: '自拍', photo: '相册', generated: '默认头像', nickname: '昵称', join: '加入',
      save: '保存', on_wall: '你已上墙', on_wall_sub: '你的声音会在大屏幕上播放。',
      intro_title: '和全场打个招呼', intro_text: '按住大按钮说话，松开后试听，再发送。',
      intro_text_file: '用手机录一段短语音，试听后发送。',
      hold_hint: '按住 说话', release_hint: '松开 结束', discard: '重录', send: '发送',
      sending: '发送中… {p}%', processing: '正在上墙…', sent_ok: '已发送！',
      fallback_why: '此页面无法直接使用麦克风，请用手机录音：',
      record_file: '录一段语音', scan_again: '请重新扫码',
      scan_hint: '用手机相机对准大屏幕上的二维码即可。',
      too_short: '说话时间太短，请按住按钮说话。', mic_denied: '麦克风被禁用了。请在浏览器设置中允许，或用手机录音：',
      mic_failed: '无法启动麦克风。', network: '网络有问题，请检查网络后重试。',
      nickname_required: '请输入昵称。', nickname_too_long: '昵称太长了，最多 {n} 个字。',
      not_an_image: '这不是图片。', st_fetching: '处理中', st_ready: '已上墙', st_failed: '失败',
      play: '播放', pause: '暂停', voice: '语音', limit_reached: '已达到 {n} 秒上限。',
    },
  };
  function pickLang() {
    for (const l of navigator.languages || [navigator.language || '']) {
      const t = String(l).toLowerCase();
      if (t.startsWith('zh')) return 'zh';
      if (t.startsWith('en')) return 'en';
    }
    return null;
  }
  let lang = pickLang() || 'zh';
  const t = (k, vars) => String((T[lang] || T.en)[k] || T.en[k] || k).replace(/\{(\w+)\}/g, (_, v) => (vars && v in vars ? vars[v] : ''));
  function applyI18n() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
    $('play-btn').setAttribute('aria-label', t('play'));
  }

  // ---------- state ----------
  const state = {
    info: null, me: null, messages: [], view: 'loading',
    avatar: { mode: 'generated', blob: null, url: null },
    recording: false, recorded: null, uploading: false, lastFlow: null,
  };
  // Exposed for tests and for curious operators.
  window.__join = state;

  function show(view) {
    state.view = view;
    document.body.dataset.view = view;
    $('me-chip').hidden = !(state.me && view === 'talk');
  }
  function showError(el, msg) { el.textContent = msg || ''; el.hidden = !msg; }
  function notice(msg, title) {
    $('notice-title').textContent = title || t('scan_again');
    $('notice-message').textContent = msg || '';
    show('notice');
  }

  // ---------- HTTP ----------
  function request(method, path, body, onProgress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, api(path));
      if (token) xhr.setRequestHeader('X-Join-Token', token);
      xhr.responseType = 'json';
      if (onProgress && xhr.upload) {
        xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      }
      xhr.onload = () => {
        const data = xhr.response || {};
        if (data && data.token) token = data.token;
        resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, data });
      };
      xhr.onerror = () => resolve({ status: 0, ok: false, data: { code: 'network', message: t('network') } });
      xhr.send(body || null);
    });
  }
  // A refused token means the page cannot go on: show the scan-again view.
  function fatal(res) {
    if (res.status === 403 || res.status === 410) {
      if (res.data && /^token_|^no_device$/.test(res.data.code || '')) { notice(res.data.message); return true; }
    }
    return false;
  }

  // ---------- avatar ----------
  function hueOf(s) { let h = 2166136261; for (const c of s) h = Math.imul(h ^ c.codePointAt(0), 16777619) >>> 0; return h % 360; }
  function initials(name) {
    const parts = name.trim().split(/\s+/).filter(Boolean);
    if (!parts.length) return '?';
    return parts.slice(0, 2).map((w) => Array.from(w)[0]).join('').toUpperCase();
  }
  function renderAvatarPreview() {
    const name = $('nickname').value;
    const box = $('avatar-preview');
    box.style.setProperty('--hue', hueOf(name || wall));
    $('avatar-initials').textContent = initials(name);
    const img = $('avatar-img');
    const src = state.avatar.mode === 'photo' ? state.avatar.url : (state.avatar.mode === 'keep' ? state.me.participant.avatar_url : null);
    if (src) { img.src = src; img.hidden = false; } else { img.hidden = true; img.removeAttribute('src'); }
    $('avatar-generated').setAttribute('aria-pressed', String(state.avatar.mode === 'generated'));
  }
  // Crop the picture to a centred square and shrink it to 256×256 JPEG on the phone: a 12 MP selfie
  // becomes ~20 KB before it leaves the phone.
  async function squareJpeg(file) {
    let source;
    let w;
    let h;
    if (window.createImageBitmap) {
      try { source = await createImageBitmap(file, { imageOrientation: 'from-image' }); } catch (_) { source = null; }
    }
    if (!source) {
      source = await new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error('not an image'));
        img.src = URL.createObjectURL(file);
      });
    }
    w = source.width || source.naturalWidth; h = source.height || source.naturalHeight;
    if (!w || !h) throw new Error('not an image');
    const side = Math.min(w, h);
    const canvas = document.createElement('canvas');
    canvas.width = 256; canvas.height = 256;
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(source, (w - side) / 2, (h - side) / 2, side, side, 0, 0, 256, 256);
    return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('encode failed'))), 'image/jpeg', 0.88));
  }
  async function onAvatarFile(input) {
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    showError($('profile-error'), '');
    try {
      const blob = await squareJpeg(file);
      if (state.avatar.url) URL.revokeObjectURL(state.avatar.url);
      state.avatar = { mode: 'photo', blob, url: URL.createObjectURL(blob) };
    } catch (_) {
      // The phone could not read it: let the server have the final word (it refuses non-images with a reason).
      state.avatar = { mode: 'photo', blob: file, url: null };
      showError($('profile-error'), t('not_an_image'));
    }
    renderAvatarPreview();
  }

  // ---------- profile ----------
  function updateCounter() {
    const max = (state.info && state.info.limits.nickname_max_chars) || 24;
    const n = Array.from($('nickname').value.trim()).length;
    const c = $('nickname-count');
    c.textContent = `${n}/${max}`;
    c.classList.toggle('over', n > max);
  }
  async function submitProfile(ev) {
    ev.preventDefault();
    const btn = $('join-btn');
    const nickname = $('nickname').value.trim();
    showError($('profile-error'), '');
    if (!nickname) { showError($('profile-error'), t('nickname_required')); $('nickname').focus(); return; }
    const form = new FormData();
    form.append('token', token);
    form.append('nickname', nickname);
    if (state.avatar.mode === 'photo' && state.avatar.blob) form.append('avatar', state.avatar.blob, 'avatar.jpg');
    if (state.avatar.mode === 'generated') form.append('avatar_mode', 'generated');
    btn.disabled = true;
    const res = await request(state.me ? 'PUT' : 'POST', 'profile', form);
    btn.disabled = false;
    if (!res.ok) {
      if (fatal(res)) return;
      showError($('profile-error'), (res.data && res.data.message) || t('network'));
      return;
    }
    state.me = { participant: res.data.participant, messages: state.messages };
    renderMe();
    enterTalk();
  }
  function renderMe() {
    if (!state.me) return;
    const p = state.me.participant;
    $('me-chip-avatar').src = p.avatar_url;
    $('me-chip-name').textContent = p.display_name;
    $('onwall-avatar').src = p.avatar_url;
  }
  function editProfile() {
    $('nickname').value = state.me.participant.display_name;
    state.avatar = { mode: 'keep', blob: null, url: null };
    $('join-btn').textContent = t('save');
    updateCounter();
    renderAvatarPreview();
    show('profile');
  }

  // ---------- recording ----------
  const canRecord = () => !!(window.isSecureContext && navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder);
  function recorderMime() {
    const candidates = ['audio/webm;codecs=opus', 'audio/webm', 'audio/mp4;codecs=mp4a.40.2', 'audio/mp4', 'audio/aac', 'audio/ogg;codecs=opus'];
    if (!MediaRecorder.isTypeSupported) return '';
    return candidates.find((m) => MediaRecorder.isTypeSupported(m)) || '';
  }
  function extFor(type) {
    if (/webm/.test(type)) return 'webm';
    if (/mp4|aac|m4a/.test(type)) return 'm4a';
    if (/ogg/.test(type)) return 'ogg';
    if (/mpeg|mp3/.test(type)) return 'mp3';
    if (/wav/.test(type)) return 'wav';
    return 'bin';
  }
  const fmt = (ms) => { const s = Math.max(0, Math.round(ms / 1000)); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`; };

  let stream = null;
  let releaseTimer = null;
  let rec = null;
  let chunks = [];
  let recStart = 0;
  let tick = null;
  let pressed = false;
  let maxTimer = null;

  async function getStream() {
    clearTimeout(releaseTimer);
    if (stream && stream.getAudioTracks().some((tr) => tr.readyState === 'live')) return stream;
    stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    return stream;
  }
  // Keep the microphone open briefly between takes (no re-prompt, no clipped first word), then let it go.
  function releaseSoon() {
    clearTimeout(releaseTimer);
    releaseTimer = setTimeout(() => { if (stream && !state.recording) { stream.getTracks().forEach((tr) => tr.stop()); stream = null; } }, 30000);
  }

  async function startRecording() {
    if (state.recording || state.uploading) return;
    pressed = true;
    showError($('talk-error'), '');
    clearPreview();
    let s;
    try { s = await getStream(); } catch (e) {
      pressed = false;
      if (e && (e.name === 'NotAllowedError' || e.name === 'SecurityError')) { useFallback(t('mic_denied')); } else { showError($('talk-error'), t('mic_failed')); }
      return;
    }
    if (!pressed) { releaseSoon(); return; } // released while the permission prompt was up
    const mime = recorderMime();
    try { rec = mime ? new MediaRecorder(s, { mimeType: mime, audioBitsPerSecond: 48000 }) : new MediaRecorder(s); } catch (_) { rec = new MediaRecorder(s); }
    chunks = [];
    rec.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    rec.onstop = onRecorded;
    rec.start(250);
    recStart = performance.now();
    state.recording = true;
    document.body.classList.add('recording');
    $('hold-hint').textContent = t('release_hint');
    $('rec-time').textContent = '0:00';
    tick = setInterval(() => { $('rec-time').textContent = fmt(performance.now() - recStart); }, 200);
    const maxS = (state.info && state.info.limits.audio_max_duration_s) || 60;
    maxTimer = setTimeout(() => { stopRecording(); showError($('talk-error'), t('limit_reached', { n: maxS })); }, Math.max(1, maxS - 0.5) * 1000);
  }
  function stopRecording() {
    pressed = false;
    if (!state.recording) return;
    state.recording = false;
    clearInterval(tick); clearTimeout(maxTimer);
    document.body.classList.remove('recording');
    $('hold-hint').textContent = t('hold_hint');
    state.recordedMs = performance.now() - recStart;
    try { rec.stop(); } catch (_) { /* already stopped */ }
    releaseSoon();
  }
  function onRecorded() {
    const type = (rec && rec.mimeType) || (chunks[0] && chunks[0].type) || 'audio/webm';
    const blob = new Blob(chunks, { type });
    chunks = [];
    if (state.recordedMs < 600 || !blob.size) { showError($('talk-error'), t('too_short')); return; }
    setPreview(blob, `voice.${extFor(type)}`, state.recordedMs);
  }

  // ---------- preview + send ----------
  function setPreview(blob, name, ms) {
    clearPreview();
    state.recorded = { blob, name, ms, url: URL.createObjectURL(blob), uploadId: `u${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}` };
    const audio = $('preview-audio');
    audio.src = state.recorded.url;
    $('preview-time').textContent = ms ? fmt(ms) : '';
    $('preview-fill').style.width = '0';
    $('preview').hidden = false;
    $('preview-actions').hidden = false;
    $('hold-area').hidden = true;
    $('fallback').hidden = true;
    $('intro').hidden = true;
  }
  function clearPreview() {
    const audio = $('preview-audio');
    audio.pause();
    if (state.recorded) URL.revokeObjectURL(state.recorded.url);
    state.recorded = null;
    audio.removeAttribute('src');
    $('play-btn').classList.remove('playing');
    $('preview').hidden = true;
    $('preview-actions').hidden = true;
    $('progress').hidden = true;
    $('hold-area').hidden = !!state.fallback;
    $('fallback').hidden = !state.fallback;
    $('intro').hidden = state.messages.length > 0;
  }
  async function send() {
    if (!state.recorded || state.uploading) return;
    const r = state.recorded;
    const form = new FormData();
    form.append('token', token);
    form.append('upload_id', r.uploadId);
    form.append('audio', r.blob, r.name);
    state.uploading = true;
    $('send-btn').disabled = true; $('discard-btn').disabled = true;
    $('progress').hidden = false;
    const setP = (f) => { const p = Math.round(f * 100); $('progress-fill').style.width = `${p}%`; $('progress-text').textContent = f >= 1 ? t('processing') : t('sending', { p }); };
    setP(0);
    const t0 = performance.now();
    const res = await request('POST', 'voice', form, setP);
    state.uploading = false;
    $('send-btn').disabled = false; $('discard-btn').disabled = false;
    $('progress').hidden = true;
    if (!res.ok) {
      if (fatal(res)) return;
      showError($('talk-error'), (res.data && res.data.message) || t('network'));
      return;
    }
    state.lastUploadMs = performance.now() - t0;
    state.lastMessageId = res.data.message_id;
    clearPreview();
    $('onwall').hidden = false;
    $('onwall').style.animation = 'none'; void $('onwall').offsetWidth; $('onwall').style.animation = '';
    // The stream may have told its state already: never step a known message back to "processing".
    if (!state.messages.some((m) => m.id === res.data.message_id)) {
      upsertMessage({ id: res.data.message_id, status: 'fetching', duration_ms: res.data.duration_ms, waveform: [] });
    }
    follow();
    if (!live.open) pollSoon();
  }

  // ---------- the guest's own messages ----------
  function upsertMessage(m) {
    // Keep what we already know (the upload's decoded duration) until the server has it too.
    m = Object.fromEntries(Object.entries(m).filter(([, v]) => v !== null && v !== undefined));
    const i = state.messages.findIndex((x) => x.id === m.id);
    if (i >= 0) state.messages[i] = Object.assign({}, state.messages[i], m); else state.messages.push(m);
    renderMessages();
  }
  function renderMessages() {
    $('intro').hidden = state.messages.length > 0 || !!state.recorded;
    $('intro-text').textContent = t(state.fallback ? 'intro_text_file' : 'intro_text');
    const ul = $('sent');
    ul.textContent = '';
    state.messages.filter((m) => m.kind === undefined || m.kind === 'voice').slice(-5).reverse().forEach((m) => {
      const li = document.createElement('li');
      li.dataset.id = m.id;
      li.dataset.status = m.status;
      const dur = document.createElement('span');
      dur.textContent = m.duration_ms ? fmt(m.duration_ms) : t('voice');
      const wave = document.createElement('span');
      wave.className = 'bubble-wave';
      const peaks = (m.waveform && m.waveform.length ? m.waveform : new Array(40).fill(0.25));
      const step = Math.max(1, Math.floor(peaks.length / 40));
      for (let i = 0; i < peaks.length; i += step) {
        const bar = document.createElement('i');
        bar.style.height = `${Math.max(3, Math.round(peaks[i] * 22))}px`;
        wave.appendChild(bar);
      }
      const st = document.createElement('span');
      st.className = `st ${m.status}`;
      st.textContent = t(`st_${m.status}`);
      li.append(dur, wave, st);
      ul.appendChild(li);
    });
  }
  // ---------- the phone's own stream ----------
  // The page learns its messages' states from its own stream (GET me/events, Server-Sent Events: the
  // /me JSON at once and on every change of its messages), not by polling. A stream is a connection
  // held open, and the server has a connection cap ([server] max_connections) shared with the webhooks
  // and the displays: with a thousand phones in the room, only those with a voice in flight (being
  // fetched, or ready and not yet played) keep one. The stream closes STREAM_LINGER_MS after the last
  // voice settled, and opens again when the guest sends the next. While it is down by failure, the page
  // reads /me slowly and reopens it with backoff (with the current token); while it is closed because
  // nothing is in flight, a visible page reads /me every few minutes for the rotating join token.
  const STREAM_LINGER_MS = 10000;
  const live = { source: null, open: false, retryMs: 1000, retryTimer: null, pollTimer: null, lingerTimer: null };
  state.live = live;
  function inFlight() {
    return state.messages.some((m) => m.status === 'fetching' || (m.status === 'ready' && !m.played_count && m.moderation !== 'rejected'));
  }
  function applyMe(data) {
    if (data.token) token = data.token;
    state.me = data;
    renderMe();
    (data.messages || []).forEach(upsertMessage);
  }
  function unfollow() {
    clearTimeout(live.retryTimer); clearTimeout(live.pollTimer); clearTimeout(live.lingerTimer);
    live.retryTimer = live.pollTimer = live.lingerTimer = null;
    if (live.source) live.source.close();
    live.source = null; live.open = false; live.retryMs = 1000;
  }
  // After every state the stream tells: kept while a voice is in flight, else closed after the linger.
  function settle() {
    clearTimeout(live.lingerTimer); live.lingerTimer = null;
    if (!inFlight()) live.lingerTimer = setTimeout(unfollow, STREAM_LINGER_MS);
  }
  function follow() {
    clearTimeout(live.lingerTimer); live.lingerTimer = null;
    if (live.source) return;
    clearTimeout(live.retryTimer);
    if (typeof EventSource === 'undefined') { pollSoon(); return; }
    const es = new EventSource(api('me/events') + (token ? `?t=${encodeURIComponent(token)}` : ''));
    live.source = es;
    es.addEventListener('me', (e) => {
      live.open = true;
      live.retryMs = 1000;
      clearTimeout(live.pollTimer); live.pollTimer = null;
      let data;
      try { data = JSON.parse(e.data); } catch (_) { return; }
      applyMe(data);
      settle();
    });
    // Erased by the operator: nothing more to follow.
    es.addEventListener('gone', () => { unfollow(); });
    es.onerror = () => {
      // Reopened by us, not the browser: a 4xx (too many streams) closes it for good, and the URL
      // carries the token of the moment. Only while a voice is in flight: else there is nothing to learn.
      es.close();
      if (live.source !== es) return;
      live.source = null;
      live.open = false;
      if (!inFlight()) return;
      pollSoon();
      live.retryTimer = setTimeout(follow, live.retryMs);
      live.retryMs = Math.min(live.retryMs * 2, 30000);
    };
  }
  // The fallback while the stream is down and a voice is in flight: /me every 5 s.
  function pollSoon() {
    if (live.pollTimer || live.open || !inFlight()) return;
    live.pollTimer = setTimeout(async () => {
      live.pollTimer = null;
      if (live.open) return;
      const res = await request('GET', 'me');
      if (res.ok && !live.open) applyMe(res.data);
      pollSoon();
    }, 5000);
  }

  // ---------- fallback: the phone's own recorder ----------
  function useFallback(why) {
    state.fallback = true;
    if (why) $('fallback-why').textContent = why;
    $('hold-area').hidden = true;
    $('fallback').hidden = !!state.recorded;
  }
  function onFallbackFile(input) {
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    showError($('talk-error'), '');
    setPreview(file, file.name || `voice.${extFor(file.type)}`, 0);
    const audio = $('preview-audio');
    audio.onloadedmetadata = () => { if (isFinite(audio.duration)) $('preview-time').textContent = fmt(audio.duration * 1000); };
  }

  function enterTalk() {
    $('join-btn').textContent = t('join');
    if (!canRecord()) useFallback(); else { state.fallback = false; $('hold-area').hidden = !!state.recorded; $('fallback').hidden = true; }
    renderMessages();
    show('talk');
    follow();
  }

  // ---------- wiring ----------
  function wire() {
    $('avatar-camera').addEventListener('change', (e) => onAvatarFile(e.target));
    $('avatar-file').addEventListener('change', (e) => onAvatarFile(e.target));
    $('avatar-generated').addEventListener('click', () => { state.avatar = { mode: 'generated', blob: null, url: null }; renderAvatarPreview(); });
    $('nickname').addEventListener('input', () => { updateCounter(); renderAvatarPreview(); });
    $('profile-form').addEventListener('submit', submitProfile);
    $('me-chip').addEventListener('click', editProfile);

    const btn = $('talk-btn');
    btn.addEventListener('pointerdown', (e) => {
      if (e.button !== undefined && e.button > 0) return;
      e.preventDefault();
      try { btn.setPointerCapture(e.pointerId); } catch (_) { /* not capturable */ }
      startRecording();
    });
    ['pointerup', 'pointercancel', 'lostpointercapture'].forEach((n) => btn.addEventListener(n, () => stopRecording()));
    btn.addEventListener('contextmenu', (e) => e.preventDefault());
    btn.addEventListener('keydown', (e) => { if ((e.key === ' ' || e.key === 'Enter') && !e.repeat) { e.preventDefault(); startRecording(); } });
    btn.addEventListener('keyup', (e) => { if (e.key === ' ' || e.key === 'Enter') { e.preventDefault(); stopRecording(); } });

    const audio = $('preview-audio');
    $('play-btn').addEventListener('click', () => { if (audio.paused) audio.play().catch(() => {}); else audio.pause(); });
    audio.addEventListener('play', () => { $('play-btn').classList.add('playing'); $('play-btn').setAttribute('aria-label', t('pause')); });
    audio.addEventListener('pause', () => { $('play-btn').classList.remove('playing'); $('play-btn').setAttribute('aria-label', t('play')); });
    audio.addEventListener('ended', () => { $('preview-fill').style.width = '100%'; });
    audio.addEventListener('timeupdate', () => {
      const total = isFinite(audio.duration) && audio.duration > 0 ? audio.duration : (state.recorded && state.recorded.ms / 1000) || 0;
      if (total) $('preview-fill').style.width = `${Math.min(100, (audio.currentTime / total) * 100)}%`;
    });
    $('send-btn').addEventListener('click', send);
    $('discard-btn').addEventListener('click', () => { showError($('talk-error'), ''); clearPreview(); });
    $('fallback-input').addEventListener('change', (e) => onFallbackFile(e.target));

    // The token rotates on the wall every few minutes: an open stream hands over each new one; while
    // none is open (nothing in flight), a visible page reads /me every 4 minutes for it.
    setInterval(async () => {
      if (document.hidden || !state.me || live.source) return;
      const res = await request('GET', 'me');
      if (res.ok && !live.source) applyMe(res.data);
    }, 4 * 60 * 1000);
    document.addEventListener('visibilitychange', () => { if (document.hidden && state.recording) stopRecording(); });
  }

  // The consent line (what is kept, how long, shown and played in the room) in the page's language.
  function renderConsent() {
    const c = (state.info && state.info.consent) || {};
    const text = c[lang] || c.en || '';
    $('consent').textContent = text;
    $('consent').hidden = !text;
  }

  async function init() {
    wire();
    const info = await request('GET', 'info');
    if (info.ok) {
      state.info = info.data;
      if (!pickLang()) lang = info.data.locale === 'en' ? 'en' : 'zh';
      $('wall-title').textContent = info.data.title;
      document.title = info.data.title;
    }
    applyI18n();
    renderConsent();
    updateCounter();
    renderAvatarPreview();
    if (!token) { notice(lang === 'zh' ? '链接不完整，请重新扫描屏幕上的二维码。' : 'This link is incomplete. Scan the QR code on the screen again.'); return; }
    const me = await request('GET', 'me');
    if (me.ok) {
      state.me = me.data;
      state.messages = [];
      (me.data.messages || []).forEach(upsertMessage);
      renderMe();
      if (state.messages.length) $('onwall').hidden = false;
      enterTalk();
    } else {
      show('profile');
    }
  }

  init();
})();
