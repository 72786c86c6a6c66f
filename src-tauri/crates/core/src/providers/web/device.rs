//! The device cookie: one phone = one participant (`web:{device id}`) for the whole event season. The
//! cookie is signed with axum-extra's signed cookie jar (HMAC-SHA256 over name and value, the `cookie`
//! crate's format) under a key derived from the wall's web secret, so a guest cannot claim another
//! phone's participant. A cookie that does not verify (forged, another kiosk's, or the hand-signed format
//! of earlier versions) counts as none: the phone is given a new device id.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};
use hmac::{Hmac, Mac};
use sha2::Sha512;

const DEVICE_COOKIE: &str = "vw_device";
/// Two years: a phone stays the same participant for the whole event season.
const DEVICE_COOKIE_MAX_AGE_S: i64 = 2 * 365 * 86_400;

/// Signs and reads device cookies with one key.
#[derive(Clone)]
pub struct DeviceCookies {
    key: Key,
    /// Served over HTTPS: the cookie gets `Secure`.
    secure: bool,
}

impl DeviceCookies {
    /// `secret` is the wall's web secret (it also derives join tokens): the cookie key is its own
    /// 64 bytes derived from it.
    pub fn new(secret: &[u8], secure: bool) -> Self {
        let mut mac = Hmac::<Sha512>::new_from_slice(secret).expect("any key length");
        mac.update(b"voicewall device cookie");
        Self {
            key: Key::from(&mac.finalize().into_bytes()),
            secure,
        }
    }

    /// The device of a request, from its signed cookie.
    pub fn device_of(&self, headers: &HeaderMap) -> Option<String> {
        SignedCookieJar::from_headers(headers, self.key.clone())
            .get(DEVICE_COOKIE)
            .map(|c| c.value().to_string())
            .filter(|device| valid_device(device))
    }

    /// The `Set-Cookie` value that gives a phone its device id.
    pub fn set_cookie(&self, device: &str) -> HeaderValue {
        let cookie = Cookie::build((DEVICE_COOKIE, device.to_string()))
            .path("/")
            .max_age(cookie::time::Duration::seconds(DEVICE_COOKIE_MAX_AGE_S))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure);
        let response = SignedCookieJar::new(self.key.clone())
            .add(cookie)
            .into_response();
        response
            .headers()
            .get(header::SET_COOKIE)
            .cloned()
            .expect("a jar with one cookie sets it")
    }
}

/// Device ids are ours (`random::token`): short and alphanumeric.
fn valid_device(device: &str) -> bool {
    !device.is_empty() && device.len() <= 64 && device.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `name=value` pair a browser sends back for a `Set-Cookie`.
    fn pair(set: &HeaderValue) -> String {
        set.to_str().unwrap().split(';').next().unwrap().to_string()
    }

    fn headers(cookie: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        h
    }

    #[test]
    fn device_cookies_are_signed() {
        let p = DeviceCookies::new(b"secret", false);
        let signed = pair(&p.set_cookie("abc123"));
        assert!(
            signed.starts_with("vw_device=") && signed.ends_with("abc123"),
            "{signed}"
        );
        assert_eq!(p.device_of(&headers(&signed)).as_deref(), Some("abc123"));
        let forged = signed.replacen("abc123", "abc124", 1);
        assert_eq!(p.device_of(&headers(&forged)), None);
        assert_eq!(p.device_of(&headers("vw_device=abc123")), None, "unsigned");
        assert_eq!(
            DeviceCookies::new(b"other", false).device_of(&headers(&signed)),
            None,
            "another kiosk's key"
        );
        // The format of earlier versions (`{device}.{truncated tag}`) is not read: a new id is issued.
        assert_eq!(
            p.device_of(&headers("vw_device=abc123.AAAAAAAAAAAAAAAAAAAAAA")),
            None
        );
    }

    #[test]
    fn the_cookie_is_read_among_others_and_secure_over_https() {
        let p = DeviceCookies::new(b"secret", true);
        let set = p.set_cookie("dev1");
        let text = set.to_str().unwrap();
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=63072000",
            "Secure",
        ] {
            assert!(text.split("; ").any(|a| a == attr), "{attr} in {text}");
        }
        let cookie = format!("a=b; {}; c=d", pair(&set));
        assert_eq!(p.device_of(&headers(&cookie)).as_deref(), Some("dev1"));
        let plain = DeviceCookies::new(b"secret", false).set_cookie("dev1");
        assert!(!plain.to_str().unwrap().contains("Secure"), "{plain:?}");
    }
}
