//! The command line. Parsed before anything else: `serve`, `check-config`, `probe`, `play`, `purge` and
//! `export` never touch GTK; only the desktop mode (no subcommand, or `demo` without `--headless`) starts the Tauri shell.

use crate::config::{self, Config};
use crate::startup::{Application, Options};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "voicewall",
    version,
    about = "Voicewall: a fullscreen wall of the audience's avatars that plays their voice messages",
    long_about = "Voicewall: a fullscreen wall of the audience's avatars that plays their voice messages.\n\nWith no subcommand it opens the kiosk window on the first configured wall. With no config file it writes a commented default one and starts with the built-in web join page."
)]
pub struct Cli {
    /// Config file (default: the OS config dir's voicewall/voicewall.toml, created if missing).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server, store and audio with no window (for a browser-driven display or a server box).
    Serve,
    /// Validate a config file; exits non-zero naming the key and line at fault.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// The simulated audience: a mock WeChat platform on loopback that follows, joins and speaks.
    Demo {
        /// No window: serve the demo wall for a browser.
        #[arg(long)]
        headless: bool,
    },
    /// Print each file's container, codec, sample rate, channels, duration and loudness.
    Probe {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Play a file through the configured output (the venue's sound check).
    Play { file: PathBuf },
    /// Delete a wall's people, voices, the profiles only it uses, and its media, entirely (the kiosk
    /// must be stopped; while it runs, use the console).
    Purge {
        /// The wall's id.
        #[arg(long)]
        wall: String,
    },
    /// Write a wall's approved voices with manifest.json and manifest.csv to a zip file (the kiosk must
    /// be stopped; while it runs, use the console).
    Export {
        /// The wall's id.
        #[arg(long)]
        wall: String,
        /// The zip file to write.
        #[arg(long, value_name = "FILE.zip")]
        out: PathBuf,
    },
}

/// The simulated platform and audience behind `voicewall demo`. Core knows no simulator: the shell
/// supplies one when it is built with its `demo` feature (the `voicewall-sim` crate).
pub trait Simulation: Send {
    /// The demo's config (the given file, or the built-in one, with the simulated walls). Called before
    /// any runtime exists.
    fn config(&mut self, file: Option<&Path>) -> Result<Config, config::ConfigError>;
    /// Start the simulated platform and audience against the app at `app`, as tasks on the current
    /// tokio runtime (the app's one runtime).
    fn start(self: Box<Self>, app: SocketAddr);
}

/// What `main` should do after parsing.
pub enum Dispatch {
    /// Open the kiosk window around an application built from this config (with the simulated audience
    /// of `voicewall demo` when `demo` is set).
    Desktop {
        config: Box<Config>,
        demo: Option<Box<dyn Simulation>>,
    },
    /// Done: exit with this code.
    Exit(i32),
}

/// Load the config the CLI points at (creating the default file when none was given and none exists),
/// with every wall's provider section checked, as `check-config` does.
pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => config::load_or_create(&config::default_config_path())?,
    };
    check_providers(&config)?;
    Ok(config)
}

/// Each wall's provider checks its own section.
fn check_providers(config: &Config) -> Result<(), crate::provider::ProviderError> {
    crate::providers::check_all(&config.provider_sections())
}

/// Run every headless command to completion; return `Desktop` for the window modes. `simulation` is the
/// demo's simulated audience, when this build has one.
pub fn dispatch(cli: Cli, simulation: Option<Box<dyn Simulation>>) -> Dispatch {
    match &cli.command {
        Some(Command::CheckConfig { file }) => match check_config(file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} wall{}: {})",
                    file.display(),
                    c.walls.len(),
                    if c.walls.len() == 1 { "" } else { "s" },
                    c.walls
                        .iter()
                        .map(|w| w.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                Dispatch::Exit(0)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Dispatch::Exit(2)
            }
        },
        Some(Command::Probe { files }) => Dispatch::Exit(probe(files)),
        Some(Command::Play { file }) => {
            let config = match load_config(&cli) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            Dispatch::Exit(play(file, &config))
        }
        Some(Command::Purge { wall }) => match load_config(&cli) {
            Ok(config) => Dispatch::Exit(report(purge(&config, wall))),
            Err(e) => fail(e),
        },
        Some(Command::Export { wall, out }) => match load_config(&cli) {
            Ok(config) => Dispatch::Exit(report(export(&config, wall, out))),
            Err(e) => fail(e),
        },
        Some(Command::Serve) => {
            let config = match load_config(&cli) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            Dispatch::Exit(serve(config, None))
        }
        Some(Command::Demo { headless }) => {
            let Some(mut simulation) = simulation else {
                return fail(
                    "this build has no demo (build the voicewall crate with `--features demo`, as scripts/run.sh does)",
                );
            };
            let config = match simulation.config(cli.config.as_deref()) {
                Ok(c) => c,
                Err(e) => return fail(e),
            };
            if *headless {
                Dispatch::Exit(serve(config, Some(simulation)))
            } else {
                Dispatch::Desktop {
                    config: Box::new(config),
                    demo: Some(simulation),
                }
            }
        }
        None => match load_config(&cli) {
            Ok(config) => Dispatch::Desktop {
                config: Box::new(config),
                demo: None,
            },
            Err(e) => fail(e),
        },
    }
}

