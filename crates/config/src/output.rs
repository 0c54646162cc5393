//! How clocklab writes a file or makes a folder: the one place for the rule
//! that no output is written through a path someone else may have planted.
//!
//! - A file is written to a new temporary file beside it (created with
//!   `O_EXCL`, so it follows no link), synced, then
//!   renamed over its name ([`OutputFile`], [`write_file`]): a reader, a
//!   crash or a full disk never sees half of it, and a failed write leaves
//!   nothing behind, not even an empty file.
//! - Many files written together may be synced and renamed on a thread of
//!   their own ([`Committer`]), each as above, while the next is written;
//!   their folders are then synced once, at the end.
//! - A file written as it goes (a log) is created with `O_EXCL`
//!   ([`create_new`], [`create_replacing`]), which follows no link either.
//! - A folder clocklab makes or writes in must be a folder of its own name,
//!   not a symbolic link to one ([`create_dir`], [`create_dir_all`]).
//!
//! A symbolic link (or a folder, or a file) where an output goes is refused
//! with [`Refused`], inside the `io::Error` every writer already returns;
//! [`refusal`] finds it in an error's chain (the binary makes it bad input,
//! exit code 2).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod committer;

pub use committer::{CommitError, Committer};

/// Why an output was not written: what is in its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A symbolic link has the output's name.
    #[error("is a symbolic link, and clocklab never writes through one: remove it, or write elsewhere")]
    SymbolicLink,
    /// A folder has the name of a file to write.
    #[error("is a folder, where clocklab writes a file")]
    Folder,
    /// Something that is not a folder has the name of a folder to make.
    #[error("is not a folder, where clocklab makes or writes in one")]
    NotAFolder,
}

impl Refused {
    fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::AlreadyExists, self)
    }
}

/// The refusal in `error`'s chain, if the error is one.
pub fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if let Some(refused) = error.downcast_ref::<Refused>() {
            return Some(*refused);
        }
        if let Some(refused) = error.downcast_ref::<io::Error>().and_then(|io| io.get_ref()?.downcast_ref::<Refused>())
        {
            return Some(*refused);
        }
        cause = error.source();
    }
    None
}

/// Makes the folder `path` if it does not exist (its parent must); a folder
/// already there is fine, anything else in its place is refused.
pub fn create_dir(path: &Path) -> io::Result<()> {
    match std::fs::create_dir(path) {
        // `mkdir` makes nothing at the far end of a link: on any name
        // already taken it fails, and what holds the name is looked at.
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => check_dir(path),
        Err(error) => Err(error),
    }
}

/// [`create_dir`], making the folders above `path` first if they are
/// missing (as a person named them: a link among them is theirs to keep).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        create_ancestors(parent)?;
    }
    create_dir(path)
}

/// Makes the folder `path` and those above it if they are missing,
/// following links (as a person named them). A file where a folder must be
/// is refused ([`Refused::NotAFolder`]), naming it.
pub fn create_ancestors(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path).map_err(|error| {
        // The first name on the way down that is there and not a folder.
        let file = path
            .ancestors()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .find(|ancestor| std::fs::metadata(ancestor).is_ok_and(|metadata| !metadata.is_dir()));
        match file {
            Some(file) => io::Error::new(
                io::ErrorKind::AlreadyExists,
                NotAFolderAt { path: file.to_path_buf(), refused: Refused::NotAFolder },
            ),
            None => error,
        }
    })
}

/// A file where a folder must be, by its path.
#[derive(Debug, thiserror::Error)]
#[error("{}", path.display())]
struct NotAFolderAt {
    path: PathBuf,
    #[source]
    refused: Refused,
}

fn check_dir(path: &Path) -> io::Result<()> {
    let kind = std::fs::symlink_metadata(path)?.file_type();
    if kind.is_symlink() {
        Err(Refused::SymbolicLink.error())
    } else if kind.is_dir() {
        Ok(())
    } else {
        Err(Refused::NotAFolder.error())
    }
}

/// Creates `path` as a new file for writing; refuses if anything, a link
/// included, has its name.
pub fn create_new(path: &Path) -> io::Result<File> {
    File::options().write(true).create_new(true).open(path).map_err(|error| {
        match std::fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()) {
            Ok(true) => Refused::SymbolicLink.error(),
            _ => error,
        }
    })
}

/// Creates `path` as a new, empty file for writing, in place of a file of
/// that name if there is one (never of a link or a folder: those are
/// refused), for a file written as it goes (a simulated run's log).
pub fn create_replacing(path: &Path) -> io::Result<File> {
    check_file(path)?;
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    create_new(path)
}

/// Writes `bytes` as the file `path`: all of them, or nothing changes (see
/// [`OutputFile`]).
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OutputFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written: a new temporary file beside its path until
/// [`OutputFile::commit`] syncs it and renames it over the path. Dropped
/// without a commit (an error on the way), the temporary file is removed
/// and the path keeps what it had.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    temporary: PathBuf,
    /// The open temporary file; `None` once it is in place.
    file: Option<File>,
}

