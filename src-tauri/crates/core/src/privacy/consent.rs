//! The consent line: what is kept (name, picture, voice), for how long (the wall's `retention_days`),
//! and that it is shown and played in the room. Joining is the consent. The join page, and the join
//! instructions of platform walls (WeChat, Telegram), read it from here so every wall says the same.

use crate::lang::Lang;

/// The line in the guest's language.
pub fn line(lang: Lang, retention_days: u32) -> String {
    match lang {
        Lang::En => {
            let days = if retention_days == 1 {
                "1 day".to_string()
            } else {
                format!("{retention_days} days")
            };
            format!(
                "Your name, picture and voice messages are kept for {days}, shown on the screen and played aloud in this room. By joining you agree."
            )
        }
        Lang::Zh => format!(
            "你的昵称、头像和语音将保存 {retention_days} 天，并在现场大屏幕上展示和播放。加入即表示同意。"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_how_long_and_where_in_both_languages() {
        let en = line(Lang::En, 30);
        for part in [
            "name", "picture", "voice", "30 days", "played", "room", "joining",
        ] {
            assert!(en.contains(part), "{part}: {en}");
        }
        assert!(line(Lang::En, 1).contains("1 day,"));
        let zh = line(Lang::Zh, 7);
        for part in ["昵称", "头像", "语音", "7 天", "播放", "加入即表示同意"] {
            assert!(zh.contains(part), "{part}: {zh}");
        }
    }
}
