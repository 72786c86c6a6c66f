//! WeChat safe mode: the AES envelope and the XML inside it.
//!
//! The first byte picks the path. Even: the rest is a hostile `Encrypt` value opened with the
//! published test key (base64, AES-256-CBC, PKCS#7 to 32, the length/receive_id layout). Odd: the
//! rest is a plaintext sealed with that key, which must open to itself, and whose decrypted XML is
//! then parsed as a push — a fuzzer cannot forge ciphertext, so this is how it reaches the
//! decrypted-XML path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voicewall_core::providers::wechat::{crypto::MsgCrypt, xml};

/// The EncodingAESKey of WeChat's published sample (tests/fixtures/wechat/crypto_vectors.json).
const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID: &str = "wxb11529c136998cb6";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let crypt = MsgCrypt::new(KEY, APPID).expect("the published key is valid");
    if mode % 2 == 0 {
        if let Ok(opened) = crypt.open(text) {
            let _ = xml::parse_push(&opened.msg);
        }
    } else {
        let sealed = crypt.seal_with_random(&[mode; 16], text);
        let opened = crypt.open(&sealed).expect("what we seal opens");
        assert_eq!(opened.msg, text);
        assert_eq!(opened.receive_id, APPID);
        let _ = xml::parse_push(&opened.msg);
    }
});
