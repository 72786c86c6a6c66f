//! A sound device that may go away and come back (a USB interface unplugged and plugged back, a sound
//! server restarted): the thread behind [`crate::Output::open`] for `default` and named devices.
//!
//! - The output's own mixer, made in the first device's format, outlives every device stream: the thread
//!   adds a [`Relay`] of it to each stream it opens, so players are never lost with a stream.
//! - A stream is **lost** when the sound library says the device is gone (`DeviceNotAvailable`,
//!   `HostUnavailable`, `StreamInvalidated`), or when it stops pulling samples for [`STALL`] (a sound
//!   server that dropped the stream without an error). Underruns are not losses: cpal recovers them
//!   itself, and counting them as losses is what made the first attempt at this reopen a stream again and
//!   again on a PulseAudio default device, so that `voicewall play` never finished.
//! - While lost, the thread pulls the mixer at real time and throws the samples away, as the null sink
//!   does: a message playing then ends on time and nothing waits for a device that may never return. It
//!   tries to open the device again every `reopen_every`; once it opens, the relay joins the new stream
//!   and sound continues from where the mixer is. [`DeviceHealth`] says so (`/healthz`).
//!
//! - A device that cannot be opened at start (no sound server yet at boot, a USB interface plugged in
//!   later) is tried again with a growing wait ([`backoff`]: `reopen_every`, doubled up to
//!   [`MAX_BACKOFF`]) when the output is opened with [`DeviceThread::start_retrying`]; meanwhile the
//!   output's mixer (in [`FALLBACK_CHANNELS`]/[`FALLBACK_RATE`]) is drained in real time as while lost,
//!   and [`DeviceHealth`] says it is unavailable (`open` false, `lost` 0, `failed_at_start` counting).
//!
//! Opening is behind [`Opener`]: cpal through rodio in the product ([`CpalOpener`]), a fake whose
//! samples the test pulls in the unit tests below.

use std::num::NonZero;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rodio::mixer::{Mixer, MixerSource};
use rodio::Source;

use crate::output::{library_noise, open_sink, OutputError, OutputKind};

/// A stream that pulls nothing for this long is lost (it pulls every few ms while it runs).
pub const STALL: Duration = Duration::from_secs(2);
/// How often a lost device is tried again.
pub const REOPEN_EVERY: Duration = Duration::from_secs(2);
/// How often the thread looks at the pull count while the stream runs.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// The longest wait between two tries of a device that has never opened.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The output's mixer format when the device could not be opened at start (streams opened later are
/// fed through rodio's conversion).
pub const FALLBACK_CHANNELS: u16 = 2;
pub const FALLBACK_RATE: u32 = 48_000;
/// Pull granularity while lost.
const DRAIN_TICK: Duration = Duration::from_millis(10);

/// Whether the sound device is there, for `/healthz`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceHealth {
    /// A stream is open and pulling.
    pub open: bool,
    /// Losses since the output was opened.
    pub lost: u32,
    /// Reopens after a loss since the output was opened.
    pub reopened: u32,
    /// The last loss, or why the last reopen failed.
    pub last_error: Option<String>,
    /// Failed opens before the first stream (0: it opened at once; still counting while never open).
    pub failed_at_start: u32,
}

/// How long to wait before the next try of a device that has never opened, after `failures` failed
/// tries: `first`, doubled each time, at most [`MAX_BACKOFF`].
pub fn backoff(first: Duration, failures: u32) -> Duration {
    let doubled = first.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF.max(first))
}

/// What the sound library reported on a running stream.
#[derive(Clone, Debug)]
pub struct StreamError {
    /// The device is gone (not an underrun or another glitch the library recovers from).
    pub loss: bool,
    pub message: String,
}

/// Called from the device's own thread with what the sound library reports.
pub type OnError = Arc<dyn Fn(StreamError) + Send + Sync>;

/// Something held for as long as the stream plays (the cpal stream).
pub trait Held {}
impl<T> Held for T {}

/// An opened device stream.
pub struct Stream {
    /// The stream's own mixer, which the device drains.
    pub mixer: Mixer,
    pub channels: NonZero<u16>,
    pub rate: NonZero<u32>,
    pub description: String,
    /// Dropped to close the stream.
    pub _held: Box<dyn Held>,
}

/// Opens the device, on the device thread (first at start, then after each loss).
pub trait Opener: Send + 'static {
    fn open(&mut self, on_error: OnError) -> Result<Stream, OutputError>;
}

