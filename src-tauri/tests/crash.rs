//! Crash and restart with a real process: `voicewall serve` is SIGKILLed (no shutdown code runs, sled
//! does not flush on drop) and started again on the same data dir.
//!
//! - In the middle of a burst of signed pushes: every push it acknowledged is on the wall afterwards,
//!   exactly once (the ack is answered only after the durable flush).
//! - In the middle of media fetches: the pipeline resumes from the inbox; what was already fetched (and
//!   flushed) is not fetched again, what was mid-fetch is fetched again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use voicewall_sim::wechat::{self, MockWechat, PushMode, Pusher};
use voicewall_testkit::serve::write_config;
use voicewall_testkit::{Endpoint, ServeProcess};

const BIN: &str = env!("CARGO_BIN_EXE_voicewall");
const APP_ID: &str = "wxc0000000000c4a5h";
const SECRET: &str = "crash-test-secret";
const TOKEN: &str = "crashtoken";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const ORIGINAL_ID: &str = "gh_c4a5h0000000";

fn now_s() -> u64 {
    voicewall_core::domain::now_ms() / 1000
}

fn pusher() -> Pusher {
    Pusher::new(TOKEN, Some(AES_KEY), APP_ID, ORIGINAL_ID)
}

/// A config file for `voicewall serve` with a WeChat wall "wx" on the simulated platform.
fn config_file(dir: &Path, mock: &MockWechat) -> PathBuf {
    let b = mock.base_url();
    write_config(
        dir,
        &format!(
            "[[walls]]\nid = \"wx\"\n[walls.wechat]\napp_id = \"{APP_ID}\"\napp_secret = \"{SECRET}\"\n\
             token = \"{TOKEN}\"\nencoding_aes_key = \"{AES_KEY}\"\noriginal_id = \"{ORIGINAL_ID}\"\n\
             api_base = \"{b}\"\noauth_base = \"{b}\"\n\
             [[walls]]\nid = \"web\"\n[walls.web]\nmessages_per_minute = 1000000\n\
             messages_per_ip_per_minute = 1000000\n"
        ),
    )
}

/// Start `voicewall serve` off the async threads (it waits for the child's "serving" line).
async fn serve(config: &Path) -> ServeProcess {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || ServeProcess::start(Path::new(BIN), &config))
        .await
        .unwrap()
        .expect("voicewall serve starts")
}

/// A `voicewall serve` child and its HTTP side.
struct Served {
    process: ServeProcess,
    http: Endpoint,
}

impl Served {
    async fn start(config: &Path) -> Self {
        let process = serve(config).await;
        let http = process.endpoint();
        Self { process, http }
    }

    async fn wait_wall(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.http.wait_state("wx", 30, pred).await
    }

    fn webhook(&self) -> String {
        self.http.url("/webhook/wechat/wx")
    }
}

fn with_status<'a>(wall: &'a serde_json::Value, status: &str) -> Vec<&'a serde_json::Value> {
    wall["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == status)
        .collect()
}

/// WeChat senders pushing at once (texts, and every 4th push a voice), and web guests uploading.
const SENDERS: usize = 12;
const UPLOADERS: usize = 2;

/// A number from the environment (`CRASH_BURST`, `CRASH_KILLS`: not `VOICEWALL_`, which `serve` would
/// read as configuration), or the default.
fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What the burst got acknowledged, across lives.
#[derive(Default)]
struct Acked {
    /// WeChat texts, by content.
    texts: Vec<String>,
    /// WeChat voices, by platform media id (also their transcript, so the wall names them).
    voices: Vec<String>,
    /// Web uploads, by the message id the upload was answered with.
    uploads: Vec<String>,
    /// Voices the wall showed ready just before a kill (by media id), with their downloads then: never
    /// fetched again after it.
    shown_ready: HashMap<String, u64>,
    /// Pushes and uploads sent (acknowledged or not).
    sent: usize,
}

