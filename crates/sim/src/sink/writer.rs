//! The log files' writer threads: the simulator formats whole lines into
//! one buffer per file and hands each full buffer to a thread of its own,
//! which writes it while the simulation goes on; a second thread syncs each
//! file every few megabytes behind it. The system calls (the copy into the
//! page cache, the file system's bookkeeping) and the wait for the disk are
//! then off the simulation's thread: in a run that writes text logs they were
//! about half its time.
//!
//! Each file's buffers are written in the order they were handed over, so a
//! file's bytes are those a single thread would write. A write that fails
//! part way cuts its file back to the last whole line it took; the file then
//! takes nothing more, and the failure is the error the run ends with.

use std::io::{self, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// The buffer of each log file; large enough that a write to the file system
/// carries hundreds of lines.
pub(crate) const FILE_BUFFER_BYTES: usize = 64 * 1024;

/// Full buffers waiting for the writer thread at most; past them the
/// simulation waits for the disk. With the buffer each file fills, the
/// memory of the logs is at most (files + this + 2) buffers.
const BUFFERS_IN_FLIGHT: usize = 8;

/// A file is synced in the background each time this much more of it was
/// written, so that the sync at the end waits only for the last of it.
const SYNC_EVERY_BYTES: u64 = 2 * 1024 * 1024;

/// A log file as the writer threads use it: written and cut back by one,
/// synced by the other.
pub(crate) trait LogFile: Send + Sync + 'static {
    /// Writes some of `bytes` at the end of the file.
    fn append(&self, bytes: &[u8]) -> io::Result<usize>;

    /// Cuts the file back to its first `len` bytes.
    fn truncate(&self, len: u64) -> io::Result<()>;

    /// Puts what was written on the disk.
    fn sync(&self) -> io::Result<()>;
}

impl LogFile for std::fs::File {
    fn append(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut file = self;
        file.write(bytes)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.set_len(len)?;
        let mut file = self;
        file.seek(io::SeekFrom::Start(len)).map(drop)
    }

    fn sync(&self) -> io::Result<()> {
        self.sync_data()
    }
}

/// A log file that only ever holds whole lines: when a write fails part way
/// (a full disk), the file is cut back to the last whole line it took.
#[derive(Debug)]
struct WholeLines<F: LogFile> {
    file: Arc<F>,
    /// Bytes in the file, every one of them in a whole line.
    len: u64,
    /// Bytes written since the last background sync was asked for.
    unsynced: u64,
}

