//! Profile pictures from every platform (web uploads, WeChat, Telegram): the decoder and the square
//! re-encodes (the 256 px avatar and the grid's thumbnail).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = voicewall_core::avatar::normalise_avatar(data);
});
