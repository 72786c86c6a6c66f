//! Join tokens: the `t=` of the wall's QR link. They rotate (default every 10 minutes, the previous one
//! valid for a grace period) and are derived, not stored — HMAC-SHA256(secret, wall ‖ epoch) — so they
//! survive a restart and need no table. The operator can rotate them now: a generation number (kept
//! by the site in the store) goes into the derivation, so every earlier token stops at once.

use super::config::WebConfig;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Is a join token good, and why not.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    /// A token of an earlier epoch (up to a day): the guest is told to scan the screen again.
    Expired,
    Invalid,
}

/// The token scheme of one wall.
#[derive(Clone)]
pub struct JoinTokens {
    wall: String,
    secret: Vec<u8>,
    rotate_s: u64,
    grace_s: u64,
    /// Bumped by the operator's "rotate now"; 0 derives exactly the tokens of earlier versions.
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl JoinTokens {
    pub fn new(wall: &str, secret: &[u8], config: &WebConfig) -> Self {
        Self {
            wall: wall.to_string(),
            secret: secret.to_vec(),
            rotate_s: config.token_rotate_s.max(1),
            grace_s: config.token_grace_s,
            generation: Default::default(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Derive tokens of this generation from now on (every earlier token is invalid).
    pub fn set_generation(&self, generation: u64) {
        self.generation
            .store(generation, std::sync::atomic::Ordering::SeqCst);
    }

    /// How long a token is current, in seconds.
    pub fn rotate_s(&self) -> u64 {
        self.rotate_s
    }

    pub fn epoch(&self, now_s: u64) -> u64 {
        now_s / self.rotate_s
    }

    pub fn for_epoch(&self, epoch: u64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        match self.generation() {
            0 => mac.update(format!("join:{}:{epoch}", self.wall).as_bytes()),
            g => mac.update(format!("join:{}:{g}:{epoch}", self.wall).as_bytes()),
        }
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..12])
    }

    pub fn current(&self, now_s: u64) -> String {
        self.for_epoch(self.epoch(now_s))
    }

    /// Valid: this epoch's token, or the previous one within the grace period. Expired: a token of an
    /// older epoch (within a day). Invalid: anything else.
    pub fn check(&self, token: &str, now_s: u64) -> TokenCheck {
        let epoch = self.epoch(now_s);
        let is = |e: u64| crate::secret::same(token.as_bytes(), self.for_epoch(e).as_bytes());
        if is(epoch) {
            return TokenCheck::Valid;
        }
        let into_epoch = now_s - epoch * self.rotate_s;
        if epoch > 0 && is(epoch - 1) {
            return if into_epoch < self.grace_s {
                TokenCheck::Valid
            } else {
                TokenCheck::Expired
            };
        }
        // Links up to a day old (at most 288 rotations back, bounding the work per request) get the
        // friendly "scan the screen again" page rather than "invalid".
        let lookback = (86_400 / self.rotate_s).clamp(2, 288);
        if (2..=lookback).any(|d| epoch >= d && is(epoch - d)) {
            return TokenCheck::Expired;
        }
        TokenCheck::Invalid
    }

    /// Milliseconds from `now_ms` to the next rotation.
    pub fn until_next_ms(&self, now_ms: u64) -> u64 {
        let period_ms = self.rotate_s * 1000;
        (now_ms / period_ms + 1) * period_ms - now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(rotate: u64, grace: u64) -> JoinTokens {
        JoinTokens::new(
            "main",
            b"secret",
            &WebConfig {
                token_rotate_s: rotate,
                token_grace_s: grace,
                ..WebConfig::default()
            },
        )
    }

    #[test]
    fn tokens_rotate_with_a_grace_period() {
        let p = tokens(600, 300);
        let t0 = 6_000_000; // start of an epoch
        let tok = p.current(t0);
        assert_eq!(p.check(&tok, t0 + 599), TokenCheck::Valid);
        assert_ne!(p.current(t0 + 600), tok, "rotates at the boundary");
        assert_eq!(p.check(&tok, t0 + 600 + 299), TokenCheck::Valid, "grace");
        assert_eq!(p.check(&tok, t0 + 600 + 300), TokenCheck::Expired);
        assert_eq!(p.check(&tok, t0 + 3 * 600), TokenCheck::Expired);
        assert_eq!(p.check("forged", t0), TokenCheck::Invalid);
        assert_eq!(p.until_next_ms(t0 * 1000 + 1), 600_000 - 1);
    }

    #[test]
    fn a_new_generation_invalidates_every_earlier_token_at_once() {
        let p = tokens(600, 300);
        let t0 = 6_000_000;
        let old = p.current(t0);
        let older = p.current(t0 - 600);
        p.set_generation(1);
        let new = p.current(t0);
        assert_ne!(new, old);
        assert_eq!(p.check(&new, t0), TokenCheck::Valid);
        assert_eq!(
            p.check(&old, t0),
            TokenCheck::Invalid,
            "no grace after a rotation"
        );
        assert_eq!(p.check(&older, t0), TokenCheck::Invalid);
    }

    #[test]
    fn another_wall_or_secret_makes_other_tokens() {
        let a = tokens(600, 300);
        let b = JoinTokens::new("other", b"secret", &WebConfig::default());
        let c = JoinTokens::new("main", b"secret2", &WebConfig::default());
        assert_ne!(a.current(1_000), b.current(1_000));
        assert_eq!(a.check(&c.current(1_000), 1_000), TokenCheck::Invalid);
    }
}
