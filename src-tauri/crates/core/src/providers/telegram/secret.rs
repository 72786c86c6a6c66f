//! The webhook's credential: Telegram sends the `secret_token` given to `setWebhook` back on every
//! delivery as `X-Telegram-Bot-Api-Secret-Token`. Compared in constant time (`subtle`), so the answer
//! time does not tell an attacker how much of a guess was right.

use subtle::ConstantTimeEq;

/// The header Telegram puts the secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Is `presented` (the header's raw bytes, if any) the wall's secret? Lengths may differ: the
/// comparison is then false (the length of a secret is not what protects it).
pub fn secret_matches(expected: &str, presented: Option<&[u8]>) -> bool {
    match presented {
        Some(got) if !expected.is_empty() => expected.as_bytes().ct_eq(got).into(),
        _ => false,
    }
}

/// A valid `secret_token` for `setWebhook`: 1–256 characters of `A-Z a-z 0-9 _ -`.
pub fn valid_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_matches() {
        let s = "wall_secret-123";
        assert!(secret_matches(s, Some(b"wall_secret-123")));
        assert!(!secret_matches(s, Some(b"wall_secret-124")));
        assert!(!secret_matches(s, Some(b"wall_secret-12")));
        assert!(!secret_matches(s, Some(b"wall_secret-1234")));
        assert!(!secret_matches(s, Some(b"")));
        assert!(!secret_matches(s, None));
        // An empty configured secret never matches (config forbids it; this is the last line).
        assert!(!secret_matches("", Some(b"")));
    }

    #[test]
    fn secrets_follow_the_bot_api_alphabet() {
        assert!(valid_secret("wall_secret-123"));
        assert!(valid_secret(&"x".repeat(256)));
        assert!(!valid_secret(&"x".repeat(257)));
        assert!(!valid_secret(""));
        assert!(!valid_secret("has space"));
        assert!(!valid_secret("semi;colon"));
    }
}
