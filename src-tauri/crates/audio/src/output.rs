//! Native playback with rodio: one [`Output`] per kiosk, playing one decoded message at a time.
//!
//! An `Output` owns a rodio mixer and plays each message on a fresh rodio [`Player`] connected
//! to it (so a new message starts at the next sample the sink pulls, rather than after the
//! previous player's silence padding). The mixer is drained by one of:
//! - a sound device (`default` or a named ALSA/cpal device); the cpal stream lives on its own
//!   thread, so `Output` is `Send + Sync` whatever cpal's stream type is, and that thread reopens the
//!   device after a loss (`device.rs`: the output's mixer is relayed into each stream);
//! - `null`: a thread that pulls the mixer at the real-time pace of 48 kHz stereo and throws the
//!   samples away — playback takes as long as on speakers, with no device (CI, headless kiosks);
//! - nothing ([`Output::detached`]): the caller pulls the mixer itself through a [`Tap`] (tests).
//!
//! Each message is a [`ClipSource`] over an `Arc<Decoded>` (no copy), which applies the message's
//! gain, counts the frames the sink has pulled (position, first-sample time) and fades out on
//! [`Output::stop`].
//!
//! Opening a device on a machine without a sound card makes the sound libraries write to stderr
//! themselves (alsa-lib's error handler; libjack, which ALSA's JACK plugin loads, about a server that is
//! not running). [`library_noise`] collects that chatter while a device is opened and it becomes one log
//! line.

use std::num::NonZero;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rodio::mixer::{Mixer, MixerSource};
use rodio::{Player, Source};

use crate::device::{CpalOpener, DeviceHealth, DeviceThread, Opener, REOPEN_EVERY};
use crate::Decoded;

/// Fade length for [`Output::stop`].
const STOP_FADE_MS: u32 = 150;
/// Fade length when a new message replaces one still playing.
const REPLACE_FADE_MS: u32 = 30;
/// The null sink's mixer format and pull granularity.
const NULL_RATE: u32 = 48_000;
const NULL_CHANNELS: u16 = 2;
const NULL_TICK_MS: u64 = 10;

/// Where sound goes, as written in the config file (`output = "default" | "null" | "<device>"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputKind {
    /// The system's default output device.
    Default,
    /// No device: samples are consumed in real time and discarded.
    Null,
    /// A named output device (as listed by [`list_devices`]).
    Device(String),
}

impl OutputKind {
    /// Parses the config value: `"default"` (or empty), `"null"` (or `"none"`), else a device
    /// name. Case-insensitive for the keywords; the device name is kept as written.
    pub fn from_config(s: &str) -> OutputKind {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "" | "default" => OutputKind::Default,
            "null" | "none" => OutputKind::Null,
            _ => OutputKind::Device(t.to_string()),
        }
    }
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputKind::Default => f.write_str("default"),
            OutputKind::Null => f.write_str("null"),
            OutputKind::Device(name) => f.write_str(name),
        }
    }
}

/// Why an output could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// No usable sound device: none exists, the named one is absent, or it refused to open.
    /// The kiosk logs this once and carries on without sound.
    #[error("no sound output: {0}")]
    NoDevice(String),
    /// The audio thread could not be started (out of resources).
    #[error("could not start the audio thread: {0}")]
    Thread(String),
}

/// Names of the output devices cpal can see (for the operator, and for `OutputKind::Device`).
pub fn list_devices() -> Vec<String> {
    use rodio::cpal::traits::{DeviceTrait, HostTrait};
    let quiet = library_noise::capture();
    let names = match rodio::cpal::default_host().output_devices() {
        Ok(devices) => devices
            .filter_map(|d| d.description().ok().map(|desc| desc.name().to_string()))
            .collect(),
        Err(_) => Vec::new(),
    };
    quiet.log("listing sound devices");
    names
}

/// The sound libraries' own stderr output, turned into one log line.
pub mod library_noise {
    /// Collects what alsa-lib and libjack say on this thread until [`Capture::log`].
    pub struct Capture {
        #[cfg(target_os = "linux")]
        alsa: Option<std::rc::Rc<std::cell::RefCell<alsa::Output>>>,
        #[cfg(target_os = "linux")]
        jack_before: usize,
    }

