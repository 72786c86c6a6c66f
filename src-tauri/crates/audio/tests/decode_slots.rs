//! Every decode takes a slot of the process-wide `DecodeSlots`: with all slots held, a decode
//! waits, and runs once one is freed. (Its own test binary: no other test decodes meanwhile.)

mod common;

use common::fixture;
use voicewall_audio::{decode_limited, DecodeSlots};

#[test]
fn a_decode_waits_for_a_free_slot() {
    let shared = DecodeSlots::shared();
    assert!(shared.total() >= 1);
    let held: Vec<_> = (0..shared.total()).map(|_| shared.acquire()).collect();
    let bytes = fixture("hello.wav");
    let decoding = std::thread::spawn(move || decode_limited(&bytes, 60).map(|d| d.frames()));
    // Either the decode blocks on a slot (the event we wait for) or it ran without one.
    while shared.waiting() == 0 && !decoding.is_finished() {
        std::thread::yield_now();
    }
    assert!(
        !decoding.is_finished(),
        "a decode ran while every slot was held"
    );
    assert_eq!(shared.waiting(), 1);
    drop(held);
    let frames = decoding.join().unwrap().expect("hello.wav decodes");
    assert!(frames > 0);
    assert_eq!(shared.in_use(), 0);
}
