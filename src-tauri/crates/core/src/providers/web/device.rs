//! The device cookie: one phone = one participant (`web:{device id}`) for the whole event season. The
//! cookie value is `{device id}.{tag}`, the tag a truncated HMAC-SHA256 under the wall's web secret, so
//! a guest cannot claim another phone's participant.

use axum::http::{header, HeaderMap, HeaderValue};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const DEVICE_COOKIE: &str = "vw_device";
/// Two years: a phone stays the same participant for the whole event season.
const DEVICE_COOKIE_MAX_AGE_S: u64 = 2 * 365 * 86_400;

/// Signs and reads device cookies with one key.
#[derive(Clone)]
pub struct DeviceCookies {
    key: Vec<u8>,
    /// Served over HTTPS: the cookie gets `Secure`.
    secure: bool,
}

impl DeviceCookies {
    pub fn new(key: &[u8], secure: bool) -> Self {
        Self {
            key: key.to_vec(),
            secure,
        }
    }

    fn mac(&self, device: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("device:{device}").as_bytes());
        mac
    }

    /// Sign a device id into the cookie value.
    pub fn sign(&self, device: &str) -> String {
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(&self.mac(device).finalize().into_bytes()[..16]);
        format!("{device}.{tag}")
    }

    /// The device id of a signed cookie value, if the signature holds.
    pub fn verify(&self, value: &str) -> Option<String> {
        let (device, tag) = value.rsplit_once('.')?;
        if device.is_empty()
            || device.len() > 64
            || !device.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return None;
        }
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .ok()?;
        // `verify_truncated_left` compares in constant time.
        (tag.len() == 16 && self.mac(device).verify_truncated_left(&tag).is_ok())
            .then(|| device.to_string())
    }

    /// The device of a request, from its signed cookie.
    pub fn device_of(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .filter(|(k, _)| *k == DEVICE_COOKIE)
            .find_map(|(_, v)| self.verify(v))
    }

    /// The `Set-Cookie` value that gives a phone its device id.
    pub fn set_cookie(&self, device: &str) -> HeaderValue {
        let value = format!(
            "{DEVICE_COOKIE}={}; Path=/; Max-Age={DEVICE_COOKIE_MAX_AGE_S}; HttpOnly; SameSite=Lax{}",
            self.sign(device),
            if self.secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).expect("cookie is ASCII")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_cookies_are_signed() {
        let p = DeviceCookies::new(b"secret", false);
        let v = p.sign("abc123");
        assert_eq!(p.verify(&v).as_deref(), Some("abc123"));
        assert_eq!(p.verify("abc123.AAAAAAAAAAAAAAAAAAAAAA"), None);
        let forged = v.replacen("abc123", "abc124", 1);
        assert_eq!(p.verify(&forged), None);
        assert_eq!(p.verify("nodot"), None);
        assert_eq!(DeviceCookies::new(b"other", false).verify(&v), None);
    }

    #[test]
    fn the_cookie_is_read_among_others_and_secure_over_https() {
        let p = DeviceCookies::new(b"secret", true);
        let set = p.set_cookie("dev1");
        let set = set.to_str().unwrap();
        assert!(set.ends_with("; Secure"), "{set}");
        let pair = set.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {pair}; c=d")).unwrap(),
        );
        assert_eq!(p.device_of(&h).as_deref(), Some("dev1"));
    }
}