    /// Start collecting on the calling thread (alsa-lib's handler is per thread) and silence libjack.
    pub fn capture() -> Capture {
        #[cfg(target_os = "linux")]
        {
            jack::silence();
            Capture {
                alsa: alsa::Output::local_error_handler().ok(),
                jack_before: jack::count(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        Capture {}
    }

    impl Capture {
        /// The messages collected so far (ALSA's, then libjack's), one per line.
        pub fn messages(&self) -> Vec<String> {
            #[cfg(target_os = "linux")]
            {
                let mut out: Vec<String> = self
                    .alsa
                    .as_ref()
                    .map(|o| o.borrow().to_string())
                    .unwrap_or_default()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| format!("ALSA: {l}"))
                    .collect();
                out.extend(
                    jack::since(self.jack_before)
                        .into_iter()
                        .map(|l| format!("JACK: {l}")),
                );
                out
            }
            #[cfg(not(target_os = "linux"))]
            Vec::new()
        }

        /// One log line with the count and the first message (all of them at debug level).
        pub fn log(self, doing: &str) {
            let messages = self.messages();
            if let Some(first) = messages.first() {
                tracing::info!(
                    count = messages.len(),
                    first = %first,
                    "sound library messages while {doing} (RUST_LOG=debug lists them)"
                );
                tracing::debug!(messages = ?messages, "sound library messages");
            }
        }
    }

    impl Drop for Capture {
        fn drop(&mut self) {
            #[cfg(target_os = "linux")]
            if self.alsa.take().is_some() {
                // Back to alsa-lib's default handler for this thread.
                unsafe { alsa_sys::snd_lib_error_set_local(None) };
            }
        }
    }

    /// libjack prints through callbacks it lets a program replace (`jack_set_error_function`,
    /// `jack_set_info_function`). It is loaded by ALSA's JACK plugin when a device list or the default
    /// device probes the `jack` PCM; loading the same library first (dlopen shares the instance) lets us
    /// install our callbacks before it speaks. Absent libjack: nothing to do.
    #[cfg(target_os = "linux")]
    mod jack {
        use std::ffi::{c_char, CStr};
        use std::sync::{Mutex, Once};

        static INSTALL: Once = Once::new();
        static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
        const KEEP: usize = 64;

        unsafe extern "C" fn collect(msg: *const c_char) {
            if msg.is_null() {
                return;
            }
            let text = unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .into_owned();
            let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            if said.len() < KEEP {
                said.push(text);
            }
        }

        pub fn silence() {
            INSTALL.call_once(|| unsafe {
                let lib = libc::dlopen(
                    c"libjack.so.0".as_ptr(),
                    libc::RTLD_LAZY | libc::RTLD_GLOBAL,
                );
                if lib.is_null() {
                    return;
                }
                type SetFn = unsafe extern "C" fn(Option<unsafe extern "C" fn(*const c_char)>);
                for name in [c"jack_set_error_function", c"jack_set_info_function"] {
                    let f = libc::dlsym(lib, name.as_ptr());
                    if !f.is_null() {
                        let set: SetFn = std::mem::transmute::<*mut libc::c_void, SetFn>(f);
                        set(Some(collect));
                    }
                }
                // The handle stays open for the process: the callbacks live in that instance.
            });
        }

        pub fn count() -> usize {
            SAID.lock().unwrap_or_else(|e| e.into_inner()).len()
        }

        pub fn since(n: usize) -> Vec<String> {
            let said = SAID.lock().unwrap_or_else(|e| e.into_inner());
            said.get(n..).map(<[String]>::to_vec).unwrap_or_default()
        }
    }
}

/// The playback state of one message, shared between its [`ClipSource`] (audio thread) and
/// [`Playing`] handles.
#[derive(Debug)]
struct ClipState {
    total_frames: u64,
    sample_rate: u32,
    frames_pulled: AtomicU64,
    finished: AtomicBool,
    first_sample: OnceLock<Instant>,
    /// 0 = play on; otherwise fade out over this many frames, then end.
    fade_frames: AtomicU32,
}

impl ClipState {
    fn request_fade(&self, ms: u32) {
        let frames = (u64::from(self.sample_rate) * u64::from(ms) / 1000).max(1) as u32;
        // Keep the first request: a later, longer fade must not prolong an ending clip.
        let _ = self
            .fade_frames
            .compare_exchange(0, frames, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// A rodio source over a decoded message.
struct ClipSource {
    clip: Arc<Decoded>,
    gain: f32,
    pos: usize,
    channels: NonZero<u16>,
    rate: NonZero<u32>,
    state: Arc<ClipState>,
    /// (fade length, frames left) once a fade has started.
    fade: Option<(u32, u32)>,
}

impl ClipSource {
    fn finish(&mut self) -> Option<f32> {
        self.state.finished.store(true, Ordering::Release);
        self.pos = self.clip.samples.len();
        None
    }
}

impl Iterator for ClipSource {
    type Item = f32;

    fn next(&mut self) -> Option<f32> {
        let ch = usize::from(self.channels.get());
        // rodio's sample-rate converter pulls two frames when it is set up, in the thread that
        // calls `play`; the sink's first pull is the third frame.
        if self.pos == (2 * ch).min(self.clip.samples.len().saturating_sub(1)) {
            let _ = self.state.first_sample.set(Instant::now());
        }
        if self.pos >= self.clip.samples.len() {
            return self.finish();
        }
        if self.pos.is_multiple_of(ch) {
            // Frame boundary: publish the position, start or advance a fade.
            self.state
                .frames_pulled
                .store((self.pos / ch) as u64, Ordering::Release);
            match &mut self.fade {
                Some((_, 0)) => return self.finish(),
                Some((_, left)) => *left -= 1,
                None => {
                    let n = self.state.fade_frames.load(Ordering::Acquire);
                    if n > 0 {
                        self.fade = Some((n, n - 1));
                    }
                }
            }
        }
        let fade = self
            .fade
            .map_or(1.0, |(len, left)| left as f32 / len as f32);
        let s = self.clip.samples[self.pos] * self.gain * fade;
        self.pos += 1;
        if self.pos == self.clip.samples.len() {
            self.state
                .frames_pulled
                .store(self.state.total_frames, Ordering::Release);
        }
        Some(s)
    }
}

impl Source for ClipSource {
    fn current_span_len(&self) -> Option<usize> {
        None
    }
    fn channels(&self) -> NonZero<u16> {
        self.channels
    }
    fn sample_rate(&self) -> NonZero<u32> {
        self.rate
    }
    fn total_duration(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.clip.duration_ms()))
    }
}

impl Drop for ClipSource {
    fn drop(&mut self) {
        // Dropped by a cleared queue or a closed output: the clip will not play on.
        self.state.finished.store(true, Ordering::Release);
    }
}

/// A handle on one message being played. Cheap to clone; dropping it does not stop playback.
#[derive(Clone, Debug)]
pub struct Playing {
    state: Arc<ClipState>,
}

impl Playing {
    /// How far the sink has pulled, in ms (device buffering makes this lead the speakers by a
    /// few tens of ms).
    pub fn position_ms(&self) -> u64 {
        self.state.frames_pulled.load(Ordering::Acquire) * 1000
            / u64::from(self.state.sample_rate.max(1))
    }

    pub fn duration_ms(&self) -> u64 {
        self.state.total_frames * 1000 / u64::from(self.state.sample_rate.max(1))
    }

    /// True once the clip has played to its end, faded out after `stop`, or been dropped.
    pub fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::Acquire)
    }

    /// When the sink first pulled this clip (for latency measurement): the time its third
    /// frame was pulled, as rodio's rate converter reads two frames ahead when set up.
    pub fn first_sample_at(&self) -> Option<Instant> {
        self.state.first_sample.get().copied()
    }

    /// Blocks the current thread until the clip is finished or `timeout` passes; returns
    /// whether it finished. (For tests, benches and the CLI; async callers poll `is_finished`.)
    pub fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }
}

