//! The guest's language: Accept-Language picks Chinese or English, the wall's locale decides when the
//! phone asks for neither. Every page and refusal a guest reads is in both.

use axum::http::{header, HeaderMap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The best of zh / en by q-value in Accept-Language; `fallback` (a wall locale) otherwise.
    pub fn from_headers(headers: &HeaderMap, fallback: &str) -> Lang {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Self::of_locale(fallback))
    }

    /// A wall's locale ("en" or "zh-CN").
    pub fn of_locale(locale: &str) -> Lang {
        if locale == "en" {
            Lang::En
        } else {
            Lang::Zh
        }
    }

    pub fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// The page's `lang` attribute.
    pub fn tag(self) -> &'static str {
        self.pick("en", "zh-CN")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn language_follows_accept_language() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::from_headers(&h, "en"), Lang::En);
        assert_eq!(Lang::from_headers(&h, "zh-CN"), Lang::Zh);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-FR,en;q=0.8,zh-CN;q=0.9"),
        );
        assert_eq!(Lang::from_headers(&h, "en"), Lang::Zh);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("en-GB,en;q=0.9"),
        );
        assert_eq!(Lang::from_headers(&h, "zh-CN"), Lang::En);
    }
}
