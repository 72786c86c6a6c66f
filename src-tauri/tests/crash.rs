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
             api_base = \"{b}\"\noauth_base = \"{b}\"\n"
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

const SENDERS: usize = 16;
const KILL_AFTER: usize = 300;

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

/// Push from `SENDERS` senders at once until `KILL_AFTER` acks, then SIGKILL the process while they are
/// still pushing; every acknowledged push's content goes into `acked`.
async fn burst_then_kill(app: Served, life: u64, acked: Arc<Mutex<Vec<String>>>) {
    // A burst of signed text pushes from several senders at once; each remembers what was acked.
    let count = Arc::new(AtomicUsize::new(0));
    let (enough_tx, mut enough) = tokio::sync::watch::channel(false);
    let enough_tx = Arc::new(enough_tx);
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (acked, count, enough_tx) = (acked.clone(), count.clone(), enough_tx.clone());
        let (client, webhook) = (voicewall_testkit::app::client(), app.webhook());
        senders.push(tokio::spawn(async move {
            let pusher = pusher();
            for i in 0u64.. {
                let content = format!("burst-{life}-{s}-{i}");
                let xml = wechat::text_xml(
                    ORIGINAL_ID,
                    &format!("oBurst{s:02}"),
                    now_s(),
                    &content,
                    9_000_000_000 + life * 100_000_000 + s as u64 * 1_000_000 + i,
                );
                match pusher
                    .deliver(&client, &webhook, &xml, PushMode::Safe)
                    .await
                {
                    // Acknowledged: a 200 with its whole body ("success") received.
                    Ok(r) if r.status() == 200 => {
                        if r.text().await.is_err() {
                            return;
                        }
                        acked.lock().unwrap().push(content);
                        if count.fetch_add(1, Ordering::SeqCst) + 1 >= KILL_AFTER {
                            let _ = enough_tx.send(true);
                        }
                    }
                    Ok(r) => panic!("push refused before the kill: {}", r.status()),
                    // The process is gone: this push was never acknowledged.
                    Err(_) => return,
                }
            }
        }));
    }
    enough.wait_for(|e| *e).await.unwrap();
    // SIGKILL while the senders are still pushing.
    let Served { process, .. } = app;
    process.kill();
    for s in senders {
        s.await.unwrap();
    }
    assert!(count.load(Ordering::SeqCst) >= KILL_AFTER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_push_survives_a_sigkill_mid_burst_exactly_once() {
    const ROUNDS: u64 = 4;
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let config = config_file(dir.path(), &mock);
    // Several lives, each SIGKILLed mid-burst: each kill is one more chance to catch an ack that came
    // before its flush (the window is the time since the last flush, short under load).
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    for life in 0..ROUNDS {
        let app = Served::start(&config).await;
        burst_then_kill(app, life, acked.clone()).await;
    }
    let acked = acked.lock().unwrap().clone();
    eprintln!(
        "{} pushes acknowledged before {ROUNDS} SIGKILLs",
        acked.len()
    );

    let app = Served::start(&config).await;
    app.http.wait_inbox_drained().await;
    let wall = app.http.wall("wx").await;
    let mut on_wall: HashMap<String, usize> = HashMap::new();
    for m in wall["messages"].as_array().unwrap() {
        if let Some(text) = m["text"].as_str() {
            *on_wall.entry(text.to_string()).or_default() += 1;
        }
    }
    let lost: Vec<&String> = acked.iter().filter(|c| !on_wall.contains_key(*c)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged pushes lost by the crash, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
    let doubled: Vec<_> = on_wall.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "shown more than once: {doubled:?}");
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
