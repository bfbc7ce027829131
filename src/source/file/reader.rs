//! Reading the route files without reading what did not change: each
//! file's size, modification time and inode are looked at first, and a
//! file whose look is unchanged keeps the text read before.
//!
//! Owns [`Reader`]. A look can miss a write that lands within the same
//! modification-time tick as the read before it, with the same size; so a
//! file is trusted by its look only once its modification time is
//! [`RACY`] older than the read that saw it (as git does with its index),
//! and the caller reads every file in full now and then.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{file_names, read_capped, Files, Unreadable, MAX_FILE_BYTES};

/// How much older than the read that saw it a file's modification time
/// must be before the file is trusted by its look.
pub const RACY: Duration = Duration::from_secs(2);

/// What a file looked like: if any of this changes, it is read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Look {
    len: u64,
    modified: SystemTime,
    inode: u64,
    device: u64,
}

impl Look {
    /// The look of the file at `path` (through symlinks, so a ConfigMap's
    /// swapped `..data` link shows as another inode).
    fn of(path: &Path) -> Option<Look> {
        let meta = fs::metadata(path).ok()?;
        Some(Look {
            len: meta.len(),
            modified: meta.modified().ok()?,
            inode: meta.ino(),
            device: meta.dev(),
        })
    }
}

/// One file as last read.
#[derive(Debug)]
struct Seen {
    look: Look,
    /// When it was read.
    at: SystemTime,
    text: Result<Arc<str>, Unreadable>,
}

impl Seen {
    /// Whether the text read is still the file's, judging by its look.
    fn still(&self, now: Option<Look>) -> bool {
        let settled = self
            .at
            .duration_since(self.look.modified)
            .is_ok_and(|age| age >= RACY);
        settled && now == Some(self.look)
    }
}

/// Reads the route files, reusing the text of files whose look did not
/// change since the last read.
#[derive(Debug, Default)]
pub struct Reader {
    files: HashMap<PathBuf, Seen>,
}

impl Reader {
    /// Reads `path` as [`super::read`] does. With `trust_looks`, a file
    /// that looks as it did when last read (and was then settled) is not
    /// read again; without, every file is read.
    pub fn read(&mut self, path: &Path, trust_looks: bool) -> io::Result<Files> {
        let names = file_names(path)?;
        let mut seen = HashMap::with_capacity(names.len());
        let files = names
            .into_iter()
            .map(|name| {
                let look = Look::of(&name);
                let text = match self.files.remove(&name) {
                    Some(before) if trust_looks && before.still(look) => before.text,
                    _ => read_capped(&name, MAX_FILE_BYTES),
                };
                if let Some(look) = look {
                    let at = SystemTime::now();
                    let kept = Seen {
                        look,
                        at,
                        text: text.clone(),
                    };
                    seen.insert(name.clone(), kept);
                }
                (name, text)
            })
            .collect();
        self.files = seen;
        Ok(Files(files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewrites `path` in place with `text` and sets its modification time
    /// to `modified`: a change its look cannot show.
    fn rewrite_unseen(path: &Path, text: &str, modified: SystemTime) {
        fs::write(path, text).unwrap();
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(modified).unwrap();
    }

    fn text_of(files: &Files) -> String {
        files.0[0].1.as_deref().unwrap().to_owned()
    }

    #[test]
    fn a_settled_file_that_looks_unchanged_is_not_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        let long_ago = SystemTime::now() - Duration::from_secs(60);
        rewrite_unseen(&path, "one", long_ago);
        let mut reader = Reader::default();
        assert_eq!(text_of(&reader.read(&path, true).unwrap()), "one");
        rewrite_unseen(&path, "two", long_ago);
        assert_eq!(
            text_of(&reader.read(&path, true).unwrap()),
            "one",
            "not read"
        );
        assert_eq!(
            text_of(&reader.read(&path, false).unwrap()),
            "two",
            "a full read"
        );
    }

    #[test]
    fn a_file_written_just_before_its_read_is_read_again_even_if_it_looks_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        let just_now = SystemTime::now();
        rewrite_unseen(&path, "one", just_now);
        let mut reader = Reader::default();
        assert_eq!(text_of(&reader.read(&path, true).unwrap()), "one");
        rewrite_unseen(&path, "two", just_now);
        assert_eq!(text_of(&reader.read(&path, true).unwrap()), "two");
    }
}