/// What keeps the samples flowing; stopped when the `Output` is dropped.
enum Backend {
    /// A sound device, on its own thread, which reopens it after a loss (`device.rs`).
    Device(DeviceThread),
    /// The real-time null sink.
    Null {
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    },
    /// The caller pulls through a [`Tap`].
    Detached,
}

/// One audio output. `Send + Sync`: share it in an `Arc`.
pub struct Output {
    mixer: Mixer,
    description: String,
    /// The player of the message playing now, with its state.
    current: Mutex<Option<(Player, Arc<ClipState>)>>,
    volume: Mutex<f32>,
    paused: AtomicBool,
    backend: Backend,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// Opens the output. For `Default`/`Device`, fails with [`OutputError::NoDevice`] when there
    /// is no usable device; `Null` always succeeds.
    pub fn open(kind: &OutputKind) -> Result<Output, OutputError> {
        match kind {
            OutputKind::Null => Self::open_null(),
            OutputKind::Default | OutputKind::Device(_) => Self::open_device(kind.clone()),
        }
    }

    /// Opens the output for a kiosk that must not stay silent for good: a device that cannot be opened
    /// now is tried again with backoff until it opens (see [`Output::health`]: `open` false and
    /// `failed_at_start` counting meanwhile; what plays then is drained in silence, in real time). Fails
    /// only when the audio thread cannot be started.
    pub fn open_retrying(kind: &OutputKind) -> Result<Output, OutputError> {
        match kind {
            OutputKind::Null => Self::open_null(),
            OutputKind::Default | OutputKind::Device(_) => Self::with_device_retrying(
                Box::new(CpalOpener {
                    kind: kind.clone(),
                    reopening: false,
                }),
                REOPEN_EVERY,
                kind.to_string(),
            ),
        }
    }

