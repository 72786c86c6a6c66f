//! The WeChat protocol against published data: all 14 WXBizMsgCrypt vectors (signature, decrypt,
//! encrypt with the given random) and every message sample in tests/fixtures/wechat/messages.

mod common;

use serde_json::Value;
use voicewall_core::providers::wechat::crypto::{envelope, signature, MsgCrypt};
use voicewall_core::providers::wechat::xml::{self, PushKind};

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(common::wechat_fixture("crypto_vectors.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("missing {k} in {v}"))
}

#[test]
fn all_fourteen_crypto_vectors_pass() {
    let vs = vectors();
    assert_eq!(vs.len(), 14);
    let mut checked = 0;
    for v in &vs {
        let id = s(v, "id");
        let token = s(v, "token");
        let (inp, exp) = (&v["inputs"], &v["expected"]);
        let rid = v["appid"].as_str().or(v["corpid"].as_str()).unwrap_or("");
        match s(v, "operation") {
            "url_signature_3field" => {
                assert_eq!(
                    signature(&[token, s(inp, "timestamp"), s(inp, "nonce")]),
                    s(exp, "signature"),
                    "{id}"
                );
            }
            "encrypt" | "encrypt_reply" => {
                let c = MsgCrypt::new(s(v, "encoding_aes_key"), rid).unwrap();
                let random: [u8; 16] = s(inp, "random16").as_bytes().try_into().unwrap();
                let got = c.seal_with_random(&random, s(inp, "msg"));
                assert_eq!(got, s(exp, "encrypt"), "{id}: ciphertext");
                let (ts, nonce) = (s(inp, "timestamp"), s(inp, "nonce"));
                assert_eq!(
                    signature(&[token, ts, nonce, &got]),
                    s(exp, "msg_signature"),
                    "{id}: msg_signature"
                );
                if let Some(reply) = exp["reply_xml"].as_str() {
                    // Same fields as the published envelope (whitespace between elements aside).
                    let ours = xml::fields(&envelope(token, &got, ts, nonce)).unwrap();
                    let theirs = xml::fields(reply).unwrap();
                    assert_eq!(ours, theirs, "{id}: reply envelope");
                }
                // And it opens again.
                assert_eq!(c.open(&got).unwrap().msg, s(inp, "msg"), "{id}: round trip");
            }
            "verify_url_encrypted_echostr" | "verify_and_decrypt" => {
                let enc = if s(v, "operation") == "verify_url_encrypted_echostr" {
                    s(inp, "echostr").to_string()
                } else {
                    xml::fields(s(inp, "body")).unwrap()["Encrypt"].clone()
                };
                let q = if inp["query"].is_object() {
                    &inp["query"]
                } else {
                    inp
                };
                let sig = signature(&[token, s(q, "timestamp"), s(q, "nonce"), &enc]);
                assert_eq!(sig, s(q, "msg_signature"), "{id}: msg_signature");
                assert_eq!(sig, s(exp, "msg_signature"), "{id}: expected msg_signature");
                let c = MsgCrypt::new(s(v, "encoding_aes_key"), rid).unwrap();
                let opened = c.open(&enc).unwrap();
                assert_eq!(opened.random, s(exp, "random16").as_bytes(), "{id}: random");
                assert_eq!(opened.msg, s(exp, "msg"), "{id}: msg");
                assert_eq!(
                    opened.msg.len() as u64,
                    exp["msg_len"].as_u64().unwrap(),
                    "{id}: msg_len"
                );
                assert_eq!(opened.receive_id, s(exp, "receive_id"), "{id}: receive_id");
                assert_eq!(opened.receive_id, rid, "{id}: receive_id is the account's");
                assert_eq!(
                    opened.pad as u64,
                    exp["pkcs7_pad_byte"].as_u64().unwrap(),
                    "{id}: pad"
                );
                if let Some(url_sig) = exp["url_signature_3field"].as_str() {
                    assert_eq!(
                        signature(&[token, s(q, "timestamp"), s(q, "nonce")]),
                        url_sig,
                        "{id}"
                    );
                    assert_eq!(s(q, "signature"), url_sig, "{id}");
                }
            }
            other => panic!("{id}: unknown operation {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 14);
}

/// The key of the vector whose body carries this Encrypt value.
fn key_for(encrypt: &str) -> (String, String, String) {
    for v in vectors() {
        let body = v["inputs"]["body"].as_str().unwrap_or("");
        let reply = v["expected"]["reply_xml"].as_str().unwrap_or("");
        if body.contains(encrypt) || reply.contains(encrypt) {
            let rid = v["appid"]
                .as_str()
                .or(v["corpid"].as_str())
                .unwrap()
                .to_string();
            return (
                v["encoding_aes_key"].as_str().unwrap().to_string(),
                rid,
                v["token"].as_str().unwrap().to_string(),
            );
        }
    }
    panic!("no vector carries this Encrypt value");
}

#[test]
fn every_message_sample_parses() {
    let dir = common::wechat_fixture("messages");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 25, "{names:?}");
    for name in &names {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let outer = xml::fields(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Encrypted bodies: decrypt first with the key of the vector they come from.
        let plain = match outer.get("Encrypt") {
            Some(enc) => {
                let (key, rid, _) = key_for(enc);
                let opened = MsgCrypt::new(&key, &rid).unwrap().open(enc).unwrap();
                assert_eq!(opened.receive_id, rid, "{name}");
                opened.msg
            }
            None => text.clone(),
        };
        if name.starts_with("reply_") {
            let f = xml::fields(&plain).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!f.is_empty(), "{name}");
            continue;
        }
        let push = xml::parse_push(&plain).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !push.from_user.is_empty() && !push.to_user.is_empty(),
            "{name}"
        );
        let expect_kind = |k: &PushKind| match (name.as_str(), k) {
            (n, PushKind::Voice { media_id, .. }) if n.starts_with("voice") => !media_id.is_empty(),
            (
                "video.xml",
                PushKind::Video {
                    short: false,
                    thumb_media_id,
                    ..
                },
            ) => thumb_media_id == "thumb_media_id",
            ("shortvideo.xml", PushKind::Video { short: true, .. }) => true,
            ("image.xml", PushKind::Image { media_id, pic_url }) => {
                media_id == "media_id" && pic_url == "this is a url"
            }
            (n, PushKind::Text { .. }) if n.starts_with("text") || n == "push_compat_mode.xml" => {
                true
            }
            ("push_safe_mode_encrypted.xml", PushKind::Other { msg_type }) => {
                msg_type == "event:debug_demo"
            }
            ("event_subscribe.xml", PushKind::Subscribe { scene: None }) => true,
            ("event_subscribe_qrscene.xml", PushKind::Subscribe { scene: Some(s) }) => {
                s == "123123"
            }
            (
                "event_subscribe_qrscene_str_CONSTRUCTED.xml",
                PushKind::Subscribe { scene: Some(s) },
            ) => s == "wall-7f3a",
            ("event_scan.xml", PushKind::Scan { scene }) => scene == "123123",
            ("event_scan_str_CONSTRUCTED.xml", PushKind::Scan { scene }) => scene == "wall-7f3a",
            ("event_unsubscribe.xml", PushKind::Unsubscribe) => true,
            (
                "event_click.xml" | "event_location.xml" | "event_debug_demo_decrypted.xml",
                PushKind::Other { .. },
            ) => true,
            ("location.xml" | "link.xml", PushKind::Other { msg_type }) => {
                msg_type == name.trim_end_matches(".xml")
            }
            _ => false,
        };
        assert!(
            expect_kind(&push.kind),
            "{name}: unexpected {:?}",
            push.kind
        );
    }
    let rec =
        xml::parse_push(&std::fs::read_to_string(dir.join("voice_with_recognition.xml")).unwrap())
            .unwrap();
    assert_eq!(
        rec.kind,
        PushKind::Voice {
            media_id: "media_id".into(),
            format: "Format".into(),
            recognition: Some("腾讯微信团队".into())
        }
    );
    assert_eq!(rec.dedup_key(), "msg:1234567890123456");
    let real = xml::parse_push(
        &std::fs::read_to_string(dir.join("voice_real_2023_community.xml")).unwrap(),
    )
    .unwrap();
    assert!(
        matches!(real.kind, PushKind::Voice { ref format, recognition: None, .. } if format == "amr")
    );
    assert_eq!(real.create_time, 1688027152);
    let ev = xml::parse_push(
        &std::fs::read_to_string(dir.join("event_subscribe_qrscene_str_CONSTRUCTED.xml")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        ev.dedup_key(),
        "evt:oyORnuP8q7ou2gfYjqLzSIWZf0rs:1715943400:subscribe"
    );
}

#[test]
fn safe_mode_fixture_decrypts_to_its_account() {
    let text = std::fs::read_to_string(common::wechat_fixture(
        "messages/push_safe_mode_encrypted.xml",
    ))
    .unwrap();
    let f = xml::fields(&text).unwrap();
    let (key, rid, _) = key_for(&f["Encrypt"]);
    let opened = MsgCrypt::new(&key, &rid)
        .unwrap()
        .open(&f["Encrypt"])
        .unwrap();
    let push = xml::parse_push(&opened.msg).unwrap();
    assert_eq!(push.to_user, f["ToUserName"]);
}
