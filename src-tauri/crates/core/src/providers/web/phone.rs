//! What a phone learns of its own messages: each as the wall shows messages ([`MessageView`]) plus its
//! waveform, which the join page draws for the sender (the wall state leaves waveforms out).

use crate::domain::Message;
use crate::http::state::MessageView;

/// One of the phone's own messages as the join page gets it.
pub fn own_message(m: &Message) -> serde_json::Value {
    let mut v = serde_json::to_value(MessageView::from(m)).unwrap_or_default();
    v["waveform"] = serde_json::json!(m.waveform);
    v
}
