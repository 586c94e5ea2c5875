//! Which database files esox has open in this process, and refusing a file
//! that another SQLite library in this process (Python's `sqlite3`) has open.
//!
//! esox's SQLite is its own copy, built into the extension. Two copies of
//! SQLite in one process defeat each other's POSIX locks (closing any file
//! descriptor of a file drops every lock the process holds on it), which can
//! corrupt the database: <https://www.sqlite.org/howtocorrupt.html>, 2.2.
//! When esox opens a file it does not have open already, every descriptor
//! this process has open on that file belongs to someone else: refused.
//! The other order (`sqlite3` opening a file esox has open) is not seen here.

use std::collections::HashMap;
use std::fs;
#[cfg(unix)]
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use parking_lot::{Mutex, MutexGuard};

/// A file's identity: device and inode (so `a.db`, `./a.db` and a symlink
/// to it are one file).
pub type FileId = (u64, u64);

/// Open esox databases per file. Held while a file is checked and opened,
/// so two esox databases opening one file at once never see each other's
/// descriptors as foreign.
static OPEN_FILES: Mutex<Option<HashMap<FileId, usize>>> = Mutex::new(None);

/// The file a database name refers to (a path, or a `file:` URI's path).
pub fn file_path(name: &str) -> Option<PathBuf> {
    let Some(rest) = name.strip_prefix("file:") else {
        return Some(PathBuf::from(name));
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = match rest.strip_prefix("//") {
        // "file://host/path": the path starts at the first slash after the host.
        Some(authority_and_path) => &authority_and_path[authority_and_path.find('/')?..],
        None => rest,
    };
    Some(PathBuf::from(percent_decode(rest)?))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The identity of the file a database name refers to, if it exists.
#[cfg(unix)]
pub fn file_id(name: &str) -> Option<FileId> {
    let meta = fs::metadata(file_path(name)?).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// Elsewhere files have no such identity here: nothing is checked.
#[cfg(not(unix))]
pub fn file_id(_name: &str) -> Option<FileId> {
    None
}

/// How many of this process's file descriptors are open on file `id`
/// (None where the platform does not say: no `/proc/self/fd`).
#[cfg(unix)]
fn descriptors_on(id: FileId) -> Option<usize> {
    let entries = fs::read_dir("/proc/self/fd").ok()?;
    let count = entries
        .filter_map(Result::ok)
        .filter_map(|entry| fs::metadata(entry.path()).ok())
        .filter(|meta| (meta.dev(), meta.ino()) == id)
        .count();
    Some(count)
}

#[cfg(not(unix))]
fn descriptors_on(_id: FileId) -> Option<usize> {
    None
}

/// The registry, locked while a database file is checked and opened.
pub struct Opening(MutexGuard<'static, Option<HashMap<FileId, usize>>>);

impl Opening {
    pub fn begin() -> Self {
        Opening(OPEN_FILES.lock())
    }

    /// A warning if esox has no database open on `name` but this process
    /// has file descriptors open on it: another SQLite library's, most
    /// likely. Only likely: a descriptor can't tell an SQLite connection from
    /// a file opened otherwise (a test's temporary file), so this warns
    /// rather than refuses.
    pub fn check(&self, name: &str) -> Option<String> {
        let id = file_id(name)?;
        if self.0.as_ref().and_then(|open| open.get(&id)).is_some() {
            return None;
        }
        match descriptors_on(id) {
            Some(n) if n > 0 => Some(format!(
                "SQLite database {name} is already open in this process ({n} open \
                 file descriptor(s)): if that is another SQLite library (Python's \
                 sqlite3 module, eventsourcing's SQLite recorders), the two defeat \
                 each other's file locks and can corrupt the database; close those \
                 connections before esox opens the file (and don't open it with \
                 sqlite3 while esox has it open)"
            )),
            _ => None,
        }
    }

    /// Notes that an esox database is open on `name`; undone by the
    /// returned registration's `release` (or drop).
    pub fn register(mut self, name: &str) -> Registration {
        let id = file_id(name);
        if let Some(id) = id {
            *self
                .0
                .get_or_insert_with(HashMap::new)
                .entry(id)
                .or_insert(0) += 1;
        }
        Registration(Mutex::new(id))
    }
}

/// An esox database's place in the registry of open files.
pub struct Registration(Mutex<Option<FileId>>);

impl Registration {
    pub fn none() -> Self {
        Registration(Mutex::new(None))
    }

    /// The file's identity, while registered.
    pub fn file_id(&self) -> Option<FileId> {
        *self.0.lock()
    }

    /// Leaves the registry (after the database's connections are closed).
    pub fn release(&self) {
        let Some(id) = self.0.lock().take() else {
            return;
        };
        let mut open = OPEN_FILES.lock();
        if let Some(map) = open.as_mut() {
            if let Some(count) = map.get_mut(&id) {
                *count -= 1;
                if *count == 0 {
                    map.remove(&id);
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_their_paths() {
        assert_eq!(file_path("a.db"), Some(PathBuf::from("a.db")));
        assert_eq!(file_path("file:a.db?mode=ro"), Some(PathBuf::from("a.db")));
        assert_eq!(
            file_path("file:///tmp/a%20b.db"),
            Some(PathBuf::from("/tmp/a b.db"))
        );
        assert_eq!(
            file_path("file://localhost/tmp/a.db"),
            Some(PathBuf::from("/tmp/a.db"))
        );
    }
}
