//! Boot to the wall: `voicewall install-autostart` writes an XDG autostart entry for the kiosk user
//! (`$XDG_CONFIG_HOME/autostart/voicewall.desktop`, default `~/.config/autostart/`), which every
//! freedesktop session (GNOME, KDE, Xfce, LXDE/LXQt, MATE, Cinnamon) starts at login — inside the
//! graphical session, so the window has its display. The entry restarts the kiosk when it exits with
//! an error (a crash, a kill) and stays stopped after a clean quit (Ctrl+Shift+Q exits 0).
//! `uninstall-autostart` removes it.
//!
//! Why not a systemd user unit: it starts outside the desktop session's environment (no DISPLAY /
//! WAYLAND_DISPLAY unless the session exports them, and `graphical-session.target` is only reached under
//! GNOME and KDE), which is exactly the "no display" failure this is meant to avoid.

use std::path::{Path, PathBuf};

/// The entry's file name (also its id for the session).
pub const ENTRY: &str = "voicewall.desktop";

#[derive(Debug, thiserror::Error)]
pub enum AutostartError {
    #[error("cannot find the home directory (set HOME or XDG_CONFIG_HOME)")]
    NoHome,
    #[error("cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("cannot remove {0}: {1}")]
    Remove(PathBuf, std::io::Error),
}

/// `$XDG_CONFIG_HOME/autostart`, else `$HOME/.config/autostart` (the XDG base directory rules).
pub fn autostart_dir() -> Result<PathBuf, AutostartError> {
    let from_env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(dir) = from_env("XDG_CONFIG_HOME") {
        return Ok(dir.join("autostart"));
    }
    from_env("HOME")
        .map(|h| h.join(".config").join("autostart"))
        .ok_or(AutostartError::NoHome)
}

/// Quote one argument for a desktop entry's `Exec` line inside `sh -c '…'`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The desktop entry that starts `binary` (with `--config config`, if given) at login and restarts it
/// after a failure.
pub fn entry(binary: &Path, config: Option<&Path>) -> String {
    let mut cmd = sh_quote(&binary.display().to_string());
    if let Some(c) = config {
        cmd.push_str(" --config ");
        cmd.push_str(&sh_quote(&c.display().to_string()));
    }
    // The desktop entry spec quotes twice: inside a double-quoted argument `"`, `` ` ``, `$` and `\` take
    // a backslash, then the string level doubles every backslash; `%` is a field code, written `%%`.
    let script = format!("until {cmd}; do sleep 3; done");
    let exec_arg = script
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('`', "\\`")
        .replace('$', "\\$")
        .replace('\\', "\\\\")
        .replace('%', "%%");
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Name=Voicewall\n\
         Comment=The venue's voice wall, fullscreen at login (restarted after a failure)\n\
         Exec=sh -c \"{exec_arg}\"\n\
         Icon=voicewall\n\
         Terminal=false\n\
         X-GNOME-Autostart-enabled=true\n\
         X-GNOME-Autostart-Delay=2\n"
    )
}

/// Write the entry; returns its path.
pub fn install(binary: &Path, config: Option<&Path>) -> Result<PathBuf, AutostartError> {
    let dir = autostart_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| AutostartError::Write(dir.clone(), e))?;
    let path = dir.join(ENTRY);
    std::fs::write(&path, entry(binary, config))
        .map_err(|e| AutostartError::Write(path.clone(), e))?;
    Ok(path)
}

/// Remove the entry; `Ok(None)` when there was none.
pub fn uninstall() -> Result<Option<PathBuf>, AutostartError> {
    let path = autostart_dir()?.join(ENTRY);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(Some(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AutostartError::Remove(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_restarts_after_a_failure_and_quotes_paths() {
        let e = entry(
            Path::new("/usr/bin/voicewall"),
            Some(Path::new("/home/kiosk/my wall's.toml")),
        );
        assert!(e.starts_with("[Desktop Entry]\nType=Application\n"), "{e}");
        let exec = e.lines().find(|l| l.starts_with("Exec=")).unwrap();
        assert_eq!(
            exec,
            r#"Exec=sh -c "until '/usr/bin/voicewall' --config '/home/kiosk/my wall'\\\\''s.toml'; do sleep 3; done""#
        );
    }
}
