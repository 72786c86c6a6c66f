//! The real `voicewall serve` binary as a child process, for the tests that need a process boundary:
//! a crash is a SIGKILL, not a dropped runtime (sled flushes on drop, a killed process does not).
//! The child listens on port 0; the harness reads the address from its "serving (no window)" log line.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the child logs once it accepts connections (core's `cli::serve`).
const READY: &str = "serving (no window)";

/// A running `voicewall serve`.
pub struct ServeProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// `[admin] token` of its config file (empty when the file sets none).
    admin_token: String,
}

impl ServeProcess {
    /// Start `bin serve --config config_file` (the config should listen on `127.0.0.1:0`) and wait for
    /// it to say it is serving.
    pub fn start(bin: &Path, config_file: &Path) -> std::io::Result<Self> {
        let mut child = Command::new(bin)
            .args(["serve", "--config"])
            .arg(config_file)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        let lines = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if line.contains(READY) {
                    if let Some(addr) = field(&line, "addr") {
                        let _ = ready_tx.send(addr);
                    }
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let admin_token = voicewall_core::config::Config::load(config_file)
            .ok()
            .and_then(|c| c.admin.token)
            .unwrap_or_default();
        let mut process = Self {
            child,
            addr: String::new(),
            log,
            reader: Some(reader),
            admin_token,
        };
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => {
                process.addr = format!("http://{addr}");
                Ok(process)
            }
            Err(_) => {
                let _ = process.child.kill();
                let _ = process.child.wait();
                let log = process.log_lines();
                Err(std::io::Error::other(format!(
                    "voicewall serve did not start: {log:#?}"
                )))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// Its HTTP side, as the in-process `TestApp` has it.
    pub fn endpoint(&self) -> crate::app::Endpoint {
        crate::app::Endpoint::new(self.addr.clone(), &self.admin_token)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs, nothing is flushed that was not flushed already.
    pub fn kill(mut self) -> Vec<String> {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
        self.finish_log()
    }

    /// SIGTERM, then wait for the exit; returns the exit status and the whole log.
    pub fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(ok.success(), "kill -TERM failed");
        let status = self.child.wait().expect("wait");
        (status, self.finish_log())
    }

    /// The log lines so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    fn finish_log(&mut self) -> Vec<String> {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.log_lines()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A `voicewall serve` config file in `dir`: port 0, data in `dir/data`, the null output, plus
/// `extra_toml`. Returns the file's path.
pub fn write_config(dir: &Path, extra_toml: &str) -> PathBuf {
    let file = dir.join("voicewall.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\ndata_dir = {:?}\n[audio]\noutput = \"null\"\n{}{extra_toml}",
            dir.join("data").display().to_string(),
            crate::app::admin_table(extra_toml),
        ),
    )
    .expect("write config");
    file
}

/// `key=value` out of a tracing line.
fn field(line: &str, key: &str) -> Option<String> {
    let at = line.find(&format!("{key}="))? + key.len() + 1;
    Some(
        line[at..]
            .split_whitespace()
            .next()?
            .trim_matches('"')
            .to_string(),
    )
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_address_of_a_coloured_log_line() {
        let line = "\u{1b}[2m2026-12-02T15:00:00Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m serving (no window) \u{1b}[3maddr\u{1b}[0m\u{1b}[2m=\u{1b}[0m127.0.0.1:40123";
        assert_eq!(
            super::field(&super::strip_ansi(line), "addr").as_deref(),
            Some("127.0.0.1:40123")
        );
    }
}
