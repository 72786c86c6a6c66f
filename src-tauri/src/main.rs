//! `voicewall`: parse the command line first; only the window modes start Tauri.
fn main() {
    std::process::exit(voicewall_shell::main_entry());
}
