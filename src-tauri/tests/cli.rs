//! The `voicewall` binary's command line, for real: help, version, check-config, probe (the decoded
//! facts), `serve` answering /healthz then stopping cleanly on SIGTERM, and `demo` in a build without
//! the simulator.

use std::process::Command;
use voicewall_testkit::serve::write_config;
use voicewall_testkit::ServeProcess;

const BIN: &str = env!("CARGO_BIN_EXE_voicewall");

fn fixture(name: &str) -> String {
    format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn help_and_version() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for cmd in ["serve", "check-config", "demo", "probe", "play", "--config"] {
        assert!(help.contains(cmd), "--help lacks {cmd}: {help}");
    }
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("voicewall {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_names_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[[walls]]\nid = \"main\"\ntitle = \"Gala\"\n[walls.web]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (1 wall: main)"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"0.0.0.0:8787\"\n\n[audio]\nvolume = 7\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audio.volume") && err.contains("line 5"),
        "{err}"
    );

    let out = Command::new(BIN)
        .arg("check-config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}

/// `key=value` fields of one probe line (`FILE: container=… codec=… …`).
fn probe_fields(line: &str) -> std::collections::HashMap<String, String> {
    let (_, facts) = line.split_once(": ").expect("FILE: facts");
    facts
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn probe_reports_decoded_facts_and_fails_on_non_audio() {
    let out = Command::new(BIN)
        .args([
            "probe",
            &fixture("audio/hello.amr"),
            &fixture("audio/hello.ogg"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    // The clip is 2.998 s of speech (tests/fixtures/audio/README.md), mono.
    for (line, container, codec, rate) in [
        (lines[0], "amr", "amr-nb", "8000"),
        (lines[1], "ogg", "opus", "48000"),
    ] {
        let f = probe_fields(line);
        assert_eq!(f["container"], container, "{line}");
        assert_eq!(f["codec"], codec, "{line}");
        assert_eq!(f["sample_rate"], rate, "{line}");
        assert_eq!(f["channels"], "1", "{line}");
        let duration: f64 = f["duration"].parse().unwrap();
        assert!((2.9..=3.1).contains(&duration), "{line}");
        // Decoded speech, not silence: a real peak and a loudness well above the silence floor.
        let peak: f64 = f["peak"].parse().unwrap();
        assert!(peak > 0.1, "{line}");
        let lufs: f64 = f["loudness"].parse().unwrap();
        assert!((-40.0..-5.0).contains(&lufs), "{line}");
    }

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("song.mp3");
    std::fs::write(&fake, "this is not audio at all").unwrap();
    let out = Command::new(BIN).arg("probe").arg(&fake).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let (_, verdict) = text.trim().split_once(": ").unwrap();
    assert!(verdict.starts_with("error"), "{text}");
}

#[test]
fn serve_answers_then_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let process = ServeProcess::start(std::path::Path::new(BIN), &cfg).unwrap();
    let body = http_get(&process.url("/healthz")).unwrap();
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (status, log) = process.terminate();
    assert!(status.success(), "exit: {status}");
    assert!(
        log.iter().any(|l| l.contains("stopped cleanly")),
        "no clean stop in the log: {log:#?}"
    );
    assert!(
        dir.path()
            .join("data/logs")
            .read_dir()
            .unwrap()
            .next()
            .is_some(),
        "a log file is written"
    );
}

#[test]
fn the_kiosk_without_a_display_says_what_to_do_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("v.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("RUST_LOG", "info")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no display found") && err.contains("voicewall serve"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("admin_token"),
        "the answer comes before anything starts: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn autostart_entry_is_installed_for_the_user_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(&home).unwrap();
    let good = dir.path().join("wall.toml");
    std::fs::write(&good, "[[walls]]\nid = \"main\"\n[walls.web]\n").unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[audio]\nvolume = 9\n").unwrap();
    let run = |args: &[&str], xdg_home: Option<&std::path::Path>| {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME");
        if let Some(x) = xdg_home {
            c.env("XDG_CONFIG_HOME", x);
        }
        c.output().unwrap()
    };

    // A config that would fail at every login is refused, naming the key; nothing is written.
    let out = run(
        &["install-autostart", "--config", bad.to_str().unwrap()],
        Some(&xdg),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("audio.volume"));
    assert!(!xdg.join("autostart/voicewall.desktop").exists());

    let out = run(
        &["install-autostart", "--config", good.to_str().unwrap()],
        Some(&xdg),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = std::fs::read_to_string(xdg.join("autostart/voicewall.desktop")).unwrap();
    let exec = entry.lines().find(|l| l.starts_with("Exec=")).unwrap();
    assert!(
        exec.contains(&format!("'{BIN}' --config '{}'", good.display())) && exec.contains("until "),
        "{exec}"
    );
    assert!(entry.contains("Type=Application") && entry.contains("X-GNOME-Autostart-enabled=true"));

    let out = run(&["uninstall-autostart"], Some(&xdg));
    assert!(out.status.success());
    assert!(!xdg.join("autostart/voicewall.desktop").exists());
    let out = run(&["uninstall-autostart"], Some(&xdg));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no autostart entry"));

    // Without XDG_CONFIG_HOME the entry goes under $HOME/.config.
    let out = run(&["install-autostart"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(home.join(".config/autostart/voicewall.desktop").exists());
}

#[test]
fn sound_libraries_do_not_write_to_stderr_when_opening_the_output() {
    // On a machine without a sound card (CI), alsa-lib and libjack (loaded by ALSA's jack plugin while
    // devices are probed) used to print ~20 lines of their own; on a machine with one they print nothing.
    // Either way none of their raw lines may reach stderr.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("v.toml");
    std::fs::write(&cfg, "[audio]\noutput = \"default\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("play")
        .arg(fixture("audio/hello.ogg"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    for noise in [
        "ALSA lib",
        "jack server",
        "Cannot connect to server",
        "JackShm",
    ] {
        assert!(!err.contains(noise), "raw library output on stderr: {err}");
    }
}

#[cfg(not(feature = "demo"))]
#[test]
fn demo_says_so_when_the_build_has_no_simulator() {
    let out = Command::new(BIN)
        .args(["demo", "--headless"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features demo"), "{err}");
}

/// A tiny blocking HTTP GET over a real socket (keeps the test free of an HTTP client runtime).
fn http_get(url: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host)?;
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    if !out.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(out));
    }
    Ok(out)
}

fn bare_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("v.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\n{extra}",
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn a_generated_admin_token_is_printed_once_to_the_terminal_and_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = bare_config(dir.path(), "");
    let first = ServeProcess::start(std::path::Path::new(BIN), &cfg).unwrap();
    let (status, lines) = first.terminate();
    assert!(status.success(), "{status:?}: {lines:#?}");
    let at = lines
        .iter()
        .position(|l| l.contains("the operator's admin token"))
        .unwrap_or_else(|| panic!("the token is printed on the first run: {lines:#?}"));
    let token = lines[at + 1].trim().to_string();
    assert_eq!(token.len(), 24, "{lines:#?}");
    let logged: String = std::fs::read_dir(dir.path().join("data/logs"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .collect();
    assert!(!logged.is_empty(), "a log file is written");
    assert!(!logged.contains(&token), "the token is in the log file");
    let second = ServeProcess::start(std::path::Path::new(BIN), &cfg).unwrap();
    let (_, lines) = second.terminate();
    assert!(
        !lines.iter().any(|l| l.contains(&token)),
        "printed once only: {lines:#?}"
    );
}

#[test]
fn an_empty_admin_token_is_refused_at_start_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = bare_config(dir.path(), "[admin]\ntoken = \"\"\n");
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("[admin] token"), "{err}");
}

/// A stopped kiosk's store with two walls that share one voice: main (ann, two voices) and other (cat).
fn seed_two_walls(data: &std::path::Path) -> (String, String) {
    use voicewall_core::domain::{Message, Participant};
    let store = voicewall_core::store::Store::open(data).unwrap();
    let amr = std::fs::read(fixture("audio/hello.amr")).unwrap();
    let ogg = std::fs::read(fixture("audio/hello.ogg")).unwrap();
    let amr_key = store.put_media(&amr, "audio/amr").unwrap().to_string();
    let shared_key = store.put_media(&ogg, "audio/ogg").unwrap().to_string();
    let picture = store.put_media(b"svg", "image/svg+xml").unwrap();
    // From JSON, as the store keeps it: fields added later take their defaults.
    let voice = |id: &str, who: &str, key: &str| -> Message {
        serde_json::from_value(serde_json::json!({
            "id": id, "participant_id": who, "kind": "voice", "status": "ready", "error": null,
            "duration_ms": 1200, "received_at": 1_796_238_364_000u64, "played_count": 0,
            "transcript": "hi, all", "media_url": format!("/media/{key}"),
        }))
        .unwrap()
    };
    for (wall, who, name) in [("main", "web:ann", "Ann"), ("other", "web:cat", "Cat")] {
        store
            .put_participant(
                wall,
                &Participant {
                    id: who.into(),
                    person_id: who.into(),
                    display_name: name.into(),
                    avatar: picture.clone(),
                    thumb: None,
                    provider: voicewall_core::providers::web::PROVIDER,
                    joined_at: 1,
                    has_profile: true,
                },
            )
            .unwrap();
    }
    store
        .put_message("main", &voice("10", "web:ann", &amr_key))
        .unwrap();
    store
        .put_message("main", &voice("11", "web:ann", &shared_key))
        .unwrap();
    store
        .put_message("other", &voice("12", "web:cat", &shared_key))
        .unwrap();
    store.flush().unwrap();
    (amr_key, shared_key)
}

#[test]
fn purge_and_export_work_on_a_stopped_kiosk_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "[[walls]]\nid = \"main\"\n[walls.web]\n[[walls]]\nid = \"other\"\n[walls.web]\n",
    );
    let data = dir.path().join("data");
    let (amr_key, shared_key) = seed_two_walls(&data);

    // Export other: its one voice, byte for byte, with both manifests.
    let zip_path = dir.path().join("other.zip");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["export", "--wall", "other", "--out"])
        .arg(&zip_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("exported wall other: 1 voice messages"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let read = |zip: &mut zip::ZipArchive<std::fs::File>, name: &str| {
        let mut f = zip.by_name(name).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut v).unwrap();
        v
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&read(&mut zip, "manifest.json")).unwrap();
    let row = &manifest["messages"][0];
    assert_eq!(
        (
            row["id"].as_str(),
            row["name"].as_str(),
            row["transcript"].as_str()
        ),
        (Some("12"), Some("Cat"), Some("hi, all"))
    );
    assert_eq!(row["received_at"], "2026-12-02T19:06:04Z");
    let audio = read(&mut zip, row["file"].as_str().unwrap());
    assert_eq!(audio, std::fs::read(fixture("audio/hello.ogg")).unwrap());
    let csv = String::from_utf8(read(&mut zip, "manifest.csv")).unwrap();
    assert!(
        csv.lines().nth(1).unwrap().contains(",\"hi, all\","),
        "{csv}"
    );
    assert_eq!(zip.len(), 3);

    // Purge main: ann and her voices go; the voice other shares and the picture cat shows stay.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["purge", "--wall", "main"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("purged wall main: 2 messages, 1 participants"),
        "{said}"
    );
    let store = voicewall_core::store::Store::open(&data).unwrap();
    assert!(store.messages("main").unwrap().is_empty());
    assert!(store.participants("main").unwrap().is_empty());
    assert!(store.media(&amr_key).unwrap().is_none());
    assert!(store.media(&shared_key).unwrap().is_some());
    assert_eq!(store.messages("other").unwrap().len(), 1);
    assert_eq!(store.participants("other").unwrap().len(), 1);
    drop(store);

    // A wall the config does not have is refused, naming the walls it has.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["purge", "--wall", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no wall \"nope\"") && err.contains("main, other"),
        "{err}"
    );
}
