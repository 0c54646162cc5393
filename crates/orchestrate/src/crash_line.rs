//! The `Crashed` line of a machine the plan crashed. Its own timeline
//! writes the line at the crash's instant, and the supervisor kills its
//! process then; when the kill came first (the machine was late, or stopped
//! by a pause), the supervisor writes the line for it, from the log's last
//! line, after cutting a line the process left half written.

use std::fs::OpenOptions;
use std::io::BufWriter;
use std::path::Path;

use clocklab_config::{MachinePlan, RunPlan, layout};
use clocklab_faults::physical_reading;
use clocklab_log::LogWriter;
use clocklab_model::PhysicalClock;

use crate::Failure;

/// Writes the `Crashed` line of `machine`, killed at true time `now_us`, to
/// each of its logs in `plan`'s run folder: its clocks as its last line has
/// them, its physical clock as it read then (its offset and drift, and the
/// clock faults planned so far, from the run's start `start_us`).
pub(crate) fn write_crash_line(
    plan: &RunPlan,
    machine: &MachinePlan,
    start_us: i64,
    now_us: i64,
) -> Result<(), Failure> {
    let faults = plan.fault_plan().machine_faults(machine.id);
    let base = PhysicalClock::new(start_us, machine.clock_offset_us, machine.clock_drift_ppm);
    let physical_us = physical_reading(&base, start_us, &faults, now_us);
    for &format in &plan.log_formats {
        let path = layout::log_path(&plan.dir, machine.id, format);
        append_crash_line(&path, format, now_us, physical_us).map_err(|error| {
            Failure(format!("machine {}: cannot write its crash to {}: {error}", machine.id, path.display()))
        })?;
    }
    Ok(())
}

/// Writes the `Crashed` line of machine `id`, launched with `launch` and
/// killed at `now_us` (its host's clock; `start_us` its run's start in the
/// same clock), to each of its logs: what an agent does on a host when the
/// plan crashes the machine there.
pub fn write_crash_line_of(
    launch: &crate::protocol::Launch,
    id: clocklab_model::MachineId,
    start_us: i64,
    now_us: i64,
) -> std::io::Result<()> {
    let plan = clocklab_faults::FaultPlan::new(&launch.faults, launch.run_seed, launch.duration_us);
    let faults = plan.machine_faults(id);
    let base = PhysicalClock::new(start_us, launch.clock_offset_us, launch.clock_drift_ppm);
    let physical_us = physical_reading(&base, start_us, &faults, now_us);
    for (format, path) in &launch.logs {
        append_crash_line(path, *format, now_us, physical_us)?;
    }
    Ok(())
}

/// Cuts a line a killed machine left half written at the end of each of
/// `paths` that exists.
pub fn cut_partial_lines(paths: &[&Path]) -> std::io::Result<()> {
    for path in paths {
        match OpenOptions::new().read(true).write(true).open(path) {
            Ok(mut file) => cut_partial_line(&mut file)?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

fn append_crash_line(
    path: &Path,
    format: clocklab_log::LogFormat,
    now_us: i64,
    physical_us: i64,
) -> std::io::Result<()> {
    let mut file = OpenOptions::new().read(true).append(true).open(path)?;
    cut_partial_line(&mut file)?;
    let last = clocklab_log::last_record(path)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "the log has no line"))?;
    if last.event == clocklab_log::Event::Crashed {
        // The machine wrote it itself before it was killed (or this
        // incarnation never wrote a line).
        return Ok(());
    }
    let line = clocklab_driver::crash_record(&last, now_us, physical_us);
    let mut writer = LogWriter::new(BufWriter::new(file), format);
    writer.write(&line)?;
    writer.into_inner().into_inner().map_err(std::io::IntoInnerError::into_error)?.sync_data()?;
    Ok(())
}

/// Cuts a line the killed process left half written, if any, so that the
/// next line starts on a line of its own.
fn cut_partial_line(file: &mut std::fs::File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let from = len.saturating_sub(clocklab_log::MAX_LINE_BYTES as u64 + 1);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    if tail.last().is_some_and(|&b| b != b'\n') {
        let keep = tail.iter().rposition(|&b| b == b'\n').map_or(from, |at| from + at as u64 + 1);
        file.set_len(keep)?;
    }
    Ok(())
}
