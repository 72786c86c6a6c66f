//! Privacy over real HTTP (the app on 127.0.0.1 port 0, a temp data dir, real sled): the operator's
//! purge and export, and the join page's consent line. Two web walls, "main" and "other", share one
//! voice blob, so a purge of main must keep what other still names.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::PathBuf;
use voicewall_core::domain::FetchedProfile;
use voicewall_core::events::WallEvent;
use voicewall_testkit::{inbound, TestApp};

const TOKEN: &str = "operator-secret";

async fn spawn() -> TestApp {
    TestApp::spawn(&format!(
        "[admin]\ntoken = \"{TOKEN}\"\n\
         [[walls]]\nid = \"main\"\nlocale = \"en\"\nretention_days = 14\n[walls.web]\n\
         [[walls]]\nid = \"other\"\n[walls.web]\n"
    ))
    .await
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../tests/fixtures/audio")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `sender` joins `wall` and sends these voices (bytes already in the cache, as a web upload is);
/// waits until the wall shows them ready.
async fn speak(app: &TestApp, wall: &str, sender: &str, voices: &[(&str, &[u8])]) {
    app.state
        .accept(&inbound::join(wall, sender))
        .await
        .unwrap();
    for (i, (ct, bytes)) in voices.iter().enumerate() {
        let key = app.state.store.put_media(bytes, ct).unwrap();
        let push = inbound::cached_voice(wall, sender, &key, &format!("{sender}-{i}"));
        app.state.accept(&push).await.unwrap();
    }
    app.wait_inbox_drained().await;
    let pid = format!("web:{sender}");
    app.wait_state(wall, 30, |s| {
        s["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["participant_id"] == pid.as_str() && m["status"] == "ready")
            .count()
            == voices.len()
    })
    .await;
}

/// A profile with a real picture (a platform's, or the join page's), stored and applied; `seed` tells
/// two people's pictures apart.
async fn picture(app: &TestApp, wall: &str, sender: &str, seed: &[u8]) {
    let shade = seed
        .iter()
        .fold(7u8, |h, b| h.wrapping_mul(31).wrapping_add(*b));
    let img = image::RgbImage::from_pixel(300, 200, image::Rgb([shade, 90, 200]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    app.state
        .board
        .store_profile(
            wall,
            voicewall_core::providers::web::PROVIDER,
            sender,
            FetchedProfile {
                nickname: format!("Nick {sender}"),
                avatar: Some((png, "image/png".into())),
                unionid: None,
            },
        )
        .await
        .unwrap();
}

/// Every blob some record of `wall` names (its messages, participants, their profiles).
fn blobs_of(app: &TestApp, wall: &str) -> BTreeSet<String> {
    let store = &app.state.store;
    let mut keys = BTreeSet::new();
    for m in store.messages(wall).unwrap() {
        keys.extend(m.media.map(|k| k.to_string()));
    }
    for p in store.participants(wall).unwrap() {
        keys.insert(p.avatar.to_string());
        keys.extend(p.thumb.map(|k| k.to_string()));
        let (provider, sender) = p.id.split_once(':').unwrap();
        assert_eq!(provider, "web");
        if let Some(profile) = store
            .profile(voicewall_core::providers::web::PROVIDER, sender)
            .unwrap()
        {
            keys.extend(profile.avatar.map(|k| k.to_string()));
            keys.extend(profile.thumb.map(|k| k.to_string()));
        }
    }
    keys
}

/// The key of the generated picture a participant has until their profile arrives.
fn placeholder_key(pid: &str) -> String {
    use voicewall_core::domain::{placeholder_name, placeholder_svg, MediaKey};
    MediaKey::of(placeholder_svg(pid, &placeholder_name(pid)).as_bytes()).to_string()
}

fn post(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    app.client.post(app.url(path))
}

fn get(app: &TestApp, path: &str) -> reqwest::RequestBuilder {
    app.client.get(app.url(path))
}

#[tokio::test]
async fn the_privacy_routes_answer_only_the_operator() {
    let app = spawn().await;
    for (method, path) in [
        ("POST", "/api/admin/walls/main/purge"),
        ("GET", "/api/admin/walls/main/export"),
    ] {
        for bearer in [None, Some("wrong")] {
            let (status, body) = app
                .call(
                    method,
                    path,
                    Some(serde_json::json!({"confirm": "main"})),
                    bearer,
                )
                .await;
            assert_eq!(status, 401, "{method} {path} with {bearer:?}");
            assert_eq!(body["code"], "unauthorized");
        }
    }
    // With the credential, an unknown wall is 404.
    let r = get(&app, "/api/admin/walls/nope/export")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn purge_leaves_nothing_of_the_wall_in_the_store_or_the_media_cache() {
    let app = spawn().await;
    let shared = fixture("hello.ogg");
    speak(
        &app,
        "main",
        "ann",
        &[("audio/amr", &fixture("hello.amr")), ("audio/ogg", &shared)],
    )
    .await;
    speak(
        &app,
        "main",
        "bob",
        &[("audio/mpeg", &fixture("hello.mp3"))],
    )
    .await;
    picture(&app, "main", "ann", b"ann's png").await;
    speak(&app, "other", "cat", &[("audio/ogg", &shared)]).await;
    picture(&app, "other", "cat", b"cat's png").await;
    let mut events = app.state.hub.subscribe("main").unwrap();
    let kept_for_other = blobs_of(&app, "other");
    let main_only: BTreeSet<String> = blobs_of(&app, "main")
        .difference(&kept_for_other)
        .cloned()
        .collect();
    assert_eq!(
        main_only.len(),
        5,
        "ann's amr + picture + its thumbnail, bob's mp3 + placeholder: {main_only:?}"
    );

    // A wrong or missing confirmation changes nothing.
    for body in [
        Some(serde_json::json!({"confirm": "other"})),
        Some(serde_json::json!({})),
        None,
    ] {
        let mut r = post(&app, "/api/admin/walls/main/purge").bearer_auth(TOKEN);
        if let Some(b) = &body {
            r = r.json(b);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 400, "{body:?}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["code"], "confirm_mismatch");
    }
    assert_eq!(app.state.store.messages("main").unwrap().len(), 3);

    let r = post(&app, "/api/admin/walls/main/purge")
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"confirm": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["erased"]["messages"], 3);
    assert_eq!(v["erased"]["participants"], 2);
    assert_eq!(v["erased"]["profiles"], 1);

    // The live wall is empty, and its display saw each person leave.
    let state = app.wall("main").await;
    assert_eq!(state["participants"], serde_json::json!([]));
    assert_eq!(state["messages"], serde_json::json!([]));
    let (mut left, mut rebuilt) = (BTreeSet::new(), false);
    while let Ok(ev) = events.try_recv() {
        match ev {
            WallEvent::ParticipantLeft { participant_id } => {
                left.insert(participant_id);
            }
            WallEvent::WallChanged { reason } => rebuilt |= reason == "purged",
            _ => {}
        }
    }
    assert_eq!(left, BTreeSet::from(["web:ann".into(), "web:bob".into()]));
    assert!(rebuilt, "the wall's pages were told to rebuild");
    // Audited.
    let audit = app.state.audit.recent(10).unwrap();
    assert_eq!(audit[0].action, "wall.purge");
    assert_eq!(audit[0].wall.as_deref(), Some("main"));

    // Every key of every tree: nothing names main; the blobs left are exactly what other names.
    let store = &app.state.store;
    for (tree, key) in store.dump_keys().unwrap() {
        let k = String::from_utf8_lossy(&key);
        assert!(
            !k.starts_with("main\0")
                && !k.contains("\0main\0")
                && !k.contains("ann")
                && !k.contains("bob"),
            "{tree}: {k:?} is left of main"
        );
    }
    assert!(store.inbox().unwrap().iter().all(|(_, i)| i.wall != "main"));
    let blobs: BTreeSet<String> = store.media_keys().unwrap().into_iter().collect();
    for key in &main_only {
        assert!(!blobs.contains(key), "main's blob {key} is still cached");
        assert!(store
            .derived::<serde_json::Value>(key, "analysis")
            .unwrap()
            .is_none());
    }
    // Exactly what other names, and cat's placeholder from before the picture (a blob of other's, that
    // no record names; ann's one of main is gone).
    let mut expected = kept_for_other.clone();
    expected.insert(placeholder_key("web:cat"));
    assert_eq!(blobs, expected);
    assert!(!blobs.contains(&placeholder_key("web:ann")));
    assert_eq!(blobs_of(&app, "other"), kept_for_other);
    let shared_key = voicewall_core::domain::MediaKey::of(&shared).to_string();
    assert!(blobs.contains(&shared_key), "the voice other shares");
    assert!(store
        .derived::<serde_json::Value>(&shared_key, "analysis")
        .unwrap()
        .is_some());
    let other = app.wall("other").await;
    assert_eq!(other["messages"].as_array().unwrap().len(), 1);
    assert_eq!(other["participants"][0]["display_name"], "Nick cat");
    // Other's voice still plays from the cache.
    let media_url = other["messages"][0]["media_url"].as_str().unwrap();
    let r = get(&app, media_url).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), shared.as_slice());
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, newlines inside quotes).
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[tokio::test]
async fn export_streams_a_zip_of_the_approved_voices_with_both_manifests() {
    let app = spawn().await;
    let amr = fixture("hello.amr");
    let ogg = fixture("hello.ogg");
    speak(
        &app,
        "main",
        "ann",
        &[("audio/amr", &amr), ("audio/ogg", &ogg)],
    )
    .await;
    picture(&app, "main", "ann", b"png").await;
    speak(
        &app,
        "main",
        "bob",
        &[("audio/mpeg", &fixture("hello.mp3"))],
    )
    .await;
    speak(
        &app,
        "other",
        "cat",
        &[("audio/wav", &fixture("hello.wav"))],
    )
    .await;
    speak(&app, "main", "dan", &[("audio/mp4", &fixture("hello.m4a"))]).await;
    // The operator rejected dan's voice: not exported.
    let dan = app.state.store.messages("main").unwrap().pop().unwrap();
    assert_eq!(dan.participant_id, "web:dan");
    app.state
        .store
        .update_message("main", &dan.id, |m| {
            m.moderation = voicewall_core::domain::Moderation::Rejected
        })
        .unwrap();
    // A guest's name a spreadsheet would run, and a transcript with a comma, quotes and a newline.
    let messages = app.state.store.messages("main").unwrap();
    let bob = messages
        .iter()
        .find(|m| m.participant_id == "web:bob")
        .unwrap();
    app.state
        .store
        .update_message("main", &bob.id, |m| {
            m.transcript = Some("hello, \"wall\"\nbye".into())
        })
        .unwrap();
    let mut p = app
        .state
        .store
        .participant("main", "web:bob")
        .unwrap()
        .unwrap();
    p.display_name = "=1+1".into();
    app.state.store.put_participant("main", &p).unwrap();
    // A message that failed is not exported.
    app.state
        .store
        .update_message("main", &messages[0].id, |m| {
            m.status = voicewall_core::domain::MessageStatus::Failed
        })
        .unwrap();

    let r = get(&app, "/api/admin/walls/main/export")
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"voicewall-main-"));
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed, not sized up front"
    );
    assert_eq!(r.headers()["transfer-encoding"], "chunked");
    let bytes = r.bytes().await.unwrap();

    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        files.insert(f.name().unwrap().to_string(), data);
    }
    let mut names: Vec<&String> = files.keys().collect();
    names.sort();
    assert_eq!(names.len(), 4, "2 voices + 2 manifests: {names:?}");

    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["wall"], "main");
    let rows = manifest["messages"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let store = &app.state.store;
    for row in rows {
        // The audio in the archive is the stored original, byte for byte.
        let m = store
            .message("main", row["id"].as_str().unwrap())
            .unwrap()
            .unwrap();
        let key = m.media.unwrap();
        let (meta, stored) = store.media(&key).unwrap().unwrap();
        let file = row["file"].as_str().unwrap();
        assert_eq!(files[file], stored.to_vec(), "{file}");
        assert_eq!(row["content_type"], meta.content_type.as_str());
        assert_eq!(row["bytes"], stored.len());
        assert_eq!(row["duration_ms"], m.duration_ms.unwrap());
        assert!(m.duration_ms.unwrap() > 500);
        assert_eq!(row["status"], "ready");
        assert_eq!(row["moderation"], "approved");
        assert_eq!(row["provider"], "web");
        assert_eq!(row["received_at_ms"], m.received_at);
        assert!(row["received_at"].as_str().unwrap().ends_with('Z'));
    }
    let ann = rows
        .iter()
        .find(|r| r["participant_id"] == "web:ann")
        .unwrap();
    assert_eq!(ann["name"], "Nick ann");
    assert!(ann["file"].as_str().unwrap().ends_with("_Nick_ann.ogg"));
    assert_eq!(files[ann["file"].as_str().unwrap()], ogg);
    let bob_row = rows
        .iter()
        .find(|r| r["participant_id"] == "web:bob")
        .unwrap();
    assert_eq!(bob_row["name"], "=1+1");
    assert_eq!(bob_row["transcript"], "hello, \"wall\"\nbye");

    let csv = csv_records(std::str::from_utf8(&files["manifest.csv"]).unwrap());
    assert_eq!(
        csv[0],
        [
            "id",
            "file",
            "participant_id",
            "name",
            "provider",
            "received_at",
            "received_at_ms",
            "duration_ms",
            "status",
            "moderation",
            "transcript",
            "content_type",
            "bytes"
        ]
    );
    assert_eq!(csv.len(), 3);
    for (record, row) in csv[1..].iter().zip(rows) {
        assert_eq!(record[0], row["id"].as_str().unwrap());
        assert_eq!(record[1], row["file"].as_str().unwrap());
        assert_eq!(record[7], row["duration_ms"].to_string());
        assert_eq!(record[12], row["bytes"].to_string());
    }
    let bob_csv = csv.iter().find(|r| r[2] == "web:bob").unwrap();
    assert_eq!(bob_csv[3], "'=1+1", "never a formula");
    assert_eq!(bob_csv[10], "hello, \"wall\"\nbye");
}

#[tokio::test]
async fn the_join_page_says_what_is_kept_for_how_long_in_both_languages() {
    let app = spawn().await;
    let info = app.get_json("/api/join/main/info").await;
    assert_eq!(info["retention_days"], 14);
    let en = info["consent"]["en"].as_str().unwrap();
    assert!(
        en.contains("14 days") && en.contains("voice") && en.contains("played"),
        "{en}"
    );
    let zh = info["consent"]["zh"].as_str().unwrap();
    assert!(zh.contains("14 天") && zh.contains("语音"), "{zh}");
    let other = app.get_json("/api/join/other/info").await;
    assert!(other["consent"]["zh"].as_str().unwrap().contains("30 天"));
    let page = get(&app, "/ui/join.html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"consent\""));
}
