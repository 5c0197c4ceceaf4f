//! Listening sockets, as both servers open them.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

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
