//! Name resolution off the workers.
//!
//! `ToSocketAddrs` on a host name calls `getaddrinfo(3)`, which blocks for
//! as long as DNS takes. In a green thread that call runs on the runtime's
//! blocking pool; std's address types (`SocketAddr`, `(IpAddr, u16)`, a
//! slice of addresses, references to them), which never look anything up,
//! resolve inline. A string is handed to the pool even when it holds a
//! literal address: which strings are literal only `to_socket_addrs` knows,
//! and it must not run on a worker for the others.

use std::any::type_name;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use grove_scheduler::park;

/// The addresses `addr` names: its own iterator when it resolved inline,
/// the pool's list otherwise.
pub(crate) enum Addrs<I> {
    Inline(I),
    Resolved(std::vec::IntoIter<SocketAddr>),
}

impl<I: Iterator<Item = SocketAddr>> Iterator for Addrs<I> {
    type Item = SocketAddr;

    fn next(&mut self) -> Option<SocketAddr> {
        match self {
            Addrs::Inline(i) => i.next(),
            Addrs::Resolved(i) => i.next(),
        }
    }
}

/// Resolves `addr`: inline for std's address types or on an OS thread, on
/// the blocking pool for anything else in a green thread.
pub(crate) fn resolve<A: ToSocketAddrs + Sync>(addr: &A) -> io::Result<Addrs<A::Iter>> {
    if !park::in_green_thread() || is_literal::<A>() {
        return addr.to_socket_addrs().map(Addrs::Inline);
    }
    let list = grove_scheduler::blocking::blocking(|| {
        addr.to_socket_addrs().map(Iterator::collect::<Vec<_>>)
    })?;
    Ok(Addrs::Resolved(list.into_iter()))
}

/// Whether `A` is one of std's address types (or references to one), whose
/// `to_socket_addrs` never looks anything up. Type names are compared, not
/// `TypeId`s (which would need `A: 'static`); a name that does not match
/// only costs a trip to the pool.
fn is_literal<A>() -> bool {
    let name = type_name::<A>().trim_start_matches('&');
    [
        type_name::<SocketAddr>(),
        type_name::<SocketAddrV4>(),
        type_name::<SocketAddrV6>(),
        type_name::<(IpAddr, u16)>(),
        type_name::<(Ipv4Addr, u16)>(),
        type_name::<(Ipv6Addr, u16)>(),
        type_name::<[SocketAddr]>(),
    ]
    .contains(&name)
}

/// Runs `f` on each address `addr` names until one succeeds, as std's
/// `each_addr`: the last error if all fail.
pub(crate) fn each_addr<A, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T>
where
    A: ToSocketAddrs + Sync,
{
    let mut last = None;
    for a in resolve(&addr)? {
        match f(a) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

/// The first address `addr` names (where std's `send_to` sends).
pub(crate) fn first_addr<A: ToSocketAddrs + Sync>(addr: A) -> io::Result<SocketAddr> {
    resolve(&addr)?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_address_types_are_literal_and_strings_are_not() {
        assert!(is_literal::<SocketAddr>());
        assert!(is_literal::<&SocketAddr>());
        assert!(is_literal::<&&SocketAddrV4>());
        assert!(is_literal::<(IpAddr, u16)>());
        assert!(is_literal::<(Ipv6Addr, u16)>());
        assert!(is_literal::<&[SocketAddr]>());
        assert!(!is_literal::<&str>());
        assert!(!is_literal::<String>());
        assert!(!is_literal::<(&str, u16)>());
    }
}
