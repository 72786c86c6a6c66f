//! The thin Tauri shell: parse the CLI (headless modes never touch GTK), then for the kiosk build the core
//! `Application` on the one tokio runtime, open a fullscreen undecorated window on the first wall's page
//! served by the embedded server, and wire the kiosk habits: hidden idle cursor, Ctrl+Shift+Q to quit,
//! a single instance, display sleep inhibited, SIGTERM and window close shutting down cleanly.
//! `install-autostart` / `uninstall-autostart` (the login entry) live in [`autostart`]; reloading a hung
//! or crashed view in [`heal`].

pub mod autostart;
pub mod heal;

use clap::{CommandFactory, FromArgMatches};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tauri::{Manager, RunEvent, WebviewUrl, WebviewWindowBuilder};
use voicewall_core::cli::{self, Cli, Dispatch, Simulation};
use voicewall_core::startup::{Application, Options};
use voicewall_core::Config;

/// Injected into the wall page: hides the cursor after 3 s without movement and maps Ctrl+Shift+Q to a
/// navigation the shell intercepts (no IPC surface is exposed to the page).
const KIOSK_SCRIPT: &str = r#"(function(){
  if (window.__voicewallKiosk) return; window.__voicewallKiosk = true;
  var style = document.createElement('style');
  style.textContent = 'html.vw-nocursor, html.vw-nocursor * { cursor: none !important; }';
  function attach(){ (document.head || document.documentElement).appendChild(style); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', attach); else attach();
  var timer = null;
  function moved(){
    document.documentElement.classList.remove('vw-nocursor');
    clearTimeout(timer);
    timer = setTimeout(function(){ document.documentElement.classList.add('vw-nocursor'); }, 3000);
  }
  addEventListener('mousemove', moved, {passive: true});
  moved();
  addEventListener('keydown', function(e){
    if (e.ctrlKey && e.shiftKey && (e.key === 'Q' || e.key === 'q')) { location.href = 'voicewall://quit'; }
  });
})();"#;

/// The core's command line plus the shell's own commands (they concern the desktop session).
fn command_line() -> clap::Command {
    Cli::command()
        .subcommand(clap::Command::new("install-autostart").about(
            "Start the kiosk when this user logs in to the desktop (XDG autostart entry; restarted after a failure)",
        ))
        .subcommand(
            clap::Command::new("uninstall-autostart")
                .about("Remove the login entry written by install-autostart"),
        )
}

