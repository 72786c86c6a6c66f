//! The Telegram side of `voicewall demo` — a CLEARLY LABELLED SIMULATION: a mock Bot API
//! ([`crate::telegram`]) on a reserved loopback port, a Telegram wall pointed at it, and simulated
//! people who open the wall's deep link (`/start <wall>`), get a generated profile photo, and send voice
//! notes — over the app's real webhook, with the wall's secret header, exactly as Telegram delivers.

use crate::telegram::{FileKind, MockTelegram, MockUser};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// The demo's Telegram wall.
pub const WALL: &str = "demo-telegram";
const BOT: &str = "VoicewallDemoBot";
/// A voice note made here (espeak-ng → Opus in Ogg, see tests/fixtures/audio/README.md).
const VOICE: &[u8] = include_bytes!("../clips/hello.ogg");
const NAMES: [(&str, &str); 8] = [
    ("Ana", "Silva"),
    ("Ben", "Okafor"),
    ("Chloé", "Martin"),
    ("Dmitri", "Ivanov"),
    ("Emma", "Schulz"),
    ("Farid", "Haddad"),
    ("Greta", "Nilsson"),
    ("Hiro", "Tanaka"),
];

/// The simulated bot: its generated token and secret, and the port reserved for the mock Bot API.
pub struct TelegramDemo {
    listener: Option<TcpListener>,
    base: String,
    token: String,
    secret: String,
}

impl TelegramDemo {
    pub fn new(random: impl Fn(usize) -> String) -> Self {
        Self {
            listener: None,
            base: String::new(),
            token: format!("1000000001:{}", random(35)),
            secret: random(32),
        }
    }

    /// Reserve the mock Bot API's loopback port.
    pub fn reserve(&mut self) -> std::io::Result<()> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        self.base = format!("http://{}", l.local_addr()?);
        self.listener = Some(l);
        Ok(())
    }

    /// The `[[walls]]` TOML of the demo's Telegram wall, as a venue would write it.
    pub fn wall_toml(&self, title: &str, locale: &str) -> String {
        let base = &self.base;
        format!(
            "[[walls]]\nid = \"{WALL}\"\ntitle = \"{title} · Telegram\"\nlocale = \"{locale}\"\n[walls.telegram]\n\
             bot_token = \"{}\"\nbot_username = \"{BOT}\"\nsecret_token = \"{}\"\napi_base = \"{base}\"\n",
            self.token, self.secret
        )
    }

    /// The simulated bot and its audience against the app at `addr`, until the task is dropped.
    pub async fn run(self, addr: SocketAddr) {
        let Some(listener) = self.listener else {
            tracing::error!("demo: Telegram started before its config");
            return;
        };
        let mock = match MockTelegram::start_on(listener, &self.token, BOT) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "demo: the simulated Telegram Bot API did not start");
                return;
            }
        };
        tracing::info!(platform = %mock.base_url(), "DEMO: simulated Telegram bot and audience started");
        let webhook = format!("http://127.0.0.1:{}/webhook/telegram/{WALL}", addr.port());
        let client = reqwest::Client::new();
        let deliver = |update: serde_json::Value| {
            let client = client.clone();
            let webhook = webhook.clone();
            let secret = self.secret.clone();
            async move {
                if let Err(e) =
                    MockTelegram::deliver(&client, &webhook, Some(&secret), &update).await
                {
                    tracing::warn!(error = %e, "demo: Telegram delivery failed");
                }
            }
        };
        let mut people: Vec<MockUser> = Vec::new();
        for n in 0u64.. {
            if people.len() < NAMES.len() {
                let (first, last) = NAMES[people.len()];
                let user = MockUser::new(5_000_000_000 + n as i64, first).last(last);
                mock.add_user(&user);
                mock.set_profile_photo(user.id, avatar(people.len()));
                deliver(mock.start_update(&user, WALL)).await;
                people.push(user);
            }
            let speaker = &people[(n as usize * 5) % people.len()];
            let file = mock.add_file(FileKind::Voice, VOICE.to_vec());
            deliver(mock.voice_update(speaker, &file, 3)).await;
            let pause = if people.len() < NAMES.len() {
                900
            } else {
                4000
            };
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

/// A plain coloured square as a JPEG profile photo (Telegram's are JPEG).
fn avatar(i: usize) -> Vec<u8> {
    let hue = [
        (220u8, 80u8, 60u8),
        (60, 140, 220),
        (90, 180, 90),
        (200, 160, 40),
    ][i % 4];
    let img = image::RgbImage::from_pixel(160, 160, image::Rgb([hue.0, hue.1, hue.2]));
    let mut out = std::io::Cursor::new(Vec::new());
    let _ = image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg);
    out.into_inner()
}