/// The real device, through rodio and cpal.
pub struct CpalOpener {
    pub kind: OutputKind,
    /// Set after the first open: later attempts keep the libraries' chatter at debug level.
    pub reopening: bool,
}

impl Opener for CpalOpener {
    fn open(&mut self, on_error: OnError) -> Result<Stream, OutputError> {
        let quiet = library_noise::capture();
        let callback = move |e: rodio::cpal::Error| {
            on_error(StreamError {
                loss: is_loss(e.kind()),
                message: e.to_string(),
            })
        };
        let opened = open_sink(&self.kind, callback);
        if self.reopening {
            tracing::debug!(messages = ?quiet.messages(), "sound library messages while reopening");
        } else {
            quiet.log("opening the sound output");
        }
        self.reopening = true;
        let mut sink = opened?;
        sink.log_on_drop(false);
        let config = sink.config();
        Ok(Stream {
            mixer: sink.mixer().clone(),
            channels: config.channel_count(),
            rate: config.sample_rate(),
            description: format!(
                "{} ({} Hz, {} ch)",
                self.kind,
                config.sample_rate(),
                config.channel_count()
            ),
            _held: Box::new(sink),
        })
    }
}

/// Which errors of a running stream mean the device is gone.
pub fn is_loss(kind: rodio::cpal::ErrorKind) -> bool {
    use rodio::cpal::ErrorKind as K;
    matches!(
        kind,
        K::DeviceNotAvailable | K::HostUnavailable | K::StreamInvalidated
    )
}

/// Decides from the relay's pull count whether a running stream has stalled.
#[derive(Debug)]
pub struct Watchdog {
    count: u64,
    since: Instant,
    stall: Duration,
}

impl Watchdog {
    pub fn new(now: Instant, stall: Duration) -> Self {
        Self {
            count: 0,
            since: now,
            stall,
        }
    }

    /// Observe the pull count at `now`: true once it has not moved for the stall time.
    pub fn stalled(&mut self, count: u64, now: Instant) -> bool {
        if count != self.count {
            self.count = count;
            self.since = now;
            return false;
        }
        now.saturating_duration_since(self.since) >= self.stall
    }
}

/// The output's mixer as a source of a device stream's mixer. Never ends (silence when nothing
/// plays), or the device's mixer would drop it; counts what it gives for the [`Watchdog`]. Takes the
/// output's mixer in chunks of [`RELAY_CHUNK`] samples: one lock per chunk, not per sample (the audio
/// thread of a debug build on a loaded machine has little time to spare).
struct Relay {
    source: Arc<Mutex<MixerSource>>,
    pulled: Arc<AtomicU64>,
    channels: NonZero<u16>,
    rate: NonZero<u32>,
    chunk: Vec<f32>,
    pos: usize,
}

/// Samples the relay takes at a time: a multiple of 1 and 2 channels (frames stay aligned); 2.7 ms of
/// 48 kHz stereo.
const RELAY_CHUNK: usize = 256;

impl Relay {
    fn new(source: Arc<Mutex<MixerSource>>, pulled: Arc<AtomicU64>) -> Self {
        let (channels, rate) = {
            let s = source.lock().unwrap_or_else(|e| e.into_inner());
            (s.channels(), s.sample_rate())
        };
        Self {
            source,
            pulled,
            channels,
            rate,
            chunk: Vec::with_capacity(RELAY_CHUNK),
            pos: 0,
        }
    }
}

impl Iterator for Relay {
    type Item = f32;
    fn next(&mut self) -> Option<f32> {
        if self.pos == self.chunk.len() {
            self.chunk.clear();
            let mut source = self.source.lock().unwrap_or_else(|e| e.into_inner());
            self.chunk
                .extend((0..RELAY_CHUNK).map(|_| source.next().unwrap_or(0.0)));
            drop(source);
            self.pos = 0;
            self.pulled.fetch_add(RELAY_CHUNK as u64, Ordering::Relaxed);
        }
        let s = self.chunk[self.pos];
        self.pos += 1;
        Some(s)
    }
}

impl Source for Relay {
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
        None
    }
}

enum Event {
    Stop,
    Lost { generation: u64, error: String },
}

/// The running device thread; [`DeviceThread::stop`] ends it (the `Output` does on drop).
pub struct DeviceThread {
    events: mpsc::Sender<Event>,
    thread: Option<JoinHandle<()>>,
    health: Arc<Mutex<DeviceHealth>>,
}