/// One guest's join on the web wall: the device cookie and the current join token.
async fn web_guest(app: &Served, n: usize) -> Option<(String, String)> {
    let state = app.http.wall("web").await;
    let url = state["join"]["url"].as_str()?.to_string();
    let token = url.split("t=").nth(1)?.to_string();
    let client = &app.http.anonymous;
    let r = client
        .get(app.http.url(&format!("/join/web?t={token}")))
        .send()
        .await
        .ok()?;
    let cookie = r.headers().get("set-cookie")?.to_str().ok()?;
    let cookie = cookie.split(';').next()?.to_string();
    let nickname = format!("Guest {n}");
    let (ct, body) = multipart(&[
        ("token", token.as_bytes(), None),
        ("nickname", nickname.as_bytes(), None),
    ]);
    let r = client
        .post(app.http.url("/api/join/web/profile"))
        .header("content-type", ct)
        .header("cookie", &cookie)
        .body(body)
        .send()
        .await
        .ok()?;
    assert!(r.status().is_success(), "profile: {}", r.status());
    Some((cookie, token))
}

/// One form field: name, value, and for a file its (filename, content type).
type Field<'a> = (&'a str, &'a [u8], Option<(&'a str, &'a str)>);

/// A multipart/form-data body.
fn multipart(parts: &[Field]) -> (String, Vec<u8>) {
    let boundary = "----voicewall-crash-boundary";
    let mut body = Vec::new();
    for (name, value, file) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some((filename, ct)) = file {
            body.extend_from_slice(
                format!("; filename=\"{filename}\"\r\nContent-Type: {ct}").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(value);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Push and upload until `per_life` acks, then SIGKILL the process while the senders are still at it.
async fn burst_then_kill(
    app: Served,
    life: u64,
    per_life: usize,
    mock: Arc<MockWechat>,
    acked: Arc<Mutex<Acked>>,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let (enough_tx, mut enough) = tokio::sync::watch::channel(false);
    let enough_tx = Arc::new(enough_tx);
    let bump = {
        let (count, enough_tx) = (count.clone(), enough_tx.clone());
        move || {
            if count.fetch_add(1, Ordering::SeqCst) + 1 >= per_life {
                let _ = enough_tx.send(true);
            }
        }
    };
    let mut tasks = Vec::new();
    let amr = hello_amr();
    for s in 0..SENDERS {
        let (acked, mock, bump, amr) = (acked.clone(), mock.clone(), bump.clone(), amr.clone());
        let (client, webhook) = (voicewall_testkit::app::client(), app.webhook());
        tasks.push(tokio::spawn(async move {
            let pusher = pusher();
            for i in 0u64.. {
                let msg_id = 9_000_000_000 + life * 100_000_000 + s as u64 * 1_000_000 + i;
                let from = format!("oBurst{s:02}");
                let (xml, voice, content) = if i % 4 == 3 {
                    let id = format!("v-{life}-{s}-{i}");
                    mock.add_media(&id, amr.clone(), "audio/amr");
                    (
                        wechat::voice_xml(ORIGINAL_ID, &from, now_s(), &id, msg_id, &id),
                        true,
                        id,
                    )
                } else {
                    let content = format!("burst-{life}-{s}-{i}");
                    (
                        wechat::text_xml(ORIGINAL_ID, &from, now_s(), &content, msg_id),
                        false,
                        content,
                    )
                };
                acked.lock().unwrap().sent += 1;
                match pusher
                    .deliver(&client, &webhook, &xml, PushMode::Safe)
                    .await
                {
                    // Acknowledged: a 200 with its whole body ("success") received.
                    Ok(r) if r.status() == 200 => {
                        if r.text().await.is_err() {
                            return;
                        }
                        let mut a = acked.lock().unwrap();
                        if voice {
                            a.voices.push(content)
                        } else {
                            a.texts.push(content)
                        }
                        drop(a);
                        bump();
                    }
                    Ok(r) => panic!("push refused before the kill: {}", r.status()),
                    // The process is gone: this push was never acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    let webm = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/audio/hello_mediarecorder.webm"
    ))
    .unwrap();
    for u in 0..UPLOADERS {
        let Some((cookie, token)) = web_guest(&app, u).await else {
            panic!("guest {u} could not join the web wall");
        };
        let (acked, bump, webm) = (acked.clone(), bump.clone(), webm.clone());
        let (client, url) = (
            app.http.anonymous.clone(),
            app.http.url("/api/join/web/voice"),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let upload_id = format!("up-{life}-{u}-{i}");
                let (ct, body) = multipart(&[
                    ("token", token.as_bytes(), None),
                    ("upload_id", upload_id.as_bytes(), None),
                    ("audio", &webm, Some(("voice.webm", "audio/webm"))),
                ]);
                acked.lock().unwrap().sent += 1;
                let sent = client
                    .post(&url)
                    .header("content-type", ct)
                    .header("cookie", &cookie)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let Ok(json) = r.json::<serde_json::Value>().await else {
                            return;
                        };
                        let id = json["message_id"].as_str().expect("message_id").to_string();
                        acked.lock().unwrap().uploads.push(id);
                        bump();
                    }
                    Ok(r) => panic!("upload refused before the kill: {}", r.status()),
                    Err(_) => return,
                }
            }
        }));
    }
    enough.wait_for(|e| *e).await.unwrap();
    // What the wall shows ready now is never fetched again.
    let wall = app.http.wall_full("wx").await;
    let ready: Vec<String> = with_status(&wall, "ready")
        .iter()
        .filter_map(|m| m["transcript"].as_str().map(String::from))
        .collect();
    {
        let mut a = acked.lock().unwrap();
        for id in ready {
            let downloads = mock.media_count(&id);
            a.shown_ready.entry(id).or_insert(downloads);
        }
    }
    // SIGKILL while the senders are still pushing.
    let Served { process, .. } = app;
    process.kill();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(count.load(Ordering::SeqCst) >= per_life);
}

/// Kill points spread over a burst of signed WeChat pushes (texts and voices, fetched from the
/// simulator) and web uploads; a restart on the same data dir after each. Then every acknowledged push
/// is on the wall exactly once, nothing is left fetching, and no voice the wall showed ready was
/// fetched again. `CRASH_BURST` (acks, default 3000) and `CRASH_KILLS` (default 20) size it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_push_survives_a_sigkill_mid_burst_exactly_once() {
    let kills = env_number("CRASH_KILLS", 20).max(1);
    let burst = env_number("CRASH_BURST", 3000);
    let per_life = (burst / kills).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mock = Arc::new(MockWechat::start(APP_ID, SECRET).await.unwrap());
    let config = config_file(dir.path(), &mock);
    let acked: Arc<Mutex<Acked>> = Arc::default();
    for life in 0..kills as u64 {
        let app = Served::start(&config).await;
        burst_then_kill(app, life, per_life, mock.clone(), acked.clone()).await;
    }

    let app = Served::start(&config).await;
    app.http.wait_inbox_drained().await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let wall = app.http.wall_full("wx").await;
    let web = app.http.wall_full("web").await;
    let mut on_wall: HashMap<String, usize> = HashMap::new();
    for m in wall["messages"].as_array().unwrap() {
        let key = m["text"].as_str().or(m["transcript"].as_str());
        *on_wall
            .entry(key.unwrap_or_default().to_string())
            .or_default() += 1;
    }
    for m in web["messages"].as_array().unwrap() {
        *on_wall
            .entry(m["id"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let all: Vec<&String> = acked
        .texts
        .iter()
        .chain(&acked.voices)
        .chain(&acked.uploads)
        .collect();
    let lost: Vec<&&String> = all.iter().filter(|c| !on_wall.contains_key(**c)).collect();
    let doubled: Vec<_> = on_wall.iter().filter(|(_, n)| **n > 1).collect();
    let fetching = with_status(&wall, "fetching").len() + with_status(&web, "fetching").len();
    let downloads: u64 = acked.voices.iter().map(|id| mock.media_count(id)).sum();
    let refetched_shown: Vec<(&String, u64, u64)> = acked
        .shown_ready
        .iter()
        .map(|(id, then)| (id, *then, mock.media_count(id)))
        .filter(|(_, then, now)| now > then)
        .collect();
    eprintln!(
        "crash burst: {kills} SIGKILLs, {} sent, {} acknowledged ({} texts, {} voices, {} uploads); \
         lost {}, doubled {}, stuck fetching {fetching}; {} media downloads for {} voices \
         ({} shown ready before a kill, {} of them fetched again)",
        acked.sent,
        all.len(),
        acked.texts.len(),
        acked.voices.len(),
        acked.uploads.len(),
        lost.len(),
        doubled.len(),
        downloads,
        acked.voices.len(),
        acked.shown_ready.len(),
        refetched_shown.len(),
    );
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged pushes lost by the crash, e.g. {:?}",
        lost.len(),
        all.len(),
        &lost[..lost.len().min(5)]
    );
    assert!(doubled.is_empty(), "shown more than once: {doubled:?}");
    assert_eq!(fetching, 0, "left fetching after the restart");
    assert!(
        refetched_shown.is_empty(),
        "shown ready, then fetched again: {refetched_shown:?}"
    );
    app.process.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetches_resume_after_a_sigkill_and_fetched_media_is_not_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let amr = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/audio/hello.amr"
    ))
    .unwrap();
    let fast = ["m-fast-1", "m-fast-2"];
    let slow = ["m-slow-1", "m-slow-2", "m-slow-3"];
    for id in fast.iter().chain(slow.iter()) {
        mock.add_media(id, amr.clone(), "audio/amr");
    }
    for id in slow {
        mock.set_media_delay(id, Duration::from_secs(600));
    }
    let config = config_file(dir.path(), &mock);

    // First life: five voices acked; two fetched and ready, three stuck mid-fetch; then SIGKILL.
    let app = Served::start(&config).await;
    for (i, id) in fast.iter().chain(slow.iter()).enumerate() {
        let xml = wechat::voice_xml(
            ORIGINAL_ID,
            &format!("oCrash{i}"),
            now_s(),
            id,
            5_000_000_000 + i as u64,
            "",
        );
        let r = pusher()
            .deliver(&app.http.client, &app.webhook(), &xml, PushMode::Safe)
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acked = durably stored");
    }
    let w = app
        .wait_wall(|w| with_status(w, "ready").len() == 2 && with_status(w, "fetching").len() == 3)
        .await;
    assert_eq!(w["messages"].as_array().unwrap().len(), 5);
    for id in slow {
        // The fetch has reached the platform (the counter is bumped before the delay).
        let deadline = tokio::time::Instant::now() + voicewall_testkit::app::PATIENCE;
        while mock.media_count(id) == 0 {
            assert!(tokio::time::Instant::now() < deadline, "{id} never fetched");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // The two fast ones are done with: only the three stuck ones are left in the inbox.
    let deadline = tokio::time::Instant::now() + voicewall_testkit::app::PATIENCE;
    while app.http.inbox_pending().await != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "inbox never down to 3"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The pipeline's own writes (media cached, message ready, inbox entry done) become durable with the
    // next flush: sled's own every 500 ms, or the group commit of the next ack. One more push makes that
    // point explicit; without it a fetch finished just before the kill is fetched again after it.
    let sentinel = wechat::text_xml(ORIGINAL_ID, "oCrash0", now_s(), "still here", 5_000_000_099);
    let r = pusher()
        .deliver(&app.http.client, &app.webhook(), &sentinel, PushMode::Safe)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.process.kill();
    assert_eq!(mock.media_count("m-fast-1"), 1);
    for id in slow {
        assert_eq!(
            mock.media_count(id),
            1,
            "{id} was being fetched at the crash"
        );
        mock.set_media_delay(id, Duration::ZERO);
    }

    // Second life on the same data dir.
    let app = Served::start(&config).await;
    let wall = app.wait_wall(|w| with_status(w, "ready").len() == 6).await;
    assert_eq!(
        wall["messages"].as_array().unwrap().len(),
        6,
        "every acked push, once"
    );
    assert_eq!(wall["participants"].as_array().unwrap().len(), 5);
    for id in fast {
        assert_eq!(
            mock.media_count(id),
            1,
            "{id} was fetched before the crash: not refetched"
        );
    }
    for id in slow {
        assert_eq!(
            mock.media_count(id),
            2,
            "{id} was mid-fetch: fetched again after the restart"
        );
    }
    app.http.wait_inbox_drained().await;
    let (status, log) = app.process.terminate();
    assert!(status.success(), "exit {status}: {log:#?}");
}

fn hello_amr() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/audio/hello.amr"
    ))
    .unwrap()
}

