//! `voicewall demo` — a CLEARLY LABELLED SIMULATION. No real WeChat account is involved: a mock WeChat
//! platform (`crate::wechat`, a simulator of someone else's platform) runs on a loopback port, the demo
//! wall "demo" is a WeChat wall pointed at it, and a simulated audience follows the account, opens the
//! OAuth join page (getting a generated name and avatar from the mock) and sends voice messages — over
//! the app's real webhook, signed and encrypted exactly as the platform does. The wall shows "DEMO".
//!
//! It talks to the app only over HTTP, and runs as tasks on the app's one tokio runtime: no second
//! runtime, no global state (the reserved port travels in the `Demo` value from `config` to `start`).

use crate::wechat::{self, MockWechat, PushMode, Pusher};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use voicewall_core::cli::Simulation;
use voicewall_core::config::{Config, ConfigError};

/// Committed voice clips (espeak-ng → AMR-NB 8 kHz, as WeChat delivers voice), with what they say
/// (sent as WeChat's `Recognition`).
const CLIPS: [(&[u8], &str); 6] = [
    (
        include_bytes!("../clips/clip1.amr"),
        "Hello from the back row!",
    ),
    (include_bytes!("../clips/clip2.amr"), "大家好"),
    (
        include_bytes!("../clips/clip3.amr"),
        "This conference is amazing.",
    ),
    (include_bytes!("../clips/clip4.amr"), "我们爱这个活动"),
    (
        include_bytes!("../clips/clip5.amr"),
        "Can you hear me? Testing one two three.",
    ),
    (include_bytes!("../clips/clip6.amr"), "你好嗎"),
];

const WALL: &str = "demo";
const APP_ID: &str = "wxd0000000de000000";
const ORIGINAL_ID: &str = "gh_de0000000000";

/// The simulated platform and audience of `voicewall demo`: the account's generated credentials and,
/// once `config` has run, the loopback port reserved for the mock WeChat platform. `config` is called
/// before the tokio runtime exists (the CLI builds the config first); `start` runs everything on the
/// app's one runtime.
pub struct Demo {
    listener: Option<std::net::TcpListener>,
    telegram: crate::telegram_demo::TelegramDemo,
    secret: String,
    token: String,
    aes_key: String,
}

impl Default for Demo {
    fn default() -> Self {
        Self::new()
    }
}

impl Demo {
    pub fn new() -> Self {
        Self {
            listener: None,
            telegram: crate::telegram_demo::TelegramDemo::new(random_alnum),
            secret: random_alnum(32),
            token: random_alnum(16),
            aes_key: random_alnum(43),
        }
    }

    /// The simulated platform and audience against the app at `addr`, until the task is dropped.
    pub async fn run(mut self, addr: SocketAddr) {
        let telegram = std::mem::replace(
            &mut self.telegram,
            crate::telegram_demo::TelegramDemo::new(random_alnum),
        );
        tokio::spawn(telegram.run(addr));
        audience(self, addr).await
    }
}

impl Simulation for Demo {
    fn config(&mut self, file: Option<&Path>) -> Result<Config, ConfigError> {
        let reserve = || -> std::io::Result<(std::net::TcpListener, SocketAddr)> {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = l.local_addr()?;
            Ok((l, addr))
        };
        let (listener, platform) = reserve().map_err(|e| ConfigError::Invalid {
            key: "demo".into(),
            message: format!(
                "cannot reserve a loopback port for the simulated WeChat platform: {e}"
            ),
            line: None,
        })?;
        self.listener = Some(listener);
        self.telegram.reserve().map_err(|e| ConfigError::Invalid {
            key: "demo".into(),
            message: format!(
                "cannot reserve a loopback port for the simulated Telegram Bot API: {e}"
            ),
            line: None,
        })?;
        demo_config(self, &format!("http://{platform}"), file)
    }

    fn start(self: Box<Self>, app: SocketAddr) {
        tokio::spawn((*self).run(app));
    }
}

fn random_alnum(n: usize) -> String {
    use rand::Rng;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| A[rng.gen_range(0..A.len())] as char)
        .collect()
}

/// The demo's config: the given file (or the built-in one) for server, storage and audio, with a data
/// dir of its own and a single WeChat wall "demo" whose platform is the simulator on the reserved port.
fn demo_config(demo: &Demo, base: &str, path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut c = match path {
        Some(p) => Config::load(p)?,
        None => Config::builtin(),
    };
    if c.storage.data_dir.is_none() {
        c.storage.data_dir = Some(voicewall_core::config::default_data_dir().join("demo"));
    }
    let locale = c
        .walls
        .first()
        .map(|w| w.locale.clone())
        .unwrap_or_else(|| "zh-CN".into());
    let title = if locale == "en" {
        "Voicewall demo (simulated audience)"
    } else {
        "Voicewall 演示（模拟观众）"
    };
    // The wall is written as the TOML a venue would write, so it goes through the same validation.
    let wall = format!(
        "[[walls]]\nid = \"{WALL}\"\ntitle = \"{title}\"\nlocale = \"{locale}\"\n[walls.wechat]\n\
         app_id = \"{APP_ID}\"\napp_secret = \"{}\"\ntoken = \"{}\"\nencoding_aes_key = \"{}\"\n\
         original_id = \"{ORIGINAL_ID}\"\napi_base = \"{base}\"\noauth_base = \"{base}\"\n",
        demo.secret, demo.token, demo.aes_key
    );
    let telegram = demo.telegram.wall_toml(title, &locale);
    let walls = Config::from_toml(&format!("{wall}{telegram}"), Path::new("demo wall"))?;
    c.walls = walls.walls;
    c.validate(None)?;
    Ok(c)
}

