//! A log file in memory for the tests, on a disk that fills and whose
//! write-back may fail.
#![cfg(test)]

use std::io;
use std::sync::{Arc, Mutex};

use super::writer::LogFile;

/// What a [`TestDisk`] file holds, shared with the test.
#[derive(Debug, Default)]
pub(super) struct Disk {
    pub(super) bytes: Vec<u8>,
    pub(super) syncs: u32,
}

/// A file on a disk with room for `room` bytes: a write past it takes what
/// fits, then fails as a full disk does.
#[derive(Debug)]
pub(super) struct TestDisk {
    disk: Arc<Mutex<Disk>>,
    room: usize,
    /// Whether the first sync fails, as a failed write-back does.
    pub(super) bad_sync: bool,
}

impl TestDisk {
    pub(super) fn new(room: usize) -> (TestDisk, Arc<Mutex<Disk>>) {
        let disk = Arc::new(Mutex::new(Disk::default()));
        (TestDisk { disk: Arc::clone(&disk), room, bad_sync: false }, disk)
    }
}

impl LogFile for TestDisk {
    fn append(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut disk = self.disk.lock().unwrap();
        let fits = bytes.len().min(self.room - disk.bytes.len());
        if fits == 0 {
            return Err(io::Error::from_raw_os_error(28));
        }
        disk.bytes.extend_from_slice(&bytes[..fits]);
        Ok(fits)
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.disk.lock().unwrap().bytes.truncate(len as usize);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut disk = self.disk.lock().unwrap();
        disk.syncs += 1;
        if self.bad_sync && disk.syncs == 1 {
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    }
}