impl DeviceThread {
    /// Open the device on a new thread; returns once the first open succeeded (with the output's mixer
    /// and a description) or failed (no reopening then: the caller carries on without sound).
    pub fn start(
        opener: Box<dyn Opener>,
        reopen_every: Duration,
    ) -> Result<(DeviceThread, Mixer, String), OutputError> {
        Self::spawn(opener, reopen_every, None)
    }

    /// Like [`DeviceThread::start`], but a device that fails to open is tried again with [`backoff`]
    /// until it opens (the kiosk: the sound server may come up after it). Fails only when the thread
    /// cannot be started; `name` describes the output until its first stream.
    pub fn start_retrying(
        opener: Box<dyn Opener>,
        reopen_every: Duration,
        name: String,
    ) -> Result<(DeviceThread, Mixer, String), OutputError> {
        Self::spawn(opener, reopen_every, Some(name))
    }

    fn spawn(
        opener: Box<dyn Opener>,
        reopen_every: Duration,
        retry_as: Option<String>,
    ) -> Result<(DeviceThread, Mixer, String), OutputError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (events_tx, events_rx) = mpsc::channel();
        let health = Arc::new(Mutex::new(DeviceHealth {
            open: false,
            lost: 0,
            reopened: 0,
            last_error: None,
            failed_at_start: 0,
        }));
        let run = Run {
            opener,
            reopen_every,
            events_tx: events_tx.clone(),
            events: events_rx,
            health: health.clone(),
            generation: 0,
        };
        let thread = std::thread::Builder::new()
            .name("voicewall-audio-out".into())
            .spawn(move || run.run(ready_tx, retry_as))
            .map_err(|e| OutputError::Thread(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok((mixer, description))) => Ok((
                DeviceThread {
                    events: events_tx,
                    thread: Some(thread),
                    health,
                },
                mixer,
                description,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(OutputError::NoDevice(
                    "the audio thread stopped while opening the device".into(),
                ))
            }
        }
    }

