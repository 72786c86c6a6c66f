//! Telegram webhook bodies: the JSON `Update` read as the webhook reads it, then what the wall
//! keeps of an accepted one (the media reference round-trips through the inbox, the names read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use voicewall_core::domain::{InboundKind, MediaRef as Reference};
use voicewall_core::providers::telegram::update::{parse_update, MediaRef, Parsed};

fuzz_target!(|data: &[u8]| {
    let Ok(Parsed::Accept(accepted)) = parse_update(data, "main", 0) else {
        return;
    };
    let _ = accepted.names.display();
    if let InboundKind::Media {
        media: Reference::Platform(text),
        ..
    } = &accepted.inbound.kind
    {
        let reference = MediaRef::decode(text);
        assert_eq!(MediaRef::decode(&reference.encode()), reference);
    }
});
