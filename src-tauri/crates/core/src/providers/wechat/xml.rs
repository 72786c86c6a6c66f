//! WeChat push XML: a flat `<xml>` of named fields (text or CDATA), parsed with quick-xml into
//! `Push`, and the passive text reply we answer with.
//!
//! Hostile input: a DOCTYPE (and so any ENTITY declaration) is refused before and during parsing and
//! never expanded; unknown entity references are an error; depth and field count are bounded.

use quick_xml::events::Event;
use quick_xml::Reader;
use std::collections::HashMap;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("DOCTYPE and ENTITY declarations are not accepted")]
    Doctype,
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("missing field {0}")]
    Missing(&'static str),
}

/// Most fields a push carries is ~12; anything far beyond that is not WeChat.
const MAX_FIELDS: usize = 64;
const MAX_DEPTH: usize = 4;

/// The top-level fields of `<xml>…</xml>` by name. Nested elements (e.g. `ScanCodeInfo`) are flattened
/// by their own names; repeated names keep the first value.
pub fn fields(xml: &str) -> Result<HashMap<String, String>, XmlError> {
    // A DOCTYPE can only come before the root element; look there without parsing anything.
    let head_end = xml.find("<xml").unwrap_or(xml.len());
    let head = xml[..head_end].to_ascii_uppercase();
    if head.contains("<!DOCTYPE") || head.contains("<!ENTITY") {
        return Err(XmlError::Doctype);
    }
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut out: HashMap<String, String> = HashMap::new();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut seen_root = false;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        match ev {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if stack.is_empty() {
                    if seen_root {
                        return Err(XmlError::Malformed("more than one root element".into()));
                    }
                    if name != "xml" {
                        return Err(XmlError::Malformed(format!(
                            "root element is <{name}>, not <xml>"
                        )));
                    }
                    seen_root = true;
                }
                stack.push(name);
                if stack.len() > MAX_DEPTH {
                    return Err(XmlError::Malformed("nested too deep".into()));
                }
                text.clear();
            }
            Event::Empty(e) => {
                if stack.is_empty() {
                    return Err(XmlError::Malformed("empty root element".into()));
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                out.entry(name).or_default();
            }
            Event::Text(t) => {
                if stack.is_empty() {
                    if !t.iter().all(|b| b.is_ascii_whitespace()) {
                        return Err(XmlError::Malformed("text outside the root element".into()));
                    }
                    continue;
                }
                let s = t
                    .unescape()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?;
                text.push_str(&s);
            }
            Event::CData(c) => {
                if stack.is_empty() {
                    return Err(XmlError::Malformed("CDATA outside the root element".into()));
                }
                let s = std::str::from_utf8(&c).map_err(|e| XmlError::Malformed(e.to_string()))?;
                text.push_str(s);
            }
            Event::End(_) => {
                let name = stack.pop().unwrap_or_default();
                if !stack.is_empty() && !out.contains_key(&name) {
                    if out.len() >= MAX_FIELDS {
                        return Err(XmlError::Malformed("too many fields".into()));
                    }
                    if let Some(c) = text.chars().find(|&c| !xml_char(c)) {
                        return Err(XmlError::Malformed(format!(
                            "<{name}> holds U+{:04X}, which XML 1.0 does not allow",
                            c as u32
                        )));
                    }
                    // Containers (e.g. ScanCodeInfo) hold only whitespace between their children.
                    out.insert(name, std::mem::take(&mut text));
                }
                text.clear();
            }
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
        }
    }
    if !seen_root || !stack.is_empty() {
        return Err(XmlError::Malformed("no complete <xml> root element".into()));
    }
    Ok(out)
}

/// XML 1.0's `Char`: a NUL or another control character (raw, or as `&#0;`) is not text — and would
/// reach names, transcripts and logs.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// What a push says, for the kinds the wall uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushKind {
    Voice {
        media_id: String,
        format: String,
        recognition: Option<String>,
    },
    Video {
        media_id: String,
        thumb_media_id: String,
        short: bool,
    },
    Text {
        content: String,
    },
    Image {
        media_id: String,
        pic_url: String,
    },
    /// Follow; `scene` from `EventKey` "qrscene_<scene>" when the follow came from a parametric QR.
    Subscribe {
        scene: Option<String>,
    },
    /// An existing follower scanned a parametric QR; `EventKey` is the scene itself.
    Scan {
        scene: String,
    },
    Unsubscribe,
    /// Anything else (location, link, menu clicks…): acknowledged and ignored.
    Other {
        msg_type: String,
    },
}

/// One push, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub to_user: String,
    pub from_user: String,
    pub create_time: u64,
    pub msg_id: Option<String>,
    pub kind: PushKind,
}