async fn push_voice(app: &Served, sender: &str, media_id: &str, msg_id: u64) {
    let xml = wechat::voice_xml(ORIGINAL_ID, sender, now_s(), media_id, msg_id, "");
    let r = pusher()
        .deliver(&app.http.client, &app.webhook(), &xml, PushMode::Safe)
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "acked = durably stored");
}

/// The wall showed them ready, then SIGKILL at once (no later push flushes for them): what the wall
/// showed is durable, so nothing is fetched again. Red when the ready state is announced before the
/// flush (sled's own flush comes every 500 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voice_the_wall_showed_ready_is_not_fetched_again_after_a_sigkill() {
    const VOICES: usize = 12;
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let amr = hello_amr();
    let ids: Vec<String> = (0..VOICES).map(|i| format!("m-ready-{i}")).collect();
    // Distinct bytes per voice (a trailing byte), so each is its own blob.
    for (i, id) in ids.iter().enumerate() {
        let mut bytes = amr.clone();
        bytes.push(i as u8);
        mock.add_media(id, bytes, "audio/amr");
    }
    let config = config_file(dir.path(), &mock);
    let app = Served::start(&config).await;
    for (i, id) in ids.iter().enumerate() {
        push_voice(&app, &format!("oReady{i}"), id, 6_000_000_000 + i as u64).await;
    }
    app.wait_wall(|w| with_status(w, "ready").len() == VOICES)
        .await;
    app.process.kill();

    let app = Served::start(&config).await;
    let wall = app
        .wait_wall(|w| with_status(w, "ready").len() == VOICES)
        .await;
    assert_eq!(wall["messages"].as_array().unwrap().len(), VOICES);
    app.http.wait_inbox_drained().await;
    let fetched: Vec<u64> = ids.iter().map(|id| mock.media_count(id)).collect();
    eprintln!("media downloads per voice after the restart: {fetched:?}");
    assert!(
        fetched.iter().all(|n| *n == 1),
        "shown ready before the kill, fetched again after it: {fetched:?}"
    );
    app.process.terminate();
}

