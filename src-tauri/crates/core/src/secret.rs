//! Comparing secrets: one constant-time equality (the `subtle` crate) for every token, signature and
//! bearer a client hands us, so that no comparison leaks how many leading bytes were right.

use subtle::ConstantTimeEq;

/// `given == expected`, in time independent of where they differ. A length mismatch answers at once:
/// the lengths of our tokens and signatures are public.
pub fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && bool::from(given.ct_eq(expected))
}

#[cfg(test)]
mod tests {
    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(super::same(b"abc", b"abc"));
        assert!(!super::same(b"abc", b"abd"));
        assert!(!super::same(b"xbc", b"abc"));
        assert!(!super::same(b"ab", b"abc"));
        assert!(super::same(b"", b""));
    }
}
