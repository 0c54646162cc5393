//! The orchestrator's copy of a remote machine's logs, made from the bytes
//! its agent sends as the logs grow, and checked against the host's length
//! and CRC-32 at the end.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use clocklab_log::LogFormat;

use crate::protocol::LogEnd;

/// One log's copy.
#[derive(Debug)]
struct CopyFile {
    format: LogFormat,
    path: PathBuf,
    /// Open once the first bytes came.
    file: Option<File>,
    /// The bytes it holds.
    len: u64,
}

/// The copies of one machine's logs, in the run folder.
#[derive(Debug)]
pub(crate) struct LocalCopy {
    files: Vec<CopyFile>,
}

impl LocalCopy {
    /// The copies of `logs`: what an earlier incarnation's agent sent is
    /// kept, and the next bytes go after it.
    pub(crate) fn new(logs: &[(LogFormat, PathBuf)]) -> LocalCopy {
        let files = logs
            .iter()
            .map(|(format, path)| CopyFile {
                format: *format,
                path: path.clone(),
                file: None,
                len: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            })
            .collect();
        LocalCopy { files }
    }

    /// The bytes the copy of each log holds: where its agent starts.
    pub(crate) fn lengths(&self) -> Vec<(LogFormat, u64)> {
        self.files.iter().map(|file| (file.format, file.len)).collect()
    }

    /// Takes `bytes` of `format`'s log from `offset`: bytes the copy has
    /// already are skipped (an agent that resumed sends from where it was
    /// told); a gap is an error.
    pub(crate) fn append(&mut self, format: LogFormat, offset: u64, bytes: &[u8]) -> Result<(), String> {
        let Some(copy) = self.files.iter_mut().find(|file| file.format == format) else {
            return Err(format!("bytes of a {format:?} log that the machine does not write"));
        };
        if offset > copy.len {
            return Err(format!(
                "{}: bytes from {offset} arrived, but the copy ends at {} (a gap)",
                copy.path.display(),
                copy.len
            ));
        }
        let skip = usize::try_from(copy.len - offset).unwrap_or(usize::MAX);
        let Some(new) = bytes.get(skip..).filter(|new| !new.is_empty()) else { return Ok(()) };
        if copy.file.is_none() {
            // The first incarnation's copy is new; a later one's goes on after it.
            let file = OpenOptions::new()
                .append(true)
                .create_new(copy.len == 0 && !copy.path.exists())
                .open(&copy.path)
                .map_err(|error| format!("cannot write {}: {error}", copy.path.display()))?;
            copy.file = Some(file);
        }
        let file = copy.file.as_mut().expect("opened above");
        file.write_all(new).map_err(|error| format!("cannot write {}: {error}", copy.path.display()))?;
        copy.len += new.len() as u64;
        Ok(())
    }

    /// Checks every copy against its log's end on the host: the same
    /// length, the same CRC-32. Syncs the copies.
    pub(crate) fn verify(&mut self, ends: &[LogEnd]) -> Result<(), String> {
        for copy in &mut self.files {
            let Some(end) = ends.iter().find(|end| end.format == copy.format) else {
                return Err(format!("{}: the host did not say how long its log is", copy.path.display()));
            };
            if let Some(file) = &copy.file {
                file.sync_data().map_err(|error| format!("cannot write {}: {error}", copy.path.display()))?;
            }
            let crc32 = crc_of(&copy.path).map_err(|error| format!("cannot read {}: {error}", copy.path.display()))?;
            if (copy.len, crc32) != (end.len, end.crc32) {
                return Err(format!(
                    "{}: the copy has {} bytes (CRC-32 {crc32:08x}), the host's log {} bytes (CRC-32 {:08x})",
                    copy.path.display(),
                    copy.len,
                    end.len,
                    end.crc32
                ));
            }
        }
        Ok(())
    }
}

/// The CRC-32 of a file's bytes (0 for a file that does not exist: no bytes).
pub fn crc_of(path: &Path) -> std::io::Result<u32> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(crc32fast::hash(&[])),
        Err(error) => return Err(error),
    };
    let mut hasher = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buffer[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_resent_are_skipped_a_gap_is_an_error_and_the_end_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("machine_1.log");
        let mut copy = LocalCopy::new(&[(LogFormat::Text, path.clone())]);
        copy.append(LogFormat::Text, 0, b"one\n").unwrap();
        // An agent that resumed sends again from an earlier byte.
        copy.append(LogFormat::Text, 0, b"one\ntwo\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\n");
        let gap = copy.append(LogFormat::Text, 20, b"x\n").unwrap_err();
        assert!(gap.contains("a gap"), "{gap}");
        let right = LogEnd { format: LogFormat::Text, len: 8, crc32: crc32fast::hash(b"one\ntwo\n") };
        copy.verify(&[right]).unwrap();
        let longer = LogEnd { len: 12, ..right };
        assert!(copy.verify(&[longer]).unwrap_err().contains("the host's log 12 bytes"));
        let changed = LogEnd { crc32: crc32fast::hash(b"one\nTWO\n"), ..right };
        assert!(copy.verify(&[changed]).is_err());
        // A later incarnation's copy goes on after what is there.
        let mut again = LocalCopy::new(&[(LogFormat::Text, path.clone())]);
        assert_eq!(again.lengths(), [(LogFormat::Text, 8)]);
        again.append(LogFormat::Text, 8, b"three\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one\ntwo\nthree\n");
    }
}