/// Temporary files made by this process so far, for their names.
static TEMPORARIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl OutputFile {
    /// Starts writing the file `path` (`rw-rw-rw-` less the umask, as a new
    /// file would be). Its folder must exist.
    pub fn create(path: &Path) -> io::Result<OutputFile> {
        OutputFile::create_with_mode(path, 0o666)
    }

    /// [`OutputFile::create`] with the permission bits `mode` (less the
    /// umask): `0o600` for a file only its owner may read.
    pub fn create_with_mode(path: &Path, mode: u32) -> io::Result<OutputFile> {
        use std::os::unix::fs::OpenOptionsExt as _;
        check_file(path)?;
        let name = path.file_name().map_or_else(|| "output".into(), |name| name.to_string_lossy());
        loop {
            // `O_EXCL`: a name already taken, by a link someone planted
            // included, is never opened; the next number is tried.
            let number = TEMPORARIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let temporary = path.with_file_name(format!(".{name}.{}.{number}.tmp", std::process::id()));
            match File::options().write(true).create_new(true).mode(mode).open(&temporary) {
                Ok(file) => return Ok(OutputFile { path: path.to_path_buf(), temporary, file: Some(file) }),
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// The path the file will have.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file and puts it in place, replacing what had its name
    /// (not through a link: a link put there meanwhile is refused).
    pub fn commit(self) -> io::Result<()> {
        self.finish(false)
    }

    /// [`OutputFile::commit`] for a file that must not replace anything:
    /// fails if the path has been taken meanwhile.
    pub fn commit_new(self) -> io::Result<()> {
        self.finish(true)
    }

    fn finish(self, new: bool) -> io::Result<()> {
        match self.put_in_place(new)? {
            Some(folder) => sync_folder(&folder),
            None => Ok(()),
        }
    }

    /// Syncs the file and gives it its name; returns the folder that holds
    /// the name, which is to be synced for the name to last (none for a
    /// path without a folder).
    fn put_in_place(mut self, new: bool) -> io::Result<Option<PathBuf>> {
        let file = self.file.as_mut().expect("the file is open until it is in place");
        file.flush()?;
        file.sync_data()?;
        if new {
            // A second name, which fails if the path is taken; then the
            // temporary one goes (on drop).
            std::fs::hard_link(&self.temporary, &self.path)?;
        } else {
            check_file(&self.path)?;
            // `rename` replaces the name itself: a link there would be
            // replaced, never followed.
            std::fs::rename(&self.temporary, &self.path)?;
            self.file = None;
        }
        Ok(self.path.parent().filter(|parent| !parent.as_os_str().is_empty()).map(Path::to_path_buf))
    }

    fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is open until it is in place")
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.file().write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file().write_all(bytes)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

/// Syncs `folder`: the new names in it are durable once it is.
fn sync_folder(folder: &Path) -> io::Result<()> {
    File::open(folder)?.sync_all()
}

/// Refuses a link or a folder where the file `path` goes.
fn check_file(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(Refused::SymbolicLink.error()),
        Ok(metadata) if metadata.is_dir() => Err(Refused::Folder.error()),
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    pub(super) fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn files_are_replaced_whole_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        write_file(&path, b"first").unwrap();
        write_file(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["m.json"], "no temporary file is left");
        // An error on the way: the file keeps what it had, and no temporary file stays.
        let mut file = OutputFile::create(&path).unwrap();
        file.write_all(b"half").unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(dir.path()), ["m.json"]);
        // A folder that does not exist: an error, and nothing written.
        assert!(write_file(&dir.path().join("missing/m.json"), b"x").is_err());
    }

    #[test]
    fn planted_links_are_refused_and_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, "precious").unwrap();
        let victim_dir = dir.path().join("elsewhere");
        std::fs::create_dir(&victim_dir).unwrap();

        let link = dir.path().join("diagram.html");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let error = write_file(&link, b"page").unwrap_err();
        assert_eq!(refusal(&error), Some(Refused::SymbolicLink), "{error}");
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
        let error = create_new(&link).unwrap_err();
        assert_eq!(refusal(&error), Some(Refused::SymbolicLink), "{error}");
        assert_eq!(refusal(&create_replacing(&link).unwrap_err()), Some(Refused::SymbolicLink));
        // A link to nowhere is refused as well (a new file would be made at its far end).
        let dangling = dir.path().join("machine_1.log");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert_eq!(refusal(&create_new(&dangling).unwrap_err()), Some(Refused::SymbolicLink));
        assert_eq!(refusal(&write_file(&dangling, b"x").unwrap_err()), Some(Refused::SymbolicLink));
        assert!(!dir.path().join("nowhere").exists());

        let analysis = dir.path().join("analysis");
        std::os::unix::fs::symlink(&victim_dir, &analysis).unwrap();
        assert_eq!(refusal(&create_dir(&analysis).unwrap_err()), Some(Refused::SymbolicLink));
        assert_eq!(refusal(&create_dir_all(&analysis).unwrap_err()), Some(Refused::SymbolicLink));

        assert_eq!(refusal(&write_file(&victim_dir, b"x").unwrap_err()), Some(Refused::Folder));
        assert_eq!(refusal(&create_dir(&victim).unwrap_err()), Some(Refused::NotAFolder));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(names(&victim_dir).is_empty());
        assert_eq!(names(dir.path()), ["analysis", "diagram.html", "elsewhere", "machine_1.log", "victim.txt"]);
        // A file of its own name is replaced.
        let log = dir.path().join("elsewhere/machine_2.log");
        std::fs::write(&log, "old").unwrap();
        create_replacing(&log).unwrap();
        assert_eq!(std::fs::read(&log).unwrap(), b"");
        std::fs::remove_file(&log).unwrap();
        // A folder of its own name is fine, and so is making one.
        create_dir(&victim_dir).unwrap();
        create_dir_all(&dir.path().join("a/b/c")).unwrap();
        assert!(dir.path().join("a/b/c").is_dir());
    }

    #[test]
    fn a_new_file_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lab.toml");
        let mut file = OutputFile::create_with_mode(&path, 0o600).unwrap();
        file.write_all(b"token").unwrap();
        file.commit_new().unwrap();
        std::fs::write(dir.path().join("other"), "x").unwrap();
        let mut again = OutputFile::create(&path).unwrap();
        again.write_all(b"another").unwrap();
        assert_eq!(again.commit_new().unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"token");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(names(dir.path()), ["lab.toml", "other"]);
    }
}
