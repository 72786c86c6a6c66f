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
    assert!(status.success());
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
