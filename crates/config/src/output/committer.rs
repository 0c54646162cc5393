//! Output files put in place on a thread of their own.
//!
//! Syncing a file blocks the thread that asks, for about a millisecond on
//! a disk, and so does syncing its folder after the rename: an analysis
//! writes some thirty files, so its writers would wait tens of
//! milliseconds. A [`Committer`] takes each written file and does the
//! waiting on its own thread: it syncs the file and renames it over its
//! name (each file whole or not at all, as [`OutputFile::commit`] does),
//! and syncs each folder once, after the last rename in it.

use std::collections::BTreeSet;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{OutputFile, sync_folder};

/// Files handed over and not yet in place, at most: each holds an open
/// file, so a writer that runs far ahead waits.
const WAITING: usize = 32;

/// What stopped a file being put in place, or its folder synced. What the
/// system said is its source, for the caller to print after the path
/// (with `{:#}`).
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
pub struct CommitError {
    /// The file, or the folder.
    pub path: PathBuf,
    /// The system's error.
    #[source]
    pub source: io::Error,
}

/// A thread that puts written files in place, in the order they are
/// handed over.
///
/// After the first failure it puts no more files in place (their temporary
/// files are removed); the folders of those already in place are synced
/// all the same. [`Committer::finish`] says the failure.
#[derive(Debug)]
pub struct Committer {
    files: SyncSender<OutputFile>,
    thread: JoinHandle<Result<(), CommitError>>,
}

impl Committer {
    /// Starts the thread.
    ///
    /// # Panics
    ///
    /// If the system cannot start a thread.
    pub fn start() -> Committer {
        let (files, waiting) = sync_channel::<OutputFile>(WAITING);
        let thread = std::thread::spawn(move || {
            let mut folders = BTreeSet::new();
            let mut failed = None;
            for file in waiting {
                if failed.is_some() {
                    // Dropped: its temporary file goes, its path keeps what it had.
                    continue;
                }
                let path = file.path().to_path_buf();
                match file.put_in_place(false) {
                    Ok(folder) => folders.extend(folder),
                    Err(source) => failed = Some(CommitError { path, source }),
                }
            }
            for folder in folders {
                if let Err(source) = sync_folder(&folder) {
                    failed.get_or_insert(CommitError { path: folder, source });
                }
            }
            failed.map_or(Ok(()), Err)
        });
        Committer { files, thread }
    }

    /// Hands `file`, written, over to be synced and put in place (waiting
    /// for room if many files wait).
    ///
    /// # Panics
    ///
    /// Never: the thread takes files until [`Committer::finish`].
    pub fn commit(&self, file: OutputFile) {
        // The thread ends only once `finish` has dropped the sender.
        self.files.send(file).expect("the committer's thread runs until it is finished");
    }

    /// Writes `bytes` as the file `path` and hands it over: an error here
    /// is in writing it, and the path keeps what it had; one in putting it
    /// in place comes from [`Committer::finish`].
    pub fn write_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut file = OutputFile::create(path)?;
        file.write_all(bytes)?;
        self.commit(file);
        Ok(())
    }

    /// Waits until every file handed over is in place and its folder
    /// synced; the first failure, if one stopped that.
    ///
    /// # Panics
    ///
    /// Never: putting files in place does not panic.
    pub fn finish(self) -> Result<(), CommitError> {
        drop(self.files);
        self.thread.join().expect("putting files in place never panics")
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::names;
    use super::*;

    #[test]
    fn files_are_in_place_once_finished() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("figures");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("old.csv"), "old").unwrap();
        let committer = Committer::start();
        // More than can wait at once, from two threads, in two folders.
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for i in 0..WAITING + 8 {
                    committer.write_file(&sub.join(format!("{i}.svg")), format!("svg {i}").as_bytes()).unwrap();
                }
            });
            committer.write_file(&dir.path().join("old.csv"), b"new").unwrap();
            let mut file = OutputFile::create(&dir.path().join("report.html")).unwrap();
            file.write_all(b"<html>").unwrap();
            committer.commit(file);
        });
        committer.finish().unwrap();
        assert_eq!(names(dir.path()), ["figures", "old.csv", "report.html"], "no temporary file is left");
        assert_eq!(std::fs::read(dir.path().join("old.csv")).unwrap(), b"new");
        assert_eq!(std::fs::read(dir.path().join("report.html")).unwrap(), b"<html>");
        assert_eq!(names(&sub).len(), WAITING + 8);
        assert_eq!(std::fs::read(sub.join("7.svg")).unwrap(), b"svg 7");
    }

    #[test]
    fn the_first_failure_is_said_and_stops_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.csv");
        let planted = dir.path().join("summary.json");
        let after = dir.path().join("after.csv");
        let committer = Committer::start();
        committer.write_file(&first, b"first").unwrap();
        // A folder made where the file goes after it was started: its
        // rename fails, and the file after it is not put in place.
        let mut file = OutputFile::create(&planted).unwrap();
        file.write_all(b"{}").unwrap();
        std::fs::create_dir(&planted).unwrap();
        committer.commit(file);
        committer.write_file(&after, b"after").unwrap();
        let error = committer.finish().unwrap_err();
        assert_eq!(error.path, planted);
        assert_eq!(super::super::refusal(&error.source), Some(super::super::Refused::Folder), "{error}");
        assert_eq!(error.to_string(), planted.display().to_string());
        assert_eq!(std::fs::read(&first).unwrap(), b"first");
        assert!(planted.is_dir());
        assert_eq!(names(dir.path()), ["first.csv", "summary.json"], "the rest's temporary files are removed");
    }
}
