//! Listening sockets, as both servers open them, and the accepted stream
//! with the hooks each server needs on it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A listener on `addr` with a deep backlog (a load test opens many
/// connections at once) and `SO_REUSEADDR`, so a port taken down and
/// brought back rebinds while old connections sit in TIME_WAIT. Errors are
/// the system's; callers say which port and why in their own terms.
pub fn listen(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// What a server wants to know of an accepted connection's stream.
pub trait Hooks: Unpin {
    /// Bytes arrived (the balancer starts `client_header_timeout` on them).
    fn read(&self, _bytes: usize) {}
    /// The stream is about to close (mockbackend may make that an RST).
    fn closing(&self, _stream: &TcpStream) {}
}

/// An accepted TCP stream with `H`'s hooks; otherwise the stream itself.
pub struct Hooked<H: Hooks> {
    stream: TcpStream,
    hooks: H,
}

impl<H: Hooks> Hooked<H> {
    pub fn new(stream: TcpStream, hooks: H) -> Hooked<H> {
        Hooked { stream, hooks }
    }
}

impl<H: Hooks> Drop for Hooked<H> {
    fn drop(&mut self) {
        self.hooks.closing(&self.stream);
    }
}

impl<H: Hooks> AsyncRead for Hooked<H> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.hooks.read(read);
        }
        polled
    }
}

impl<H: Hooks> AsyncWrite for Hooked<H> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_rebinds_and_a_taken_one_says_so() {
        let l = listen("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = l.local_addr().unwrap();
        let e = listen(addr, 16).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(l);
        assert!(listen(addr, 16).is_ok());
    }
}
