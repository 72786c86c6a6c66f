//! Uploaded profile pictures: the decoder and the square re-encode the join page uses.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = voicewall_core::providers::web::avatar::normalise_avatar(data);
});