struct Person {
    openid: String,
}

async fn audience(demo: Demo, addr: SocketAddr) {
    let Some(listener) = demo.listener else {
        tracing::error!("demo started before its config: no simulated platform");
        return;
    };
    let mock = match MockWechat::start_on(listener, APP_ID, &demo.secret) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "demo: the simulated WeChat platform did not start");
            return;
        }
    };
    tracing::info!(platform = %mock.base_url(), "DEMO: simulated WeChat platform and audience started");
    let app = format!("http://127.0.0.1:{}", addr.port());
    let webhook = format!("{app}/webhook/wechat/{WALL}");
    let pusher = Pusher::new(&demo.token, Some(&demo.aes_key), APP_ID, ORIGINAL_ID);
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "demo: no HTTP client");
            return;
        }
    };
    let run_id = random_alnum(6);
    let mut people: Vec<Person> = Vec::new();
    let mut n: u64 = 0;
    loop {
        n += 1;
        let grow = people.len() < 12 || (people.len() < 40 && n & 3 == 0);
        if grow {
            let openid = format!("oDemo{run_id}{n:04}{}", random_alnum(12));
            // Follow through the wall's parametric QR, then open the join page.
            let now = voicewall_core::domain::now_ms() / 1000;
            let xml = wechat::subscribe_xml(ORIGINAL_ID, &openid, now, Some(WALL));
            if let Err(e) = pusher
                .deliver(&client, &webhook, &xml, PushMode::Safe)
                .await
            {
                tracing::warn!(error = %e, "demo: follow push failed");
            }
            let client2 = client.clone();
            let app2 = app.clone();
            let openid2 = openid.clone();
            tokio::spawn(async move {
                if let Err(e) = oauth_join(&client2, &app2, &openid2).await {
                    tracing::warn!(error = %e, "demo: OAuth join failed");
                }
            });
            people.push(Person { openid });
        }
        // Someone speaks: a newcomer right after joining, otherwise anyone.
        let speaker = if grow {
            people.len() - 1
        } else {
            rand::random::<usize>() % people.len()
        };
        let (clip, said) = CLIPS[(n as usize * 7 + speaker) % CLIPS.len()];
        let media_id = format!("demo_{run_id}_{n}_{}", random_alnum(24));
        mock.add_media(&media_id, clip.to_vec(), "audio/amr");
        let msg_id = 7_000_000_000_000_000_000u64 + rand::random::<u32>() as u64 * 1000 + n % 1000;
        let pusher2 = pusher.clone();
        let client2 = client.clone();
        let webhook2 = webhook.clone();
        let openid = people[speaker].openid.clone();
        tokio::spawn(async move {
            // A moment to hold the button and speak.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = voicewall_core::domain::now_ms() / 1000;
            let xml = wechat::voice_xml(ORIGINAL_ID, &openid, now, &media_id, msg_id, said);
            if let Err(e) = pusher2
                .deliver(&client2, &webhook2, &xml, PushMode::Safe)
                .await
            {
                tracing::warn!(error = %e, "demo: voice push failed");
            }
        });
        let pause = if people.len() < 12 { 700 } else { 3000 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// The phone's side of the join page: the kiosk's redirect → the platform's consent (auto-approved by
/// the mock for this person) → the kiosk's OAuth callback.
async fn oauth_join(client: &reqwest::Client, app: &str, openid: &str) -> anyhow::Result<()> {
    // The kiosk's join page redirects a WeChat wall to the consent page.
    let page = client.get(format!("{app}/join/{WALL}")).send().await?;
    let authorize = page
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("join page did not redirect ({})", page.status()))?
        .to_string();
    let consent = client
        .get(&authorize)
        .header(wechat::OPENID_HEADER, openid)
        .send()
        .await?;
    let callback = consent
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("consent did not redirect"))?
        .to_string();
    // The callback is on the kiosk's public URL; the simulated phone reaches it on loopback.
    let path = callback
        .find("/join/")
        .map(|i| callback[i..].to_string())
        .ok_or_else(|| anyhow::anyhow!("unexpected callback {callback}"))?;
    let page = client.get(format!("{app}{path}")).send().await?;
    anyhow::ensure!(
        page.status().is_success(),
        "join callback answered {}",
        page.status()
    );
    Ok(())
}