/// A voice played through (its count shown on the wall), then SIGKILL: after the restart it is not
/// queued again as never played. Red when the count is not flushed before it is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_voice_already_played_is_not_played_again_after_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    mock.add_media("m-play-1", hello_amr(), "audio/amr");
    let mut second = hello_amr();
    second.push(2);
    mock.add_media("m-play-2", second, "audio/amr");
    let config = config_file(dir.path(), &mock);
    let played = |w: &serde_json::Value, n: u64| {
        w["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["played_count"].as_u64() >= Some(1))
            .count() as u64
            >= n
    };
    let app = Served::start(&config).await;
    push_voice(&app, "oPlay1", "m-play-1", 7_000_000_001).await;
    app.wait_wall(|w| played(w, 1)).await;
    app.process.kill();

    // The next life: a new voice is queued behind anything queued at start; once it has played, a
    // replay of the first would have come before it.
    let app = Served::start(&config).await;
    push_voice(&app, "oPlay2", "m-play-2", 7_000_000_002).await;
    let wall = app.wait_wall(|w| played(w, 2)).await;
    let counts: Vec<u64> = wall["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["played_count"].as_u64().unwrap())
        .collect();
    // Playbacks of this life: the new voice only (a lost count replays the first, and counts it 1 again).
    let metrics = app
        .http
        .client
        .get(app.http.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let plays = metrics
        .lines()
        .find_map(|l| l.strip_prefix("voicewall_playbacks_total "))
        .expect("voicewall_playbacks_total")
        .to_string();
    eprintln!("played counts {counts:?}; playbacks in the second life: {plays}");
    assert_eq!(plays, "1", "the first voice played again after the crash");
    assert_eq!(counts, [1, 1]);
    app.process.terminate();
}
