//! The log files' buffers and writer threads, on test disks: whole lines
//! whatever fails, the error naming the file, every other file written as
//! far as it goes, and the same bytes as a writer of one line at a time.
#![cfg(test)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clocklab_log::{Event, LogFormat, LogReader, LogWriter, Record};
use clocklab_model::HlcStamp;

use super::test_disk::{Disk, TestDisk};
use super::*;

fn line(k: u64) -> Record {
    Record::new(1, Event::Internal, k, 0, 1_767_225_600_000_000 + k as i64 * 1_000)
}

/// Text log files on `disks`, named `<idx>.log`.
fn buffered(disks: Vec<TestDisk>) -> Buffered<TestDisk> {
    let files =
        disks.into_iter().enumerate().map(|(idx, disk)| (disk, PathBuf::from(format!("{idx}.log")), LogFormat::Text));
    Buffered::new(files.collect())
}

/// Writes lines `1..=n` to every file in turn, as the simulator does, then
/// finishes. Gives the first error, and the line it came at.
fn write_lines(files: &mut Buffered<TestDisk>, n: u64) -> Result<(), (u64, io::Error)> {
    for k in 1..=n {
        for idx in 0..files.buffers.len() {
            files.write(idx, &line(k)).map_err(|error| (k, error))?;
        }
    }
    files.finish().map_err(|error| (n, error))
}

/// The clocks of the lines `disk` holds, each line checked whole.
fn clocks(disk: &Mutex<Disk>) -> Vec<u64> {
    let disk = disk.lock().unwrap();
    assert!(disk.bytes.is_empty() || disk.bytes.ends_with(b"\n"), "the last line is whole");
    let mut reader = LogReader::new(&disk.bytes[..]);
    let clocks = reader.by_ref().map(|l| l.record.logical_clock).collect();
    assert_eq!(reader.diagnostics().n_skipped, 0);
    assert!(!reader.diagnostics().truncated_last_line);
    clocks
}

fn one_to(n: usize) -> Vec<u64> {
    (1..=n as u64).collect()
}

#[test]
fn a_full_disk_leaves_whole_lines_and_names_the_file() {
    for room in [0, 1, 100, 150_000, 200_001] {
        let (file, disk) = TestDisk::new(room);
        let mut files = buffered(vec![file]);
        let (_, error) = write_lines(&mut files, 5_000).expect_err("the disk fills");
        assert_eq!(error.kind(), io::Error::from_raw_os_error(28).kind(), "the disk's own error: {error}");
        assert!(error.to_string().starts_with("0.log: "), "{error}");
        let kept = clocks(&disk);
        assert_eq!(kept, one_to(kept.len()), "room {room}: every line kept is in order");
        assert!(disk.lock().unwrap().bytes.len() <= room);
        assert!(room < 150_000 || kept.len() > 1_000, "room {room}: what fitted was kept");
        assert_eq!(disk.lock().unwrap().syncs, 0, "room {room}: a file that failed is not synced");
    }
}

#[test]
fn a_file_that_fails_leaves_the_others_written_as_far_as_they_go_and_synced() {
    let (full, full_disk) = TestDisk::new(100_000);
    let (roomy, roomy_disk) = TestDisk::new(usize::MAX);
    let mut files = buffered(vec![full, roomy]);
    let (at, error) = write_lines(&mut files, 20_000).expect_err("the first file fills");
    assert!(error.to_string().starts_with("0.log: "), "{error}");
    // The first file fails on its second buffer (100 KB of room); the run
    // stops at the first hand-over after it, at line `at`, and the other
    // file keeps every line it was given: up to `at`, or the one before if
    // the run stopped at the first file's turn.
    let full_clocks = clocks(&full_disk);
    assert!(full_clocks.len() > 400, "{}", full_clocks.len());
    assert!(full_disk.lock().unwrap().bytes.len() <= 100_000);
    let roomy_clocks = clocks(&roomy_disk);
    assert!([at - 1, at].contains(&(roomy_clocks.len() as u64)), "{} lines, stopped at {at}", roomy_clocks.len());
    assert_eq!(roomy_clocks, one_to(roomy_clocks.len()));
    assert_eq!(roomy_disk.lock().unwrap().syncs, 1);
}

