//! A machine's logs sent home as they grow: from the byte the orchestrator
//! has, whole lines while the machine runs, everything at the end, and each
//! log's length and CRC-32 last, for the orchestrator to check its copy.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use base64::Engine;
use clocklab_log::LogFormat;
use clocklab_orchestrate::protocol::{FromMachine, LogEnd};

use super::Out;

/// The most bytes of a log one `log` line carries (before base64).
const CHUNK_BYTES: usize = 48 * 1024;

/// The logs of one machine, and how far each was sent.
#[derive(Debug)]
pub(super) struct Shipper {
    files: Vec<(LogFormat, PathBuf, u64)>,
}

impl Shipper {
    /// Sends `logs`, each from the byte `ship_from` gives (0 if it gives none).
    pub(super) fn new(logs: &[(LogFormat, PathBuf)], ship_from: &[(LogFormat, u64)]) -> Shipper {
        let files = logs
            .iter()
            .map(|(format, path)| {
                let from = ship_from.iter().find(|(f, _)| f == format).map_or(0, |(_, from)| *from);
                (*format, path.clone(), from)
            })
            .collect();
        Shipper { files }
    }

    /// Sends what the logs gained since the last call: whole lines only
    /// when `whole_lines` (the machine may be writing one). Returns whether
    /// anything was sent.
    pub(super) fn ship(&mut self, out: &Out, whole_lines: bool) -> io::Result<bool> {
        let mut sent = false;
        for (format, path, from) in &mut self.files {
            let mut file = match File::open(&*path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            file.seek(SeekFrom::Start(*from))?;
            let mut buffer = vec![0u8; CHUNK_BYTES];
            loop {
                let n = read_full(&mut file, &mut buffer)?;
                let mut bytes = &buffer[..n];
                if whole_lines {
                    match bytes.iter().rposition(|&b| b == b'\n') {
                        Some(last) => bytes = &bytes[..=last],
                        // A line longer than a chunk goes as it is: the
                        // machine never writes one, and it must not stall.
                        None if n == CHUNK_BYTES => {}
                        None => break,
                    }
                }
                if bytes.is_empty() {
                    break;
                }
                let data = base64::engine::general_purpose::STANDARD.encode(bytes);
                super::say(out, &FromMachine::Log { format: *format, offset: *from, data });
                *from += bytes.len() as u64;
                sent = true;
                if n < CHUNK_BYTES {
                    break;
                }
                file.seek(SeekFrom::Start(*from))?;
            }
        }
        Ok(sent)
    }

    /// Each log's length and CRC-32 as the host has it.
    pub(super) fn ends(&self) -> io::Result<Vec<LogEnd>> {
        self.files
            .iter()
            .map(|(format, path, _)| {
                let len = match std::fs::metadata(path) {
                    Ok(meta) => meta.len(),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
                    Err(error) => return Err(error),
                };
                Ok(LogEnd { format: *format, len, crc32: clocklab_orchestrate::remote::crc_of(path)? })
            })
            .collect()
    }

    /// Whether the first log's last line is `Stopped`: the machine is done with it.
    pub(super) fn ended(&self) -> bool {
        let Some((_, path, _)) = self.files.first() else { return true };
        matches!(clocklab_log::last_record(path), Ok(Some(record)) if record.event == clocklab_log::Event::Stopped)
    }

    /// The bytes of every log so far, to see whether they still grow.
    pub(super) fn sizes(&self) -> Vec<u64> {
        self.files.iter().map(|(_, path, _)| std::fs::metadata(path).map_or(0, |m| m.len())).collect()
    }
}

/// Reads until `buffer` is full or the file ends.
fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buffer.len() {
        match file.read(&mut buffer[n..])? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}