/// Load a config file and validate every wall's provider section, exactly as `serve` would.
fn check_config(file: &std::path::Path) -> anyhow::Result<Config> {
    let config = Config::load(file)?;
    check_providers(&config)?;
    Ok(config)
}

fn fail(e: impl std::fmt::Display) -> Dispatch {
    eprintln!("error: {e}");
    Dispatch::Exit(2)
}

/// `voicewall serve` (and `demo --headless`, with its simulation): the whole app with no window, until
/// Ctrl-C or SIGTERM.
pub fn serve(config: Config, simulation: Option<Box<dyn Simulation>>) -> i32 {
    let _guard = crate::telemetry::init(Some(&config.data_dir().join("logs")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let app = match Application::build_with(
            config,
            Options {
                demo: simulation.is_some(),
                ..Options::default()
            },
        )
        .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("error: {e}");
                return 1;
            }
        };
        if let Some(simulation) = simulation {
            simulation.start(app.local_addr());
        }
        // The handlers are installed before "serving" is said: a supervisor (or a test) that sends
        // SIGTERM as soon as it reads the line must get a clean stop, not the default kill.
        let stop = crate::startup::shutdown_signal();
        tracing::info!(addr = %app.local_addr(), "serving (no window)");
        match app.run_until_stopped(stop).await {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "server failed");
                1
            }
        }
    })
}

/// Print a command's outcome; its exit code.
fn report(outcome: anyhow::Result<String>) -> i32 {
    match outcome {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// The store of a stopped kiosk, for the offline commands, and a configured wall's id.
fn open_offline(config: &Config, wall: &str) -> anyhow::Result<crate::store::Store> {
    if config.wall(wall).is_none() {
        anyhow::bail!(
            "no wall {wall:?} in the config (walls: {})",
            config
                .walls
                .iter()
                .map(|w| w.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let dir = config.data_dir();
    crate::store::Store::open(&dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the store in {} (is voicewall running on it? stop it, or use the console): {e}",
            dir.display()
        )
    })
}

/// `voicewall purge --wall ID`.
fn purge(config: &Config, wall: &str) -> anyhow::Result<String> {
    let store = open_offline(config, wall)?;
    let eraser = crate::privacy::erase::Eraser::new(
        store.clone(),
        crate::media::Media::new(store.clone(), config.audio.max_duration_s),
        crate::events::Hub::new(config.walls.iter().map(|w| w.id.as_str())),
        &config.walls,
    );
    let erased = eraser.purge(wall)?;
    crate::audit::Audit::new(store.clone(), crate::clock::Clock::system()).record(
        "cli",
        "wall.purge",
        Some(wall),
        None,
        &erased.detail(),
    )?;
    store.flush()?;
    Ok(format!(
        "purged wall {wall}: {} messages, {} participants, {} profiles, {} media files, {} pending pushes deleted",
        erased.messages, erased.participants, erased.profiles, erased.media, erased.pending
    ))
}

/// `voicewall export --wall ID --out FILE.zip`: written beside the target, renamed when complete.
fn export(config: &Config, wall: &str, out: &Path) -> anyhow::Result<String> {
    let store = open_offline(config, wall)?;
    let mut part = out.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let file = std::fs::File::create(&part)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", part.display()))?;
    let clock = crate::clock::Clock::system();
    let now = clock.now_ms();
    crate::audit::Audit::new(store.clone(), clock).record(
        "cli",
        "wall.export",
        Some(wall),
        None,
        "",
    )?;
    store.flush()?;
    let written =
        crate::privacy::export::write_archive(&store, wall, now, std::io::BufWriter::new(file));
    let done = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.into());
        }
    };
    std::fs::rename(&part, out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    Ok(format!(
        "exported wall {wall}: {} voice messages ({} bytes of audio) to {}",
        done.messages,
        done.audio_bytes,
        out.display()
    ))
}

fn probe(files: &[PathBuf]) -> i32 {
    let mut code = 0;
    for f in files {
        match std::fs::read(f) {
            Ok(bytes) => match voicewall_audio::probe_report(&bytes) {
                Ok(line) => println!("{}: {line}", f.display()),
                Err(e) => {
                    println!("{}: error: {e}", f.display());
                    code = 1;
                }
            },
            Err(e) => {
                println!("{}: error: {e}", f.display());
                code = 1;
            }
        }
    }
    code
}

fn play(file: &std::path::Path, config: &Config) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return 1;
        }
    };
    let decoded = match voicewall_audio::decode(&bytes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return 1;
        }
    };
    let analysis = voicewall_audio::analyse(&decoded);
    let kind = voicewall_audio::OutputKind::from_config(&config.audio.output);
    let output = match voicewall_audio::Output::open(&kind) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: no sound output: {e}");
            return 1;
        }
    };
    output.set_volume(config.audio.volume);
    println!(
        "playing {} ({:.2} s) on {}",
        file.display(),
        analysis.duration_ms as f64 / 1000.0,
        output.describe()
    );
    let playing = output.play(std::sync::Arc::new(decoded), analysis.gain);
    while !playing.is_finished() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    println!("done");
    0
}
