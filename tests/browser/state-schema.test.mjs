// The wall state's contract (wall-state.schema.json, generated from the server's Rust types) holds on both
// sides: the REAL server's answer conforms, and the fake server used by wall.test.mjs refuses to serve a
// state that drops, renames or retypes a field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startFakeServer } from './fake-server.mjs';
import { startServer, ROOT } from './server.mjs';
import { violations } from './schema.mjs';

async function fakeState(srv) {
  const r = await fetch(`${srv.origin}/api/walls/main`);
  return { status: r.status, body: await r.text() };
}

/** A fake wall with every kind of thing in its state: people (one with a thumbnail), each kind of message, a playback. */
async function busyFake() {
  const srv = await startFakeServer({ participants: 3, thumbs: true });
  const [a, b] = srv.state.participants;
  srv.addMessage(a.id, { kind: 'voice', transcript: 'hello' });
  srv.addMessage(b.id, { kind: 'text', text: 'hi' });
  srv.addMessage(b.id, { kind: 'video' });
  const m = srv.addMessage(a.id, { kind: 'image', status: 'failed' });
  srv.state.playback = { message_id: m.id, participant_id: a.id, position_ms: 10, duration_ms: 2000 };
  return srv;
}

test('the fake server serves states that conform to the schema', async () => {
  const srv = await busyFake();
  try {
    const { status, body } = await fakeState(srv);
    assert.equal(status, 200, body);
    assert.deepEqual(srv.schemaViolations, []);
  } finally { await srv.close(); }
});

for (const [what, breakIt, expected] of [
  ['drops a field', (s) => { delete s.participants[0].display_name; }, /participants\[0\]: missing field "display_name"/],
  ['renames a field', (s) => { s.messages[0].mediaUrl = s.messages[0].media_url; delete s.messages[0].media_url; },
    /messages\[0\]: missing field "media_url"[\s\S]*messages\[0\]: unknown field "mediaUrl"/],
  ['retypes a field', (s) => { s.participants[1].joined_at = new Date(0).toISOString(); }, /participants\[1\]\.joined_at: expected integer, got string/],
  ['drops a top-level field', (s) => { delete s.provider; }, /\$: missing field "provider"/],
  ['sends an unknown enum value', (s) => { s.messages[1].status = 'pending'; }, /messages\[1\]\.status/],
]) {
  test(`the fake server refuses a state that ${what}`, async () => {
    const srv = await busyFake();
    try {
      breakIt(srv.state);
      const { status, body } = await fakeState(srv);
      assert.equal(status, 500);
      assert.match(body, expected);
      assert.match(srv.schemaViolations.join('\n'), expected);
    } finally { await srv.close(); }
  });
}

test('the real server\'s wall state conforms to the schema', async () => {
  const srv = await startServer({});
  try {
    // A web guest with a profile and one voice: participants and messages are not empty.
    const joinUrl = await srv.joinUrl();
    const token = new URL(joinUrl).searchParams.get('t');
    const cookie = (await fetch(joinUrl)).headers.get('set-cookie').split(';')[0];
    const form = (fields) => { const f = new FormData(); for (const [k, v] of Object.entries(fields)) f.append(k, v); return f; };
    const post = (route, body) => fetch(`${srv.url}/api/join/${srv.wallId}/${route}`, { method: 'POST', body, headers: { cookie } });
    assert.ok((await post('profile', form({ token, nickname: 'Schema', avatar_mode: 'generated' }))).ok);
    const voice = form({ token, upload_id: 'up-schema' });
    voice.append('audio', new Blob([fs.readFileSync(path.join(ROOT, 'tests/fixtures/audio/hello.ogg'))]), 'hello.ogg');
    assert.equal((await post('voice', voice)).status, 201);
    // The 201 means stored; the message reaches the wall when the pipeline has analysed it. Wait for that
    // state (bounded), so the schema is checked on a ready message with its duration and waveform.
    let state;
    for (const deadline = Date.now() + 15000; ;) {
      state = await (await srv.get(`/api/walls/${srv.wallId}`)).json();
      if (state.messages.length === 1 && state.messages[0].status === 'ready') break;
      assert.ok(Date.now() < deadline, `the voice never became ready: ${JSON.stringify(state.messages)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(state.participants.length, 1);
    assert.equal(state.messages.length, 1);
    assert.deepEqual(violations(state), []);
  } finally { await srv.stop(); }
});