/// Entry point of the `voicewall` binary; returns the exit code.
pub fn main_entry() -> i32 {
    voicewall_core::startup::tune_allocator();
    let matches = command_line().get_matches();
    let config_arg = matches.get_one::<PathBuf>("config").cloned();
    match matches.subcommand_name() {
        Some("install-autostart") => return install_autostart(config_arg),
        Some("uninstall-autostart") => return uninstall_autostart(),
        _ => {}
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    match cli::dispatch(cli, simulation()) {
        Dispatch::Exit(code) => code,
        Dispatch::Desktop { config, demo } => run_desktop(*config, demo),
    }
}

/// The simulated audience of `voicewall demo`: linked only with the `demo` feature.
#[cfg(feature = "demo")]
fn simulation() -> Option<Box<dyn Simulation>> {
    Some(Box::new(voicewall_sim::demo::Demo::new()))
}

#[cfg(not(feature = "demo"))]
fn simulation() -> Option<Box<dyn Simulation>> {
    None
}

/// `voicewall install-autostart [--config FILE]`: the config is checked first (a broken one would
/// restart forever at every login), then the entry points at this binary and that file.
fn install_autostart(config: Option<PathBuf>) -> i32 {
    let config = match config {
        Some(path) => {
            let path = std::path::absolute(&path).unwrap_or(path);
            if let Err(e) = Config::load(&path) {
                eprintln!("error: {e}");
                return 2;
            }
            Some(path)
        }
        None => None,
    };
    let binary = match std::env::current_exe() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot find this program's path: {e}");
            return 1;
        }
    };
    match autostart::install(&binary, config.as_deref()) {
        Ok(path) => {
            println!(
                "installed {}: the wall starts when this user logs in to the desktop, and restarts after a failure.\nFor an unattended kiosk, turn on automatic login for this user (README: \"Boot to the wall\").",
                path.display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn uninstall_autostart() -> i32 {
    match autostart::uninstall() {
        Ok(Some(path)) => {
            println!("removed {}", path.display());
            0
        }
        Ok(None) => {
            println!("no autostart entry was installed");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Why the kiosk window cannot open, said before anything else starts (no token, no log, no backtrace).
#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("no display found: start it from the desktop session, or run `voicewall serve` for the headless server")]
    Missing,
    #[error("cannot open the display {0}: start it from the desktop session, or run `voicewall serve` for the headless server")]
    Unusable(String),
}

/// Check that a window can open. Without this, GTK's initialisation fails inside Tauri's event loop
/// and the process panics with a backtrace after the server has already started.
pub fn check_display() -> Result<(), DisplayError> {
    let named = ["WAYLAND_DISPLAY", "DISPLAY"]
        .iter()
        .filter_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{k}={v}"))
        })
        .collect::<Vec<_>>();
    if named.is_empty() {
        return Err(DisplayError::Missing);
    }
    #[cfg(target_os = "linux")]
    if gtk::init().is_err() {
        return Err(DisplayError::Unusable(named.join(", ")));
    }
    Ok(())
}

/// The kiosk: one tokio runtime shared with Tauri, the core app on it, the wall window in front.
pub fn run_desktop(config: Config, demo: Option<Box<dyn Simulation>>) -> i32 {
    if let Err(e) = check_display() {
        eprintln!("error: {e}");
        return 1;
    }
    // Dropped in the Exit handler below: Tauri ends the process right after it, so a guard left to
    // the end of this function would never flush the log's last lines (how the kiosk stopped).
    let mut log_guard = Some(voicewall_core::telemetry::init(Some(
        &config.data_dir().join("logs"),
    )));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    tauri::async_runtime::set(rt.handle().clone());

    let first_wall = config.walls[0].id.clone();
    let app = match rt.block_on(Application::build_with(
        config,
        Options {
            demo: demo.is_some(),
            ..Options::default()
        },
    )) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("error: {e}");
            return 1;
        }
    };
    let local = app.local_addr();
    if let Some(simulation) = demo {
        // Its tasks run on the one runtime.
        let _entered = rt.enter();
        simulation.start(local);
    }
    // The window talks to the server on loopback whatever address it listens on; it opens a one-time
    // display link from the core (its credential), which leads on to the clean /wall/{id}.
    let wall_url = format!(
        "http://127.0.0.1:{}{}",
        local.port(),
        app.kiosk_display_path(&first_wall)
    );
    // SIGTERM/Ctrl-C handling is installed now, before the server logs "serving" (as `serve` does):
    // installed lazily in the window's setup, a SIGTERM in between killed the kiosk with the default
    // action, without the clean stop below (sled flushed, the server drained).
    let signal = {
        let _entered = rt.enter();
        voicewall_core::startup::shutdown_signal()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let stop_tx = Mutex::new(Some(stop_tx));

    let built = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            // A second launch focuses the first.
            if let Some(w) = app.get_webview_window("wall") {
                let _ = w.set_focus();
            }
        }))
        .setup(move |app| {
            let url: tauri::Url = wall_url.parse().expect("valid wall url");
            let handle = app.handle().clone();
            let heartbeat = Arc::new(heal::Heartbeat::default());
            let beats = heartbeat.clone();
            let window = WebviewWindowBuilder::new(app, "wall", WebviewUrl::External(url))
                .title("Voicewall")
                .fullscreen(true)
                .decorations(false)
                .focused(true)
                .initialization_script(KIOSK_SCRIPT)
                .initialization_script(heal::HEARTBEAT_SCRIPT)
                .on_document_title_changed(move |_, _| beats.beat())
                .on_navigation(move |url| {
                    if url.scheme() == "voicewall" {
                        tracing::info!("Ctrl+Shift+Q: quitting");
                        handle.exit(0);
                        return false;
                    }
                    true
                })
                .build()?;
            heal::attach(&window, heartbeat.clone());
            heartbeat.watch(window);
            inhibit_display_sleep();
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                signal.await;
                handle.exit(0);
            });
            tracing::info!(wall = %first_wall, "kiosk window open");
            Ok(())
        })
        .build(tauri::generate_context!());
    let tauri_app = match built {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the kiosk window (no display? use `voicewall serve`)");
            eprintln!("error: cannot open the kiosk window: {e}\nhint: without a display, run `voicewall serve`");
            return 1;
        }
    };
    // On Exit (window closed, Ctrl+Shift+Q, SIGTERM) stop the server and wait for sled to flush before
    // Tauri ends the process.
    let mut server = Some(server);
    tauri_app.run(move |_app, event| {
        if let RunEvent::Exit = event {
            if let Some(tx) = stop_tx.lock().expect("stop lock").take() {
                let _ = tx.send(());
            }
            if let Some(server) = server.take() {
                let waited = rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(10), server).await
                });
                match waited {
                    Ok(Ok(Ok(()))) => tracing::info!("kiosk stopped cleanly"),
                    Ok(Ok(Err(e))) => tracing::error!(error = %e, "server error at shutdown"),
                    _ => tracing::error!("the server did not stop in 10 s"),
                }
            }
            // Flush the log file (the writer is non-blocking) before Tauri exits the process.
            drop(log_guard.take());
        }
    });
    0
}

/// Keep the venue screen awake while the wall runs (X11 screensaver and DPMS).
fn inhibit_display_sleep() {
    if std::env::var_os("DISPLAY").is_none() {
        tracing::info!("no X display: display sleep is left to the session (Wayland: set it in the compositor)");
        return;
    }
    match std::process::Command::new("xset")
        .args(["s", "off", "s", "noblank", "-dpms"])
        .status()
    {
        Ok(s) if s.success() => tracing::info!("display sleep inhibited (xset)"),
        Ok(s) => tracing::warn!(status = %s, "xset could not inhibit display sleep"),
        Err(e) => {
            tracing::warn!(error = %e, "xset not found: display sleep not inhibited (install x11-xserver-utils)")
        }
    }
}