    pub fn health(&self) -> DeviceHealth {
        self.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// End the thread (closing the stream) and wait for it.
    pub fn stop(&mut self) {
        let _ = self.events.send(Event::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DeviceThread {
    fn drop(&mut self) {
        self.stop();
    }
}

type Ready = mpsc::Sender<Result<(Mixer, String), OutputError>>;

struct Run {
    opener: Box<dyn Opener>,
    reopen_every: Duration,
    events_tx: mpsc::Sender<Event>,
    events: mpsc::Receiver<Event>,
    health: Arc<Mutex<DeviceHealth>>,
    generation: u64,
}

impl Run {
    fn set(&self, f: impl FnOnce(&mut DeviceHealth)) {
        f(&mut self.health.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn open(&mut self) -> Result<(Stream, u64), OutputError> {
        self.generation += 1;
        let generation = self.generation;
        let tx = Mutex::new(self.events_tx.clone());
        let on_error: OnError = Arc::new(move |e: StreamError| {
            if e.loss {
                let _ = tx
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .send(Event::Lost {
                        generation,
                        error: e.message,
                    });
            } else {
                tracing::debug!(error = %e.message, "sound stream glitch (recovered by the library)");
            }
        });
        self.opener.open(on_error).map(|s| (s, generation))
    }

    fn run(mut self, ready: Ready, retry_as: Option<String>) {
        let (mut current, mixer, source, description) = match self.open() {
            Ok((stream, generation)) => {
                // The output's own mixer, in the first stream's format (no conversion in the relay).
                let (mixer, source) = rodio::mixer::mixer(stream.channels, stream.rate);
                let description = stream.description.clone();
                (Some((stream, generation)), mixer, source, description)
            }
            Err(e) => {
                let Some(name) = retry_as else {
                    let _ = ready.send(Err(e));
                    return;
                };
                tracing::warn!(error = %e, "sound device unavailable at start: playing on in silence and trying it again (every {} s at first, then less often)", self.reopen_every.as_secs_f32());
                self.set(|h| {
                    h.failed_at_start = 1;
                    h.last_error = Some(e.to_string());
                });
                let (mixer, source) = rodio::mixer::mixer(
                    NonZero::new(FALLBACK_CHANNELS).expect("non-zero"),
                    NonZero::new(FALLBACK_RATE).expect("non-zero"),
                );
                (None, mixer, source, name)
            }
        };
        let source = Arc::new(Mutex::new(source));
        let _ = ready.send(Ok((mixer, description)));
        let mut opened_once = current.is_some();
        loop {
            let Some((stream, generation)) = current.take() else {
                // Lost (or never opened): drain in real time and try again until the device opens or
                // the output ends.
                match self.drain_until_reopened(&source, !opened_once) {
                    Some(opened) => {
                        let first = !opened_once;
                        opened_once = true;
                        self.set(|h| {
                            if !first {
                                h.reopened += 1;
                            }
                            h.open = true;
                        });
                        if first {
                            tracing::info!(output = %opened.0.description, "sound device opened: playback is heard from now on");
                        } else {
                            tracing::info!(output = %opened.0.description, "sound device back: playback continues");
                        }
                        current = Some(opened);
                        continue;
                    }
                    None => return,
                }
            };
            match self.play(stream, generation, &source) {
                Some(error) => {
                    tracing::warn!(error = %error, "sound device lost: playing on in silence and reopening it every {} s", self.reopen_every.as_secs_f32());
                    self.set(|h| {
                        h.open = false;
                        h.lost += 1;
                        h.last_error = Some(error);
                    });
                }
                None => return,
            }
        }
    }

    /// Relay the mixer into the stream until it is lost (its error) or the output ends (`None`).
    fn play(
        &self,
        stream: Stream,
        generation: u64,
        source: &Arc<Mutex<MixerSource>>,
    ) -> Option<String> {
        let pulled = Arc::new(AtomicU64::new(0));
        stream.mixer.add(Relay::new(source.clone(), pulled.clone()));
        self.set(|h| h.open = true);
        let mut watchdog = Watchdog::new(Instant::now(), STALL);
        let lost = loop {
            match self.events.recv_timeout(WATCH_EVERY) {
                Ok(Event::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break None,
                Ok(Event::Lost {
                    generation: g,
                    error,
                }) if g == generation => break Some(error),
                Ok(Event::Lost { .. }) => continue, // a late word from an older stream
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if watchdog.stalled(pulled.load(Ordering::Relaxed), Instant::now()) {
                        break Some(format!(
                            "the stream pulled no sound for {} s",
                            STALL.as_secs_f32()
                        ));
                    }
                }
            }
        };
        drop(stream);
        lost
    }

    /// Pull the mixer at real time (samples discarded) and try to open the device every
    /// `reopen_every` (with [`backoff`] while it has `never_opened`); the opened stream, or `None` when
    /// the output ends first.
    fn drain_until_reopened(
        &mut self,
        source: &Arc<Mutex<MixerSource>>,
        never_opened: bool,
    ) -> Option<(Stream, u64)> {
        let (channels, rate) = {
            let s = source.lock().unwrap_or_else(|e| e.into_inner());
            (
                u64::from(s.channels().get()),
                u64::from(s.sample_rate().get()),
            )
        };
        let per_tick = rate * channels * DRAIN_TICK.as_micros() as u64 / 1_000_000;
        loop {
            let wait = if never_opened {
                let failures = self
                    .health
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed_at_start;
                backoff(self.reopen_every, failures)
            } else {
                self.reopen_every
            };
            let next_try = Instant::now() + wait;
            let mut start = Instant::now();
            let mut ticks = 0u32;
            while Instant::now() < next_try {
                {
                    let mut s = source.lock().unwrap_or_else(|e| e.into_inner());
                    for _ in 0..per_tick {
                        let _ = s.next();
                    }
                }
                ticks += 1;
                let due = start + DRAIN_TICK * ticks;
                match self
                    .events
                    .recv_timeout(due.saturating_duration_since(Instant::now()))
                {
                    Ok(Event::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                    Ok(Event::Lost { .. }) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                }
                if ticks >= 1000 {
                    // Restart the pacing now and then, so a stall of this thread is not caught up.
                    start = Instant::now();
                    ticks = 0;
                }
            }
            match self.open() {
                Ok(opened) => return Some(opened),
                Err(e) => {
                    tracing::debug!(error = %e, "sound device still absent");
                    self.set(|h| {
                        h.last_error = Some(e.to_string());
                        if never_opened {
                            h.failed_at_start += 1;
                        }
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Decoded, Format, Output};
    use std::sync::atomic::AtomicBool;

    const RATE: u32 = 8_000;

    #[test]
    fn the_watchdog_fires_only_after_a_stall() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0, STALL);
        assert!(!w.stalled(0, t0 + STALL / 2));
        assert!(!w.stalled(10, t0 + STALL), "pulling: not stalled");
        assert!(!w.stalled(10, t0 + STALL + STALL / 2));
        assert!(w.stalled(10, t0 + 2 * STALL), "no pull for STALL");
        assert!(!w.stalled(11, t0 + 3 * STALL), "pulling again");
    }

    #[test]
    fn only_a_gone_device_is_a_loss() {
        use rodio::cpal::ErrorKind as K;
        assert!(is_loss(K::DeviceNotAvailable) && is_loss(K::StreamInvalidated));
        assert!(
            !is_loss(K::Xrun),
            "an underrun is recovered by cpal, not a loss"
        );
        assert!(!is_loss(K::RealtimeDenied));
    }

    /// A device the test plugs and unplugs: each open hands the stream's mixer source and error
    /// callback to the test, which pulls the samples as the sound card would.
    struct FakeDevice {
        plugged: Arc<AtomicBool>,
        opened: mpsc::Sender<(MixerSource, OnError)>,
    }

    impl Opener for FakeDevice {
        fn open(&mut self, on_error: OnError) -> Result<Stream, OutputError> {
            if !self.plugged.load(Ordering::SeqCst) {
                return Err(OutputError::NoDevice("unplugged".into()));
            }
            let (mixer, source) = rodio::mixer::mixer(
                NonZero::new(1).expect("1"),
                NonZero::new(RATE).expect("rate"),
            );
            let _ = self.opened.send((source, on_error));
            Ok(Stream {
                mixer,
                channels: NonZero::new(1).expect("1"),
                rate: NonZero::new(RATE).expect("rate"),
                description: "fake".into(),
                _held: Box::new(()),
            })
        }
    }

    fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn loud(n: usize) -> Decoded {
        Decoded {
            format: Format::Wav,
            sample_rate: RATE,
            channels: 1,
            samples: vec![0.5; n],
        }
    }

    fn pull(source: &mut MixerSource, n: usize) -> Vec<f32> {
        (0..n).map(|_| source.next().unwrap_or(0.0)).collect()
    }

    #[test]
    fn a_lost_device_is_reopened_and_playback_goes_on() {
        let plugged = Arc::new(AtomicBool::new(true));
        let (opened_tx, opened) = mpsc::channel();
        let device = FakeDevice {
            plugged: plugged.clone(),
            opened: opened_tx,
        };
        let output = Output::with_device(Box::new(device), Duration::from_millis(20))
            .expect("the fake device opens");
        let (mut first, on_error) = opened.recv().expect("first stream");
        // A clip long enough to outlast the test's loss (the thread drains it in real time meanwhile).
        let playing = output.play(Arc::new(loud(RATE as usize * 600)), 1.0);
        wait_for("the first stream plays the clip", || {
            pull(&mut first, 64).iter().any(|s| (s - 0.5).abs() < 1e-3)
        });
        assert_eq!(output.health().map(|h| (h.open, h.lost)), Some((true, 0)));

        // Unplug: the device is gone and says so; the next opens fail until it is back.
        plugged.store(false, Ordering::SeqCst);
        on_error(StreamError {
            loss: false,
            message: "underrun".into(),
        });
        on_error(StreamError {
            loss: true,
            message: "The requested audio device is not available.".into(),
        });
        wait_for("the loss is seen", || {
            output.health().is_some_and(|h| !h.open && h.lost == 1)
        });
        let h = output.health().expect("a device output");
        assert_eq!(h.reopened, 0);
        assert!(h.last_error.unwrap().contains("not available"));
        assert!(
            !playing.is_finished(),
            "the clip goes on while the device is away"
        );

        // Plug it back: a new stream opens by itself and the same clip sounds in it.
        plugged.store(true, Ordering::SeqCst);
        let (mut second, _) = opened
            .recv_timeout(Duration::from_secs(20))
            .expect("reopened without a restart");
        wait_for("the reopen is counted", || {
            output.health().is_some_and(|h| h.open && h.reopened == 1)
        });
        assert!(
            pull(&mut second, 256)
                .iter()
                .all(|s| (s - 0.5).abs() < 1e-3),
            "the clip continues on the new stream"
        );
        // A new message plays there too.
        output.stop();
        wait_for("the old clip ended", || {
            pull(&mut second, 64);
            playing.is_finished()
        });
        let next = output.play(Arc::new(loud(RATE as usize)), 0.5);
        wait_for("the next clip sounds on the new stream", || {
            pull(&mut second, 64)
                .iter()
                .any(|s| (s - 0.25).abs() < 1e-3)
        });
        drop(second);
        drop(first);
        drop(output);
        assert!(next.is_finished(), "closing the output ends its clips");
    }

    /// A device that counts the tries to open it (a sound server still starting: unplugged at first).
    struct CountedDevice {
        tries: Arc<AtomicU64>,
        device: FakeDevice,
    }

    impl Opener for CountedDevice {
        fn open(&mut self, on_error: OnError) -> Result<Stream, OutputError> {
            self.tries.fetch_add(1, Ordering::SeqCst);
            self.device.open(on_error)
        }
    }

    #[test]
    fn the_wait_between_tries_of_a_device_never_opened_doubles_up_to_a_cap() {
        let s = Duration::from_secs;
        let waits: Vec<Duration> = (1..=7).map(|n| backoff(s(2), n)).collect();
        assert_eq!(waits, [s(2), s(4), s(8), s(16), s(30), s(30), s(30)]);
        assert_eq!(backoff(s(2), u32::MAX), MAX_BACKOFF);
        assert_eq!(
            backoff(Duration::from_millis(5), 1),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn a_device_that_fails_at_start_is_retried_until_it_opens() {
        let (opened_tx, opened) = mpsc::channel();
        let plugged = Arc::new(AtomicBool::new(false));
        let tries = Arc::new(AtomicU64::new(0));
        let device = |tries: &Arc<AtomicU64>, opened| CountedDevice {
            tries: tries.clone(),
            device: FakeDevice {
                plugged: plugged.clone(),
                opened,
            },
        };
        // Without retrying, the first failure is the answer (`voicewall play`).
        let once = Arc::new(AtomicU64::new(0));
        let e = Output::with_device(Box::new(device(&once, mpsc::channel().0)), Duration::ZERO)
            .expect_err("no device, no output");
        assert!(e.to_string().contains("unplugged"), "{e}");
        assert_eq!(once.load(Ordering::SeqCst), 1);

        let output = Output::with_device_retrying(
            Box::new(device(&tries, opened_tx)),
            Duration::from_millis(1),
            "fake".into(),
        )
        .expect("an output even without a device");
        let h = output.health().expect("a device output");
        assert!(!h.open && h.lost == 0 && h.failed_at_start >= 1, "{h:?}");
        assert!(h.last_error.unwrap().contains("unplugged"));
        // A clip started while the device is unavailable goes on, and is heard once it opens.
        let playing = output.play(Arc::new(loud(RATE as usize * 600)), 1.0);
        wait_for("three failed tries", || tries.load(Ordering::SeqCst) >= 3);
        plugged.store(true, Ordering::SeqCst);
        let (mut stream, _) = opened
            .recv_timeout(Duration::from_secs(60))
            .expect("opened without a restart");
        wait_for("the open is seen", || {
            output.health().is_some_and(|h| h.open)
        });
        let h = output.health().expect("a device output");
        assert_eq!(
            (h.failed_at_start as u64, h.lost, h.reopened),
            (tries.load(Ordering::SeqCst) - 1, 0, 0),
            "every try but the last failed; nothing was lost or reopened: {h:?}"
        );
        assert!(h.failed_at_start >= 3, "{h:?}");
        wait_for("the clip sounds on the late stream", || {
            pull(&mut stream, 64).iter().any(|s| (s - 0.5).abs() < 1e-3)
        });
        assert!(!playing.is_finished());
        drop(stream);
        drop(output);
        assert!(playing.is_finished(), "closing the output ends its clips");
    }

    #[test]
    fn a_stream_that_stops_pulling_is_lost_too() {
        let plugged = Arc::new(AtomicBool::new(true));
        let (opened_tx, opened) = mpsc::channel();
        let device = FakeDevice {
            plugged,
            opened: opened_tx,
        };
        let output =
            Output::with_device(Box::new(device), Duration::from_millis(20)).expect("opens");
        let (mut first, _) = opened.recv().expect("first stream");
        let _ = pull(&mut first, 64);
        // The test stops pulling (a sound server that dropped the stream without a word).
        wait_for(
            "the stall is seen as a loss and the device reopened",
            || {
                output
                    .health()
                    .is_some_and(|h| h.lost >= 1 && h.reopened >= 1)
            },
        );
        let (mut second, _) = opened.recv().expect("second stream");
        let playing = output.play(Arc::new(loud(64)), 1.0);
        wait_for("the new stream plays", || {
            pull(&mut second, 64).iter().any(|s| (s - 0.5).abs() < 1e-3)
        });
        drop((first, second));
        drop(output);
        assert!(playing.is_finished(), "closing the output ends its clips");
    }
}