    fn with_mixer(mixer: Mixer, description: String, backend: Backend) -> Output {
        Output {
            mixer,
            description,
            current: Mutex::new(None),
            volume: Mutex::new(1.0),
            paused: AtomicBool::new(false),
            backend,
        }
    }

    /// An output with no sink: the returned [`Tap`] yields the mixed signal in the given format
    /// (clips are converted to it, as a device would), as fast as the caller pulls, and silence
    /// when nothing plays.
    pub fn detached(channels: u16, sample_rate: u32) -> (Output, Tap) {
        let (mixer, source) = rodio::mixer::mixer(
            NonZero::new(channels.max(1)).expect("non-zero"),
            NonZero::new(sample_rate.max(1)).expect("non-zero"),
        );
        let output = Self::with_mixer(
            mixer,
            format!("detached ({sample_rate} Hz, {channels} ch, pulled by the caller)"),
            Backend::Detached,
        );
        (output, Tap { source })
    }

    fn open_null() -> Result<Output, OutputError> {
        let (mixer, mut source) = rodio::mixer::mixer(
            NonZero::new(NULL_CHANNELS).expect("non-zero"),
            NonZero::new(NULL_RATE).expect("non-zero"),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("voicewall-null-sink".into())
            .spawn(move || {
                let tick_frames = u64::from(NULL_RATE) * NULL_TICK_MS / 1000;
                let start = Instant::now();
                let mut frames = 0u64;
                while !thread_stop.load(Ordering::Acquire) {
                    for _ in 0..tick_frames * u64::from(NULL_CHANNELS) {
                        // `None` = nothing to mix right now: that is silence, keep the pace.
                        let _ = source.next();
                    }
                    frames += tick_frames;
                    let due =
                        start + Duration::from_micros(frames * 1_000_000 / u64::from(NULL_RATE));
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            })
            .map_err(|e| OutputError::Thread(e.to_string()))?;
        Ok(Self::with_mixer(
            mixer,
            format!("null (no device, real time, {NULL_RATE} Hz stereo)"),
            Backend::Null {
                stop,
                thread: Some(thread),
            },
        ))
    }

    fn open_device(kind: OutputKind) -> Result<Output, OutputError> {
        Self::with_device(
            Box::new(CpalOpener {
                kind,
                reopening: false,
            }),
            REOPEN_EVERY,
        )
    }

    /// An output on a device opened by `opener` (on the device thread), tried again every
    /// `reopen_every` after a loss.
    pub(crate) fn with_device(
        opener: Box<dyn Opener>,
        reopen_every: Duration,
    ) -> Result<Output, OutputError> {
        let (thread, mixer, description) = DeviceThread::start(opener, reopen_every)?;
        Ok(Self::with_mixer(
            mixer,
            description,
            Backend::Device(thread),
        ))
    }

    /// Like [`Output::with_device`], but a device that fails to open is tried again with backoff.
    pub(crate) fn with_device_retrying(
        opener: Box<dyn Opener>,
        reopen_every: Duration,
        name: String,
    ) -> Result<Output, OutputError> {
        let (thread, mixer, description) =
            DeviceThread::start_retrying(opener, reopen_every, name)?;
        Ok(Self::with_mixer(
            mixer,
            description,
            Backend::Device(thread),
        ))
    }

    /// The sound device's state (`None` for the null and detached outputs): open or lost, and how
    /// often it was lost and reopened (an unplugged USB interface plugged back, a restarted sound
    /// server).
    pub fn health(&self) -> Option<DeviceHealth> {
        match &self.backend {
            Backend::Device(thread) => Some(thread.health()),
            _ => None,
        }
    }

    /// Master volume, 0.0..=1.0 (values above 1 amplify). Applies on top of each clip's gain,
    /// to the message playing now and to later ones.
    pub fn set_volume(&self, v: f32) {
        let v = if v.is_finite() { v.max(0.0) } else { 1.0 };
        *self.volume.lock().unwrap_or_else(|e| e.into_inner()) = v;
        if let Some((player, _)) = self.lock_current().as_ref() {
            player.set_volume(v);
        }
    }

    pub fn volume(&self) -> f32 {
        *self.volume.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<(Player, Arc<ClipState>)>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Plays a message now, with `gain` (usually [`crate::Analysis::gain`]). A message still
    /// playing is faded out quickly (30 ms) underneath. Clears a pause.
    pub fn play(&self, d: Arc<Decoded>, gain: f32) -> Playing {
        let channels = d.channels.max(1);
        let rate = d.sample_rate.max(1);
        let state = Arc::new(ClipState {
            total_frames: (d.samples.len() / usize::from(channels)) as u64,
            sample_rate: rate,
            frames_pulled: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            first_sample: OnceLock::new(),
            fade_frames: AtomicU32::new(0),
        });
        let source = ClipSource {
            clip: d,
            gain: if gain.is_finite() { gain.max(0.0) } else { 1.0 },
            pos: 0,
            channels: NonZero::new(channels).expect("non-zero"),
            rate: NonZero::new(rate).expect("non-zero"),
            state: state.clone(),
            fade: None,
        };
        // Queue the clip before the player's output joins the mixer, so the mixer's format
        // converter is set up for the clip (not for an empty queue) from the first sample.
        let (player, queue) = Player::new();
        player.set_volume(self.volume());
        player.append(source);
        self.mixer.add(queue);
        let mut current = self.lock_current();
        if let Some((previous, previous_state)) = current.take() {
            previous_state.request_fade(REPLACE_FADE_MS);
            previous.play();
            // Let it finish its fade on its own; dropping it would cut it mid-sample.
            previous.detach();
        }
        self.paused.store(false, Ordering::Release);
        *current = Some((player, state.clone()));
        Playing { state }
    }

    /// Fades the current message out over ~150 ms, then it ends. If paused, it ends at once.
    pub fn stop(&self) {
        let current = self.lock_current();
        if let Some((player, state)) = current.as_ref() {
            if self.paused.swap(false, Ordering::AcqRel) {
                // A paused clip is not being pulled, so a fade would never run: cut it.
                state.fade_frames.store(1, Ordering::Release);
                player.play();
            } else {
                state.request_fade(STOP_FADE_MS);
            }
        }
    }

    /// Holds the current message (the sink plays silence); [`Output::resume`] continues it.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
        if let Some((player, _)) = self.lock_current().as_ref() {
            player.pause();
        }
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        if let Some((player, _)) = self.lock_current().as_ref() {
            player.play();
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// A one-line description for logs and the admin page, e.g. `null (no device, ...)`.
    pub fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        match &mut self.backend {
            Backend::Device(thread) => thread.stop(),
            Backend::Null { stop, thread } => {
                stop.store(true, Ordering::Release);
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
            Backend::Detached => {}
        }
    }
}

/// Open the device's stream with `on_error` told what the sound library reports while it runs.
pub(crate) fn open_sink<E>(
    kind: &OutputKind,
    on_error: E,
) -> Result<rodio::MixerDeviceSink, OutputError>
where
    E: FnMut(rodio::cpal::Error) + Send + Clone + 'static,
{
    use rodio::cpal::traits::{DeviceTrait, HostTrait};
    use rodio::DeviceSinkBuilder;
    match kind {
        OutputKind::Device(name) => {
            let host = rodio::cpal::default_host();
            let devices = host
                .output_devices()
                .map_err(|e| OutputError::NoDevice(format!("cannot list sound devices: {e}")))?;
            let mut seen = Vec::new();
            for device in devices {
                let Ok(desc) = device.description() else {
                    continue;
                };
                if desc.name() == name {
                    return DeviceSinkBuilder::from_device(device)
                        .and_then(|b| b.with_error_callback(on_error).open_sink_or_fallback())
                        .map_err(|e| {
                            OutputError::NoDevice(format!(
                                "device \"{name}\" cannot be opened: {}",
                                chain(&e)
                            ))
                        });
                }
                seen.push(desc.name().to_string());
            }
            Err(OutputError::NoDevice(format!(
                "device \"{name}\" not found (available: {})",
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join(", ")
                }
            )))
        }
        // The default device as rodio's `open_default_sink` opens it (its default config first), with
        // our error callback; failing that, rodio's own scan of the other devices (losses are then seen
        // by the stall watchdog only).
        _ => DeviceSinkBuilder::from_default_device()
            .and_then(|b| b.with_error_callback(on_error).open_stream())
            .or_else(|_| DeviceSinkBuilder::open_default_sink())
            .map_err(|e| match e {
                rodio::DeviceSinkError::NoDevice => {
                    OutputError::NoDevice("this machine has no sound output device".into())
                }
                other => OutputError::NoDevice(format!(
                    "the default sound device cannot be opened: {}",
                    chain(&other)
                )),
            }),
    }
}

/// An error with its sources, joined by ": ".
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// The mixed sample stream of an [`Output::detached`] output: interleaved, in the format given
/// to `detached`, endless (silence when nothing plays), so pull a bounded number of samples.
pub struct Tap {
    source: MixerSource,
}

impl Tap {
    pub fn channels(&self) -> u16 {
        self.source.channels().get()
    }

    pub fn sample_rate(&self) -> u32 {
        self.source.sample_rate().get()
    }
}

impl Iterator for Tap {
    type Item = f32;
    fn next(&mut self) -> Option<f32> {
        Some(self.source.next().unwrap_or(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn output_and_playing_are_send_sync() {
        assert_send_sync::<Output>();
        assert_send_sync::<Playing>();
    }

    #[test]
    fn output_kind_parses_config_values() {
        assert_eq!(OutputKind::from_config("default"), OutputKind::Default);
        assert_eq!(OutputKind::from_config(""), OutputKind::Default);
        assert_eq!(OutputKind::from_config(" NULL "), OutputKind::Null);
        assert_eq!(OutputKind::from_config("none"), OutputKind::Null);
        assert_eq!(
            OutputKind::from_config("hw:CARD=PCH,DEV=0"),
            OutputKind::Device("hw:CARD=PCH,DEV=0".into())
        );
        assert_eq!(OutputKind::Device("x".into()).to_string(), "x");
    }
}
