//! The WeChat OAuth join end to end through the mock platform, redirects followed by hand: the kiosk's
//! redirect → the platform's consent → the kiosk's callback → participant with the platform's name and
//! avatar (bytes cached under /media/).

mod common;

use common::*;
use voicewall_sim::wechat::{self, MockWechat, PushMode, OPENID_HEADER};

/// What `GET /join/{wall}` answers, asked of the wall's provider in-process (through the provider
/// interface, as the server's join route does).
async fn join_redirect(app: &TestApp, wall: &str) -> axum::response::Response {
    let provider = app.state.wall(wall).unwrap().provider.clone();
    provider.join(Default::default()).await
}

fn location(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_string()
}

/// The phone: the kiosk's join page (GET /join/{wall} redirects a WeChat wall to the consent page) →
/// the platform's consent (auto-approved for `openid`) → the kiosk's callback.
async fn oauth(app: &TestApp, openid: &str) -> (reqwest::StatusCode, String) {
    let redirect = app
        .client
        .get(app.url(&format!("/join/{WALL}")))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), 302);
    let authorize = location(redirect.headers());
    assert_eq!(
        join_redirect(app, WALL).await.status(),
        302,
        "the same, in-process"
    );
    let consent = app
        .client
        .get(&authorize)
        .header(OPENID_HEADER, openid)
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 302);
    let callback = location(consent.headers());
    assert!(
        callback.starts_with(&format!("{}/join/{WALL}/oauth?code=", app.addr)),
        "{callback}"
    );
    let page = app.client.get(&callback).send().await.unwrap();
    (page.status(), page.text().await.unwrap())
}

#[tokio::test]
async fn oauth_join_gives_the_participant_the_platform_name_and_avatar() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let app = spawn_app_in(dir.path(), &mock).await;

    // The consent URL is WeChat's, byte for byte in its parameters.
    let redirect = join_redirect(&app, WALL).await;
    let url = reqwest::Url::parse(&location(redirect.headers())).unwrap();
    assert_eq!(url.path(), "/connect/oauth2/authorize");
    assert_eq!(url.fragment(), Some("wechat_redirect"));
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["appid"], APP_ID);
    assert_eq!(q["redirect_uri"], format!("{}/join/{WALL}/oauth", app.addr));
    assert_eq!(
        (q["response_type"].as_str(), q["scope"].as_str()),
        ("code", "snsapi_userinfo")
    );
    assert!(q["state"].chars().all(|c| c.is_ascii_alphanumeric()) && q["state"].len() <= 128);
    assert!(
        url.as_str().contains("redirect_uri=http%3A%2F%2F127.0.0.1"),
        "urlencoded redirect_uri"
    );

    // A new person (never followed): becomes a participant with the mock's profile.
    mock.add_user("oOauthNew", "小红 Xiaohong", Some("oUnion42"));
    let (status, page) = oauth(&app, "oOauthNew").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("You&#39;re in!") && page.contains("小红 Xiaohong"),
        "{page}"
    );
    let wall = app
        .wait_wall(10, |w| {
            participant(w, "oOauthNew").is_some_and(|p| p["has_profile"] == true)
        })
        .await;
    let p = participant(&wall, "oOauthNew").unwrap();
    assert_eq!(p["display_name"], "小红 Xiaohong");
    assert_eq!(p["person_id"], "wechat:union:oUnion42");
    let avatar = p["avatar_url"].as_str().unwrap();
    assert!(avatar.starts_with("/media/"));
    // The platform's avatar, cached at the wall's sizes (WeChat's is 132 px): 256 px and a 64 px
    // thumbnail.
    for (url, side) in [(avatar, 256), (p["thumb_url"].as_str().unwrap(), 64)] {
        let (ct, bytes) = app.get_bytes(url).await;
        assert_eq!(ct, "image/jpeg", "{url}");
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!((img.width(), img.height()), (side, side), "{url}");
    }
    assert_eq!(mock.count("/mmopen/oOauthNew/132"), 1);

    // Someone who followed first (placeholder), then joins: updated in place; their voice too.
    mock.add_media("m-oauth", hello_amr(), "audio/amr");
    let sub = wechat::subscribe_xml(ORIGINAL_ID, "oFollower", now_s(), Some(WALL));
    assert_eq!(app.push(&sub, PushMode::Safe).await.status(), 200);
    app.wait_wall(10, |w| participant(w, "oFollower").is_some())
        .await;
    let (status, _) = oauth(&app, "oFollower").await;
    assert_eq!(status, 200);
    let expected = mock.user("oFollower").unwrap().nickname;
    let wall = app
        .wait_wall(10, |w| {
            participant(w, "oFollower").is_some_and(|p| p["display_name"] == expected.as_str())
        })
        .await;
    assert_eq!(wall["participants"].as_array().unwrap().len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn oauth_failures_show_a_friendly_page_with_a_retry_link() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let app = spawn_app_in(dir.path(), &mock).await;
    let retry = format!("{}/join/{WALL}", app.addr);

    // Forged state.
    let r = app
        .client
        .get(app.url(&format!("/join/{WALL}/oauth?code=abc&state=1Zdead")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("<html") && page.contains(&retry) && page.contains("expired"),
        "{page}"
    );

    // A good state but a code the platform does not know.
    let redirect = join_redirect(&app, WALL).await;
    let url = reqwest::Url::parse(&location(redirect.headers())).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = app
        .client
        .get(app.url(&format!("/join/{WALL}/oauth?code=bogus&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains(&retry) && !page.contains("errcode"), "{page}");

    // The platform is down.
    mock.fail_next("/sns/oauth2/access_token", 1);
    let r = app
        .client
        .get(app.url(&format!("/join/{WALL}/oauth?code=any&state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("Try again"));

    // Declined consent: no code.
    let r = app
        .client
        .get(app.url(&format!("/join/{WALL}/oauth?state={state}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains(&retry));

    // Not a WeChat wall.
    let r = app
        .client
        .get(app.url("/join/web/oauth?code=a&state=b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(app.wx().await["participants"].as_array().unwrap().len(), 0);
    app.stop().await;
}
