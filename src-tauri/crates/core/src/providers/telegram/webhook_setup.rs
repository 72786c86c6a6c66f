//! Where Telegram should deliver a wall's updates, and whether the kiosk can ask for it itself.
//!
//! `setWebhook` only accepts an `https://` URL on port 443, 80, 88 or 8443. When the kiosk's
//! `public_url` is such a URL, the provider calls it at start (with the secret and
//! `allowed_updates=["message"]`); otherwise it logs exactly what the technician has to do, without the
//! bot token or the secret in the text.

/// Ports Telegram delivers webhooks to.
pub const WEBHOOK_PORTS: [u16; 4] = [443, 80, 88, 8443];

/// What start-up does about the webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookPlan {
    /// Call setWebhook with this URL.
    Set { url: String },
    /// The kiosk cannot be reached by Telegram as configured: what to do instead.
    Manual { url: String, instructions: String },
}

/// The wall's webhook path on this server.
pub fn webhook_path(wall: &str) -> String {
    format!("/webhook/telegram/{wall}")
}

/// Decide from `public_url` (e.g. `https://wall.example`, possibly with a path prefix).
pub fn webhook_plan(public_url: &str, wall: &str) -> WebhookPlan {
    let url = format!("{}{}", public_url.trim_end_matches('/'), webhook_path(wall));
    let problem = match reqwest::Url::parse(public_url) {
        Err(_) => Some(format!("[server] public_url {public_url:?} is not a URL")),
        Ok(u) if u.scheme() != "https" => Some(format!(
            "[server] public_url is {public_url}, but Telegram only delivers to https:// addresses"
        )),
        Ok(u) => match u.port_or_known_default() {
            Some(p) if WEBHOOK_PORTS.contains(&p) => None,
            p => Some(format!(
                "[server] public_url is {public_url}, on port {}, but Telegram only delivers to ports 443, 80, 88 or 8443",
                p.map_or("?".to_string(), |p| p.to_string())
            )),
        },
    };
    match problem {
        None => WebhookPlan::Set { url },
        Some(problem) => WebhookPlan::Manual {
            instructions: format!(
                "{problem}. Telegram will not deliver messages for wall {wall:?} until its webhook points here. \
                 Either put the kiosk behind an HTTPS address on port 443, 80, 88 or 8443 (a reverse proxy or a tunnel \
                 that forwards to this server), set [server] public_url to it and restart (the webhook is then set \
                 automatically), or set it yourself once: \
                 curl -d url=https://<your public host>{path} -d secret_token=<walls.telegram.secret_token> \
                 -d 'allowed_updates=[\"message\"]' https://api.telegram.org/bot<walls.telegram.bot_token>/setWebhook",
                path = webhook_path(wall)
            ),
            url,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_on_an_allowed_port_is_set() {
        for base in [
            "https://wall.example",
            "https://wall.example/",
            "https://wall.example:8443",
            "https://wall.example:88",
            "https://wall.example:80",
        ] {
            assert!(
                matches!(webhook_plan(base, "hall"), WebhookPlan::Set { url } if url.ends_with("/webhook/telegram/hall")),
                "{base}"
            );
        }
        assert_eq!(
            webhook_plan("https://wall.example/kiosk/", "hall"),
            WebhookPlan::Set {
                url: "https://wall.example/kiosk/webhook/telegram/hall".into()
            }
        );
    }

    #[test]
    fn anything_else_says_what_to_do() {
        for (base, says) in [
            ("http://192.168.1.20:8787", "only delivers to https://"),
            ("https://wall.example:8787", "on port 8787"),
            ("not a url", "is not a URL"),
        ] {
            let WebhookPlan::Manual { instructions, url } = webhook_plan(base, "hall") else {
                panic!("{base} was set")
            };
            assert!(instructions.contains(says), "{instructions}");
            assert!(
                instructions.contains("setWebhook")
                    && instructions.contains("/webhook/telegram/hall")
            );
            assert!(instructions.contains("<walls.telegram.bot_token>"));
            assert!(url.ends_with("/webhook/telegram/hall"));
        }
    }
}
