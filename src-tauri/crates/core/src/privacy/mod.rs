//! Guests' privacy: what is kept, for how long, and how an organiser removes or takes it away.
//!
//! - `consent` — the one line a guest reads before joining (what is kept, how long, shown and played
//!   in the room; joining is the consent), in both languages;
//! - `erase` — deleting a wall's people, voices and media: a whole wall (purge) or what is older than
//!   its retention; shared, content-addressed media is deleted only when nothing names it any more;
//! - `retention` — the sweeper task: each wall's `retention_days`, on the injected clock;
//! - `export` — a wall's approved voices and their manifests (JSON, CSV) as a zip, written as it is
//!   read from the store (10,000 messages never sit in memory).

pub mod consent;
pub mod erase;
pub mod export;
pub mod retention;
