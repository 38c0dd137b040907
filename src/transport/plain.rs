//! Plain TCP: both halves are the socket itself, shared as an
//! `Arc<TcpStream>` (`Read` and `Write` are implemented for `&TcpStream`, so
//! no `try_clone` and no second descriptor). Finishing is `shutdown(Write)`.

use super::{Connection, Receive, Transmit};
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;

pub(super) fn connection(stream: TcpStream) -> Connection {
    let socket = Arc::new(stream);
    Connection {
        receiver: Box::new(PlainHalf(Arc::clone(&socket))),
        transmitter: Box::new(PlainHalf(Arc::clone(&socket))),
        socket,
    }
}

/// Either half of a plain connection.
struct PlainHalf(Arc<TcpStream>);

impl Read for PlainHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for PlainHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self.0).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Receive for PlainHalf {
    fn plain_socket(&self) -> Option<&TcpStream> {
        Some(&self.0)
    }
}

impl Transmit for PlainHalf {
    fn finish(&mut self) -> io::Result<()> {
        match self.0.shutdown(Shutdown::Write) {
            // The peer is already gone; the receiver reports how.
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        }
    }

    fn plain_socket(&self) -> Option<&TcpStream> {
        Some(&self.0)
    }
}