impl Push {
    /// Retries of one push share this key: `MsgId` for messages, sender + time (+ event) for events.
    pub fn dedup_key(&self) -> String {
        match &self.msg_id {
            Some(id) if !id.is_empty() => format!("msg:{id}"),
            _ => {
                let event = match &self.kind {
                    PushKind::Subscribe { .. } => "subscribe",
                    PushKind::Scan { .. } => "SCAN",
                    PushKind::Unsubscribe => "unsubscribe",
                    PushKind::Other { msg_type } => msg_type.as_str(),
                    _ => "message",
                };
                format!("evt:{}:{}:{event}", self.from_user, self.create_time)
            }
        }
    }
}

fn take(f: &mut HashMap<String, String>, name: &'static str) -> Result<String, XmlError> {
    f.remove(name).ok_or(XmlError::Missing(name))
}

/// Parse a plaintext push (or a decrypted safe-mode one).
pub fn parse_push(xml: &str) -> Result<Push, XmlError> {
    from_fields(fields(xml)?)
}

pub fn from_fields(mut f: HashMap<String, String>) -> Result<Push, XmlError> {
    let to_user = take(&mut f, "ToUserName")?;
    let from_user = take(&mut f, "FromUserName")?;
    let create_time = take(&mut f, "CreateTime")?
        .trim()
        .parse::<u64>()
        .map_err(|_| XmlError::Malformed("CreateTime is not a number".into()))?;
    let msg_type = take(&mut f, "MsgType")?.trim().to_string();
    let msg_id = f.remove("MsgId").map(|s| s.trim().to_string());
    let kind = match msg_type.as_str() {
        "voice" => PushKind::Voice {
            media_id: take(&mut f, "MediaId")?,
            format: f.remove("Format").unwrap_or_default(),
            recognition: f.remove("Recognition").filter(|r| !r.trim().is_empty()),
        },
        "video" | "shortvideo" => PushKind::Video {
            media_id: take(&mut f, "MediaId")?,
            thumb_media_id: f.remove("ThumbMediaId").unwrap_or_default(),
            short: msg_type == "shortvideo",
        },
        "text" => PushKind::Text {
            content: take(&mut f, "Content")?,
        },
        "image" => PushKind::Image {
            media_id: take(&mut f, "MediaId")?,
            pic_url: f.remove("PicUrl").unwrap_or_default(),
        },
        "event" => {
            let event = take(&mut f, "Event")?;
            let key = f.remove("EventKey").unwrap_or_default();
            match event.trim() {
                "subscribe" => PushKind::Subscribe {
                    scene: key
                        .strip_prefix("qrscene_")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                },
                "SCAN" => PushKind::Scan { scene: key },
                "unsubscribe" => PushKind::Unsubscribe,
                other => PushKind::Other {
                    msg_type: format!("event:{other}"),
                },
            }
        }
        other => PushKind::Other {
            msg_type: other.to_string(),
        },
    };
    Ok(Push {
        to_user,
        from_user,
        create_time,
        msg_id,
        kind,
    })
}

/// Text inside CDATA: a literal "]]>" is split across two sections.
pub fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

/// The passive text reply (sender and recipient swapped by the caller).
pub fn text_reply(to_user: &str, from_user: &str, create_time: u64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(to_user),
        cdata(from_user),
        cdata(content)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_doctype_and_entities() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><xml><Content>&lol2;</Content></xml>";
        assert_eq!(fields(bomb).unwrap_err(), XmlError::Doctype);
        assert!(fields("<xml><Content>&lol;</Content></xml>").is_err());
        assert!(fields("<xml><a>1</a>").is_err());
        assert!(fields("not xml").is_err());
        assert!(fields("<xml></xml><xml></xml>").is_err());
    }

    #[test]
    fn control_characters_are_not_text() {
        for bad in [
            "<xml><Content>a\u{0}b</Content></xml>",
            "<xml><Content><![CDATA[a\u{1}b]]></Content></xml>",
            "<xml><Content>\u{FFFE}</Content></xml>",
        ] {
            let e = fields(bad).unwrap_err();
            assert!(
                matches!(&e, XmlError::Malformed(m) if m.contains("XML 1.0")),
                "{bad:?}: {e:?}"
            );
        }
        // quick-xml refuses the character reference itself.
        assert!(fields("<xml><Content>a&#0;b</Content></xml>").is_err());
        let ok = fields("<xml><Content>a\tb\n语音 🎤</Content></xml>").unwrap();
        assert_eq!(ok["Content"], "a\tb\n语音 🎤");
    }

    #[test]
    fn reply_round_trips() {
        let r = text_reply("o1", "gh_1", 7, "a ]]> b & <c>");
        let f = fields(&r).unwrap();
        assert_eq!(f["Content"], "a ]]> b & <c>");
        assert_eq!(f["ToUserName"], "o1");
        assert_eq!(f["MsgType"], "text");
    }

    #[test]
    fn events_and_dedup() {
        let p = parse_push("<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>5</CreateTime><MsgType>event</MsgType><Event>subscribe</Event><EventKey>qrscene_w1</EventKey></xml>").unwrap();
        assert_eq!(
            p.kind,
            PushKind::Subscribe {
                scene: Some("w1".into())
            }
        );
        assert_eq!(p.dedup_key(), "evt:o1:5:subscribe");
    }
}
