//! Audio sniffer + every decoder, through the crate's public entry as the server uses it:
//! `decode_limited` with the default 60 s limit, then the analysis the wall stores.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = voicewall_audio::sniff(data);
    if let Ok(decoded) = voicewall_audio::decode_limited(data, 60) {
        assert!(decoded.sample_rate > 0 && decoded.channels > 0);
        let _ = voicewall_audio::analyse(&decoded);
    }
});
