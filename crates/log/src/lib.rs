//! The log format of clocklab, a stable interface: only this crate knows how
//! a line looks.
//!
//! Start here: [`Record`] is one log line. [`LogWriter`] writes records as
//! text or JSON Lines; [`LogReader`] reads them back, and also reads the
//! Python reference implementation's logs, skipping and reporting what it
//! cannot parse instead of failing. [`RunEvents`] merges a run's logs into
//! one stream of events in time order, each receive paired with its send;
//! [`check::check_run`] checks a run's logs against the rules of the model.
//!
//! ```
//! use clocklab_log::{Event, LogFormat, LogReader, LogWriter, Record};
//!
//! let record = Record::new(2, Event::Processed { from: Some(3), clock: Some(17) }, 18, 2, 1_795_495_393_482_913);
//! let mut bytes = Vec::new();
//! LogWriter::new(&mut bytes, LogFormat::Text).write(&record).unwrap();
//! assert_eq!(
//!     String::from_utf8(bytes.clone()).unwrap(),
//!     "2> Event: Processed message from machine 3 with clock 17 | System Time: 2026-11-24 04:43:13 \
//!      | Logical Clock: 18 | Queue Length: 2 | Timestamp: 2026-11-24T04:43:13.482913Z\n"
//! );
//! let mut reader = LogReader::new(&bytes[..]);
//! assert_eq!(reader.next().unwrap().record, record);
//! ```

pub mod check;
pub mod events;
#[doc(hidden)]
pub mod fuzzing;
pub mod incarnations;
mod lines;
mod numbers;
mod read;
mod record;
mod tail;
mod time_fmt;
mod write;

pub use events::{EventId, MessageId, Pairing, RunEvent, RunEvents, SentMessage};
pub use incarnations::{Incarnations, crash_took};
pub use lines::{MAX_LINE_BYTES, RawLine, RawLines};
pub use numbers::thousands;
pub use read::{Diagnostics, LineError, LogReader, ReadLine, TimePrecision, parse_line};
pub use record::{Event, LogFormat, Recipients, Record, TickCounter};
pub use tail::last_record;
pub use time_fmt::{FIRST_WRITABLE_US, LAST_WRITABLE_US, rfc3339_us};
pub use write::{LineFormatter, LogWriter, typical_line_bytes};

/// The file name of machine `id`'s log in `format`.
pub fn file_name(id: clocklab_model::MachineId, format: LogFormat) -> String {
    format!("machine_{id}.{}", format.extension())
}