#[test]
fn a_write_back_that_fails_in_the_background_stops_the_run_and_is_its_error() {
    let (good, good_disk) = TestDisk::new(usize::MAX);
    let (mut bad, bad_disk) = TestDisk::new(usize::MAX);
    bad.bad_sync = true;
    let mut files = buffered(vec![good, bad]);
    // About 150 bytes a line: the bad file's first background sync, at
    // 2 MiB, fails, and the run stops soon after instead of writing 6 MB.
    let (at, error) = write_lines(&mut files, 40_000).expect_err("the write-back failed");
    assert!(error.to_string().starts_with("1.log: "), "{error}");
    assert!(error.to_string().contains("os error 5"), "{error}");
    assert!(at < 40_000, "stopped at line {at}");
    assert_eq!(bad_disk.lock().unwrap().syncs, 1, "a file that failed is not synced again");
    let good_clocks = clocks(&good_disk);
    assert!(good_disk.lock().unwrap().syncs >= 2, "the other file is synced at 2 MiB and at the end");
    assert_eq!(good_clocks, one_to(good_clocks.len()));
}

#[test]
fn logs_with_room_are_written_whole_in_order_and_synced() {
    let (files, disks): (Vec<_>, Vec<_>) = (0..3).map(|_| TestDisk::new(usize::MAX)).unzip();
    let mut files = buffered(files);
    write_lines(&mut files, 30_000).unwrap();
    assert!(files.writer.started());
    for disk in disks {
        // About 4.5 MB each: synced in the background at 2 MiB and 4 MiB,
        // and at the end.
        assert!(disk.lock().unwrap().bytes.len() > 4 << 20);
        assert_eq!(disk.lock().unwrap().syncs, 3);
        assert_eq!(clocks(&disk), one_to(30_000));
    }
}

#[test]
fn logs_that_never_fill_a_buffer_are_written_at_the_end_without_a_thread() {
    let (files, disks): (Vec<_>, Vec<_>) = (0..2).map(|_| TestDisk::new(usize::MAX)).unzip();
    let mut files = buffered(files);
    for k in 1..=300 {
        files.write(0, &line(k)).unwrap();
        files.write(1, &line(k)).unwrap();
    }
    assert!(!files.writer.started());
    files.finish().unwrap();
    assert!(!files.writer.started(), "finishing wrote them on this thread");
    for disk in disks {
        assert_eq!(disk.lock().unwrap().syncs, 1);
        assert_eq!(clocks(&disk), one_to(300));
    }
}

#[test]
fn the_files_hold_the_bytes_of_a_writer_of_one_line_at_a_time() {
    // Every kind of tick, long lines (vector clocks, HLCs, physical clocks)
    // and both formats, over several buffers of each file.
    let formats = [LogFormat::Text, LogFormat::Jsonl, LogFormat::Text];
    let (disks, shared): (Vec<_>, Vec<Arc<Mutex<Disk>>>) = formats.iter().map(|_| TestDisk::new(usize::MAX)).unzip();
    let files = disks.into_iter().zip(formats).enumerate();
    let mut files =
        Buffered::new(files.map(|(idx, (disk, format))| (disk, PathBuf::from(format!("{idx}")), format)).collect());
    let mut expected: Vec<LogWriter<Vec<u8>>> =
        formats.iter().map(|&format| LogWriter::new(Vec::new(), format)).collect();
    for k in 0..6_000u64 {
        let event = match k % 4 {
            0 => Event::Internal,
            1 => Event::Sent { to: vec![2, 3].into() },
            2 => Event::Processed { from: Some(2), clock: Some(k) },
            _ => Event::Sent { to: vec![3].into() },
        };
        let mut record = Record::new(1, event, k * 3, k % 7, 1_767_225_600_000_000 + k as i64 * 123_457);
        if k % 3 == 0 {
            record.vector_clock = Some(vec![k; 12]);
            record.hlc = Some(HlcStamp { l_us: record.time_us + 5, c: k % 4 });
            record.physical_clock_us = Some(record.time_us - 999_999);
        }
        for (idx, writer) in expected.iter_mut().enumerate() {
            files.write(idx, &record).unwrap();
            writer.write(&record).unwrap();
        }
    }
    files.finish().unwrap();
    assert!(files.writer.started());
    for (disk, writer) in shared.iter().zip(expected) {
        let disk = disk.lock().unwrap();
        assert!(disk.bytes.len() > 3 * FILE_BUFFER_BYTES, "{} bytes", disk.bytes.len());
        assert!(disk.bytes == writer.into_inner(), "the same bytes");
    }
}
