//! Reading a hello (and the ready message after it) within a deadline, on
//! either side of a connection.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::Instant;

use clocklab_model::wire::{HELLO_HEADER_LEN, HELLO_LEN, Hello, HelloError};

/// Fills `bytes[filled..until]` before `deadline` (no deadline: wait as long
/// as it takes), however the sender splits them; errors count the bytes of
/// all of `bytes` (a whole hello).
pub(crate) fn read_exact_by(
    stream: &mut TcpStream,
    bytes: &mut [u8],
    mut filled: usize,
    until: usize,
    deadline: Option<Instant>,
) -> io::Result<()> {
    let total = bytes.len();
    let late = |filled: usize| io::Error::new(io::ErrorKind::TimedOut, format!("{filled} of {total} bytes in time"));
    while filled < until {
        if let Some(deadline) = deadline {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(late(filled));
            }
            stream.set_read_timeout(Some(remaining))?;
        }
        match stream.read(&mut bytes[filled..until]) {
            Ok(0) => {
                let message = format!("the connection closed after {filled} of {total} bytes");
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, message));
            }
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(late(filled));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads a hello before `deadline`: its header first, so that a peer of
/// another protocol version is told at once, then the rest. The read timeout
/// is left set; the caller clears it.
pub(crate) fn read_hello(stream: &mut TcpStream, deadline: Instant) -> io::Result<Result<Hello, HelloError>> {
    let mut bytes = [0u8; HELLO_LEN];
    read_exact_by(stream, &mut bytes, 0, HELLO_HEADER_LEN, Some(deadline))?;
    let header: &[u8; HELLO_HEADER_LEN] = bytes[..HELLO_HEADER_LEN].try_into().expect("the header's length");
    if let Err(error) = Hello::check_header(header) {
        return Ok(Err(error));
    }
    read_exact_by(stream, &mut bytes, HELLO_HEADER_LEN, HELLO_LEN, Some(deadline))?;
    Ok(Hello::decode(&bytes))
}