impl<F: LogFile> WholeLines<F> {
    /// Writes `lines` (whole lines) to the file; on an error, cuts the file
    /// back to its last whole line.
    fn put(&mut self, lines: &[u8]) -> io::Result<()> {
        let mut written = 0;
        while written < lines.len() {
            match self.file.append(&lines[written..]) {
                Ok(0) => return Err(self.cut(lines, written, io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(self.cut(lines, written, error)),
            }
        }
        self.len += written as u64;
        self.unsynced += written as u64;
        Ok(())
    }

    /// After the first `written` bytes of `lines` reached the file and a
    /// write failed with `error`: keeps the whole lines of them, and gives the
    /// error back (the first one: a failed cut says less about the cause).
    fn cut(&mut self, lines: &[u8], written: usize, error: io::Error) -> io::Error {
        let whole = lines[..written].iter().rposition(|&byte| byte == b'\n').map_or(0, |at| at + 1);
        if whole < written {
            let _ = self.file.truncate(self.len + whole as u64);
        }
        self.len += whole as u64;
        error
    }
}

/// Writes every buffer `buffers` gives to its file, gives each emptied
/// buffer to `give_back`, and asks a thread of its own (started the first
/// time a file has `SYNC_EVERY_BYTES` unsynced) to sync a file in the
/// background; then syncs every file that did not fail. A file that fails
/// takes nothing more and sets `failed`; gives the first error.
fn write_files<F: LogFile>(
    files: Vec<F>,
    paths: &[PathBuf],
    buffers: impl Iterator<Item = (usize, Vec<u8>)>,
    mut give_back: impl FnMut(Vec<u8>),
    failed: &Arc<AtomicBool>,
) -> io::Result<()> {
    let shared: Vec<Arc<F>> = files.into_iter().map(Arc::new).collect();
    let mut files: Vec<Option<WholeLines<F>>> =
        shared.iter().map(|file| Some(WholeLines { file: Arc::clone(file), len: 0, unsynced: 0 })).collect();
    let mut first_error = None;
    let mut fail = |idx: usize, error: io::Error, files: &mut Vec<Option<WholeLines<F>>>| {
        files[idx] = None;
        first_error.get_or_insert_with(|| with_path(error, &paths[idx]));
        failed.store(true, Ordering::Release);
    };
    // Started when first needed; `None` inside if it could not be (the sync
    // at the end still covers every file).
    let mut syncer: Option<Option<Syncer>> = None;
    for (idx, mut lines) in buffers {
        if let Some(file) = &mut files[idx] {
            match file.put(&lines) {
                Ok(()) if file.unsynced >= SYNC_EVERY_BYTES => {
                    file.unsynced = 0;
                    if let Some(syncer) =
                        syncer.get_or_insert_with(|| Syncer::start(shared.clone(), Arc::clone(failed)).ok())
                    {
                        syncer.ask(idx);
                    }
                }
                Ok(()) => {}
                Err(error) => fail(idx, error, &mut files),
            }
        }
        lines.clear();
        give_back(lines);
    }
    // A background sync that failed is the file's error: the kernel says a
    // failed write-back once per open file, and this one is shared, so the
    // last sync would not say it again. (A write error found after it, on
    // another file, is said first: two failures in one run.)
    if let Some(Some(syncer)) = syncer {
        for (idx, error) in syncer.finish().into_iter().enumerate() {
            if let Some(error) = error
                && files[idx].is_some()
            {
                fail(idx, error, &mut files);
            }
        }
    }
    for idx in 0..files.len() {
        if let Some(file) = &files[idx]
            && let Err(error) = file.file.sync()
        {
            fail(idx, error, &mut files);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The thread that syncs files in the background, when asked; a sync that
/// fails sets `failed`, so that the simulation stops at its next hand-over.
struct Syncer {
    ask: mpsc::Sender<usize>,
    /// Gives each file's first error.
    thread: JoinHandle<Vec<Option<io::Error>>>,
}

impl Syncer {
    fn start<F: LogFile>(files: Vec<Arc<F>>, failed: Arc<AtomicBool>) -> io::Result<Syncer> {
        let (ask, asked) = mpsc::channel::<usize>();
        let thread = std::thread::Builder::new().name("clocklab-logs-sync".into()).spawn(move || {
            let mut errors: Vec<Option<io::Error>> = files.iter().map(|_| None).collect();
            for idx in asked {
                if errors[idx].is_none() {
                    errors[idx] = files[idx].sync().err();
                    if errors[idx].is_some() {
                        failed.store(true, Ordering::Release);
                    }
                }
            }
            errors
        })?;
        Ok(Syncer { ask, thread })
    }

    fn ask(&self, idx: usize) {
        // A syncer that ended early (a panic) leaves the sync at the end.
        let _ = self.ask.send(idx);
    }

    /// Waits for the syncs asked for; gives each file's first error.
    fn finish(self) -> Vec<Option<io::Error>> {
        drop(self.ask);
        self.thread.join().unwrap_or_default()
    }
}

/// The writer thread of a set of log files, and the buffers it hands back.
/// The thread starts when the first buffer is full: a run whose logs never
/// fill one (most short runs) writes them at the end, on its own thread,
/// and starts none.
#[derive(Debug)]
pub(crate) struct FileWriter<F: LogFile> {
    /// The files and their names, until the thread starts.
    idle: Option<(Vec<F>, Vec<PathBuf>)>,
    /// Full buffers, with the index of their file; `None` until the thread
    /// starts and once finished.
    full: Option<SyncSender<(usize, Vec<u8>)>>,
    /// Buffers written and emptied, to be filled again.
    spare: Option<Receiver<Vec<u8>>>,
    /// The last lines of each file, when the thread never started.
    last: Vec<(usize, Vec<u8>)>,
    /// Set when a file failed.
    failed: Arc<AtomicBool>,
    /// Gives the first error, after every file that did not fail is synced.
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl<F: LogFile> FileWriter<F> {
    /// A writer of `files`; `paths[idx]` names `files[idx]` in its errors.
    pub(crate) fn new(files: Vec<F>, paths: Vec<PathBuf>) -> FileWriter<F> {
        FileWriter {
            idle: Some((files, paths)),
            full: None,
            spare: None,
            last: Vec::new(),
            failed: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// Starts the writer thread, unless it was started. If it cannot be
    /// started, the files stay here and are written at the end.
    fn start(&mut self) -> io::Result<()> {
        if self.idle.is_none() {
            return Ok(());
        }
        let (files_tx, files_rx) = mpsc::channel::<(Vec<F>, Vec<PathBuf>)>();
        let (full, full_rx) = mpsc::sync_channel::<(usize, Vec<u8>)>(BUFFERS_IN_FLIGHT);
        let (spare_tx, spare) = mpsc::channel();
        let failed = Arc::clone(&self.failed);
        let write = move || {
            let Ok((files, paths)) = files_rx.recv() else { return Ok(()) };
            // The simulation may have stopped taking buffers back.
            let give_back = |lines| drop(spare_tx.send(lines));
            write_files(files, &paths, full_rx.into_iter(), give_back, &failed)
        };
        let thread = std::thread::Builder::new().name("clocklab-logs".into()).spawn(write).map_err(|error| {
            io::Error::new(error.kind(), format!("cannot start a thread to write the logs: {error}"))
        })?;
        if let Some(files) = self.idle.take() {
            // The thread waits for them: it cannot have ended.
            let _ = files_tx.send(files);
        }
        self.thread = Some(thread);
        self.full = Some(full);
        self.spare = Some(spare);
        Ok(())
    }

    /// Hands `lines`, whole lines of file `idx`, to the writer thread
    /// (starting it the first time), and gives an empty buffer back.
    ///
    /// # Errors
    /// When a file has failed (or the thread could not start, or ended
    /// early): `lines` are kept to be written at the end, and the caller is
    /// to hand over the rest of every file and [`FileWriter::finish`], whose
    /// error (the first file's that failed) is the one to give.
    pub(crate) fn hand_over(&mut self, idx: usize, lines: Vec<u8>) -> io::Result<Vec<u8>> {
        if self.failed.load(Ordering::Acquire) {
            self.hand_over_last(idx, lines);
            return Err(io::Error::other("a log file failed"));
        }
        if let Err(error) = self.start() {
            self.hand_over_last(idx, lines);
            return Err(error);
        }
        let Some(full) = &self.full else {
            self.hand_over_last(idx, lines);
            return Err(io::Error::other("the log files were already finished"));
        };
        if full.send((idx, lines)).is_err() {
            // The thread ended early (a panic); `finish` says so.
            return Err(io::Error::other("the log writer stopped"));
        }
        let spare = self.spare.as_ref().and_then(|spare| spare.try_recv().ok());
        Ok(spare.unwrap_or_else(|| Vec::with_capacity(FILE_BUFFER_BYTES + 1024)))
    }

    /// Whether the writer thread was started.
    #[cfg(test)]
    pub(crate) fn started(&self) -> bool {
        self.spare.is_some()
    }

    /// Hands the last lines of file `idx` over, whether or not a file
    /// failed: at the end every file is written as far as it goes.
    pub(crate) fn hand_over_last(&mut self, idx: usize, lines: Vec<u8>) {
        match &self.full {
            // A thread that ended early is said by `finish`.
            Some(full) => drop(full.send((idx, lines))),
            None => self.last.push((idx, lines)),
        }
    }

    /// Writes what was handed over (on this thread, if the writer thread
    /// never started), syncs every file that did not fail, and lets the
    /// threads end; gives the first error. Later calls give `Ok`.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        if let Some((files, paths)) = self.idle.take() {
            return write_files(files, &paths, std::mem::take(&mut self.last).into_iter(), drop, &self.failed);
        }
        self.full = None;
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the log writer thread panicked")),
        }
    }
}

impl<F: LogFile> Drop for FileWriter<F> {
    /// Writes what was handed over and waits for the thread, so that the
    /// files are complete when the run's folder is read.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The error with the file it concerns, so the user knows where to look.
pub(crate) fn with_path(error: io::Error, path: &Path) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}
