//! Random tokens for ids and secrets (device ids, upload ids, generated secrets, nonces): letters and
//! digits without the look-alikes (0/O, 1/l/I), so a token read aloud or off a screen survives.

use rand::Rng;

const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

/// `len` characters from a cryptographically seeded generator.
pub fn token(len: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_have_the_length_and_alphabet_asked_for() {
        let t = super::token(40);
        assert_eq!(t.len(), 40);
        assert!(t.bytes().all(|b| super::ALPHABET.contains(&b)), "{t}");
        assert_ne!(super::token(40), t, "two draws differ");
    }
}
