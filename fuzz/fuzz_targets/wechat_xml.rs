//! WeChat push XML as it arrives in plaintext (compat) mode: the flat field reader, then the
//! typed push.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voicewall_core::providers::wechat::xml;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(push) = xml::parse_push(text) {
        let _ = push.dedup_key();
        let _ = voicewall_core::providers::wechat::webhook::inbound_kind(&push);
    }
});
