//! `voicewall demo` — a CLEARLY LABELLED SIMULATION. No real WeChat account is involved: a mock WeChat
//! platform (`mock_wechat`, a simulator of someone else's platform) runs on a loopback port, the demo
//! wall "demo" is a WeChat wall pointed at it, and a simulated audience follows the account, opens the
//! OAuth join page (getting a generated name and avatar from the mock) and sends voice messages — over
//! the app's real webhook, signed and encrypted exactly as the platform does. The wall shows "DEMO".

use crate::app::AppState;
use crate::config::{Config, ConfigError, WallConfig, WechatConfig};
use crate::mock_wechat::{self, MockWechat, PushMode, Pusher};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Committed voice clips (espeak-ng → AMR-NB 8 kHz, as WeChat delivers voice), with what they say
/// (sent as WeChat's `Recognition`).
const CLIPS: [(&[u8], &str); 6] = [
    (
        include_bytes!("../demo/clip1.amr"),
        "Hello from the back row!",
    ),
    (include_bytes!("../demo/clip2.amr"), "大家好"),
    (
        include_bytes!("../demo/clip3.amr"),
        "This conference is amazing.",
    ),
    (include_bytes!("../demo/clip4.amr"), "我们爱这个活动"),
    (
        include_bytes!("../demo/clip5.amr"),
        "Can you hear me? Testing one two three.",
    ),
    (include_bytes!("../demo/clip6.amr"), "你好嗎"),
];

const WALL: &str = "demo";
const APP_ID: &str = "wxd0000000de000000";
const ORIGINAL_ID: &str = "gh_de0000000000";

/// The mock platform's port and the account's credentials, reserved by `demo_config` and used by
/// `start` (the two are separate calls of the CLI, and the runtime exists only between them).
struct Reserved {
    listener: std::net::TcpListener,
    secret: String,
    token: String,
    aes_key: String,
}

static RESERVED: Mutex<Option<Reserved>> = Mutex::new(None);

fn random_alnum(n: usize) -> String {
    use rand::Rng;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| A[rng.gen_range(0..A.len())] as char)
        .collect()
}

/// The demo's config: the given file (or the built-in one) for server, storage and audio, with a data
/// dir of its own and a single WeChat wall "demo" whose platform is the mock on a reserved loopback port.
pub fn demo_config(path: Option<&Path>) -> Result<Config, ConfigError> {
    let mut c = match path {
        Some(p) => Config::load(p)?,
        None => Config::builtin(),
    };
    if c.storage.data_dir.is_none() {
        c.storage.data_dir = Some(crate::config::default_data_dir().join("demo"));
    }
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| ConfigError::Invalid {
            key: "demo".into(),
            message: format!(
                "cannot reserve a loopback port for the simulated WeChat platform: {e}"
            ),
            line: None,
        })?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| ConfigError::Invalid {
            key: "demo".into(),
            message: e.to_string(),
            line: None,
        })?
    );
    let reserved = Reserved {
        listener,
        secret: random_alnum(32),
        token: random_alnum(16),
        aes_key: random_alnum(43),
    };
    let locale = c
        .walls
        .first()
        .map(|w| w.locale.clone())
        .unwrap_or_else(|| "zh-CN".into());
    c.walls = vec![WallConfig {
        id: WALL.into(),
        title: if locale == "en" {
            "Voicewall demo (simulated audience)".into()
        } else {
            "Voicewall 演示（模拟观众）".into()
        },
        locale,
        theme: Default::default(),
        web: None,
        wechat: Some(WechatConfig {
            app_id: APP_ID.into(),
            app_secret: reserved.secret.clone(),
            token: reserved.token.clone(),
            encoding_aes_key: Some(reserved.aes_key.clone()),
            original_id: ORIGINAL_ID.into(),
            api_base: base.clone(),
            oauth_base: base,
            welcome: None,
        }),
        telegram: None,
    }];
    c.validate(None)?;
    *RESERVED.lock().expect("demo lock") = Some(reserved);
    Ok(c)
}

/// Start the mock platform and the simulated audience against the running app at `addr`. Runs on a
/// thread of its own (with its own small runtime), so it works whether or not the caller is inside one.
pub fn start(state: AppState, addr: SocketAddr) {
    let Some(reserved) = RESERVED.lock().expect("demo lock").take() else {
        tracing::error!("demo::start without demo_config: no simulated platform");
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("demo-audience".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "demo: no runtime");
                    return;
                }
            };
            rt.block_on(audience(state, addr, reserved));
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "demo: cannot start the simulated audience");
    }
}

struct Person {
    openid: String,
}

async fn audience(state: AppState, addr: SocketAddr, reserved: Reserved) {
    let mock = match MockWechat::start_on(reserved.listener, APP_ID, &reserved.secret) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "demo: the simulated WeChat platform did not start");
            return;
        }
    };
    tracing::info!(platform = %mock.base_url(), "DEMO: simulated WeChat platform and audience started");
    let app = format!("http://127.0.0.1:{}", addr.port());
    let webhook = format!("{app}/webhook/wechat/{WALL}");
    let pusher = Pusher::new(
        &reserved.token,
        Some(&reserved.aes_key),
        APP_ID,
        ORIGINAL_ID,
    );
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
            let now = crate::domain::now_ms() / 1000;
            let xml = mock_wechat::subscribe_xml(ORIGINAL_ID, &openid, now, Some(WALL));
            if let Err(e) = pusher
                .deliver(&client, &webhook, &xml, PushMode::Safe)
                .await
            {
                tracing::warn!(error = %e, "demo: follow push failed");
            }
            let state2 = state.clone();
            let client2 = client.clone();
            let app2 = app.clone();
            let openid2 = openid.clone();
            tokio::spawn(async move {
                if let Err(e) = oauth_join(&state2, &client2, &app2, &openid2).await {
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
            let now = crate::domain::now_ms() / 1000;
            let xml = mock_wechat::voice_xml(ORIGINAL_ID, &openid, now, &media_id, msg_id, said);
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
async fn oauth_join(
    state: &AppState,
    client: &reqwest::Client,
    app: &str,
    openid: &str,
) -> anyhow::Result<()> {
    // The kiosk's join page redirects a WeChat wall to the consent page; ask it in-process if the page
    // answers otherwise.
    let page = client.get(format!("{app}/join/{WALL}")).send().await?;
    let location = |h: &reqwest::header::HeaderMap| {
        h.get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authorize = match location(page.headers()) {
        Some(url) => url,
        None => {
            let wall = state
                .wall(WALL)
                .ok_or_else(|| anyhow::anyhow!("no demo wall"))?;
            let redirect = wall.provider.join(Default::default()).await;
            location(redirect.headers())
                .ok_or_else(|| anyhow::anyhow!("join page did not redirect"))?
        }
    };
    let consent = client
        .get(&authorize)
        .header(mock_wechat::OPENID_HEADER, openid)
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
