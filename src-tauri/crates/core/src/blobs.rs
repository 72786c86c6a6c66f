//! The media cache's blobs as files: `data_dir/media/{key}`, one file per content hash.
//!
//! sled keeps only what names them (`media_meta`, `media_index`, `media_age`). Blobs used to live in a
//! sled tree; once the evictor began removing the oldest, sled rewrote and kept the tree's nodes, and
//! the kiosk's memory took a one-time step of about 1.4 times the media held (README, "Soak"). A file
//! is written once, read from the page cache, and evicted with `unlink`.
//!
//! A blob is written to a temporary file, synced, renamed to its key and the directory synced, all
//! before its metadata is written: metadata in the database means a durable file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files start with this (never a media key: keys are hex digits).
const TMP_PREFIX: &str = "tmp-";

pub struct BlobDir {
    dir: PathBuf,
    tmp_seq: AtomicU64,
}

impl BlobDir {
    /// Open (create) the directory and remove temporary files a crash left behind.
    pub fn open(dir: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(Self {
            dir,
            tmp_seq: AtomicU64::new(0),
        })
    }

    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(key)
    }

    /// Write `bytes` to a synced temporary file; [`Staged::commit`] gives it its name.
    pub fn stage(&self, bytes: &[u8]) -> io::Result<Staged> {
        let n = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}{}-{n}", std::process::id()));
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_data()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Staged { tmp: Some(tmp) })
    }

    /// Rename a staged file to `key` and sync the directory, so the name survives a crash.
    pub fn commit(&self, mut staged: Staged, key: &str) -> io::Result<()> {
        let tmp = staged.tmp.take().expect("staged once");
        if let Err(e) = fs::rename(&tmp, self.path(key)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.sync_dir()
    }

    /// Make renames and removals in the directory durable.
    pub fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    /// A blob's bytes; `None` when there is no such file.
    pub fn read(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(key)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn exists(&self, key: &str) -> bool {
        self.path(key).is_file()
    }

    /// Unlink a blob; true when there was one.
    pub fn remove(&self, key: &str) -> io::Result<bool> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every blob's key (the file names that are media keys).
    pub fn keys(&self) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if crate::domain::MediaKey::parse(&name).is_ok() {
                keys.push(name);
            }
        }
        keys.sort();
        Ok(keys)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A synced temporary file not yet named (removed if dropped uncommitted).
pub struct Staged {
    tmp: Option<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_named_only_once_committed_and_leftovers_go_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("media")).unwrap();
        let key = crate::domain::MediaKey::of(b"voice");
        let staged = blobs.stage(b"voice").unwrap();
        assert!(
            blobs.read(&key).unwrap().is_none(),
            "not named before commit"
        );
        blobs.commit(staged, &key).unwrap();
        assert_eq!(blobs.read(&key).unwrap().unwrap(), b"voice");
        assert_eq!(blobs.keys().unwrap(), vec![key.as_str().to_string()]);

        // Dropped uncommitted: no file stays.
        drop(blobs.stage(b"never named").unwrap());
        // A crash's leftover temporary file is removed at the next open.
        fs::write(dir.path().join("media/tmp-1-0"), b"half").unwrap();
        let blobs = BlobDir::open(dir.path().join("media")).unwrap();
        let names: Vec<_> = fs::read_dir(blobs.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![key.as_str().to_string()]);
        assert!(blobs.remove(&key).unwrap());
        assert!(!blobs.remove(&key).unwrap());
        assert!(blobs.keys().unwrap().is_empty());
    }
}
