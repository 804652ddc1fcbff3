//! Name resolution off the workers.
//!
//! `ToSocketAddrs` on a host name calls `getaddrinfo(3)`, which blocks for
//! as long as DNS takes. In a green thread that call runs on the runtime's
//! blocking pool. std's address types (`SocketAddr`, `(IpAddr, u16)`, a
//! slice of addresses, references to them) never look anything up and
//! resolve inline, and so does a string that holds a literal address.
//!
//! The address parameters are std's `A: ToSocketAddrs`, with no `Sync`
//! bound, so that code generic over the address compiles with grove as
//! with std. The pool thread may then not borrow `A` itself (a `!Sync`
//! address could be touched by two threads). It borrows the host name
//! instead: std's string address types (`&str`, `String`, `(&str, u16)`,
//! `(String, u16)` and references to them) are recognised by their type
//! id and their `&str` handed over. An address type of the program's own
//! resolves on the calling thread.

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

/// Resolves `addr`: on the blocking pool for a host name of std's string
/// types in a green thread, inline for anything else.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: &A) -> io::Result<Addrs<A::Iter>> {
    if !park::in_green_thread() || is_literal::<A>() {
        return addr.to_socket_addrs().map(Addrs::Inline);
    }
    match Host::of(addr) {
        Some(host) if !host.is_literal() => {
            let list = grove_scheduler::blocking::blocking(|| {
                host.to_socket_addrs().map(Iterator::collect::<Vec<_>>)
            })?;
            Ok(Addrs::Resolved(list.into_iter()))
        }
        _ => addr.to_socket_addrs().map(Addrs::Inline),
    }
}

/// Whether `A` is one of std's address types (or references to one), whose
/// `to_socket_addrs` never looks anything up. Type names are compared, not
/// type ids: a name that does not match only costs a look at the string
/// types, and a false match a lookup on the calling thread.
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

/// The host name (and port) of one of std's string address types,
/// borrowed from the address: `Sync` whatever the address type is, so the
/// pool thread may borrow it. Resolves exactly as the type it came from:
/// std's `String` and `&String` forward to `str`, `(String, u16)` to
/// `(&str, u16)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host<'a> {
    /// `"host:port"`.
    Name(&'a str),
    /// `("host", port)`.
    NamePort(&'a str, u16),
}

impl<'a> Host<'a> {
    /// The host name in `addr`, if `A` is `&str`, `String`, `(&str, u16)`
    /// or `(String, u16)`, or a reference (or a reference of a reference)
    /// to one of them.
    fn of<A>(addr: &'a A) -> Option<Host<'a>> {
        let id = typeid::of::<A>();
        let ptr = (addr as *const A).cast::<()>();
        // SAFETY: for every arm: `typeid::of` is `TypeId::of` with lifetimes
        // erased, so an equal id means `A` is the named type but for its
        // lifetimes, and `ptr` points to a live, initialised value of it,
        // borrowed for `'a`. Its own lifetimes outlive that borrow (`A`
        // outlives `&'a A`), so the `&str` read through it may be used for
        // `'a`: the returned `Host<'a>` never outlives `addr`.
        unsafe {
            if id == typeid::of::<&str>() {
                return Some(Host::Name(*ptr.cast::<&'a str>()));
            }
            if id == typeid::of::<String>() {
                return Some(Host::Name(&*ptr.cast::<String>()));
            }
            if id == typeid::of::<(&str, u16)>() {
                let (host, port) = *ptr.cast::<(&'a str, u16)>();
                return Some(Host::NamePort(host, port));
            }
            if id == typeid::of::<(String, u16)>() {
                let (host, port) = &*ptr.cast::<(String, u16)>();
                return Some(Host::NamePort(host, *port));
            }
            if id == typeid::of::<&&str>() {
                return Some(Host::Name(*ptr.cast::<&'a &'a str>()));
            }
            if id == typeid::of::<&String>() {
                return Some(Host::Name(&**ptr.cast::<&'a String>()));
            }
            if id == typeid::of::<&(&str, u16)>() {
                let (host, port) = **ptr.cast::<&'a (&'a str, u16)>();
                return Some(Host::NamePort(host, port));
            }
            if id == typeid::of::<&(String, u16)>() {
                let (host, port) = &**ptr.cast::<&'a (String, u16)>();
                return Some(Host::NamePort(host, *port));
            }
            if id == typeid::of::<&&String>() {
                return Some(Host::Name(*ptr.cast::<&'a &'a String>()));
            }
        }
        None
    }

    /// Whether it names a literal address, which std parses without a
    /// lookup (as `to_socket_addrs` does first).
    fn is_literal(self) -> bool {
        match self {
            Host::Name(s) => s.parse::<SocketAddr>().is_ok(),
            Host::NamePort(host, _) => host.parse::<IpAddr>().is_ok(),
        }
    }
}

impl ToSocketAddrs for Host<'_> {
    type Iter = std::vec::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        match *self {
            Host::Name(s) => s.to_socket_addrs(),
            Host::NamePort(host, port) => (host, port).to_socket_addrs(),
        }
    }
}

/// Runs `f` on each address `addr` names until one succeeds, as std's
/// `each_addr`: the last error if all fail.
pub(crate) fn each_addr<A, T>(
    addr: A,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T>
where
    A: ToSocketAddrs,
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
pub(crate) fn first_addr<A: ToSocketAddrs>(addr: A) -> io::Result<SocketAddr> {
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

    #[test]
    fn std_string_address_types_give_their_host_name() {
        let s = String::from("example.invalid:80");
        let name = Some(Host::Name("example.invalid:80"));
        assert_eq!(Host::of(&"example.invalid:80"), name);
        assert_eq!(Host::of(&s), name);
        assert_eq!(Host::of(&&s), name);
        assert_eq!(Host::of(&&&s), name);
        assert_eq!(Host::of(&s.as_str()), name);
        assert_eq!(Host::of(&&s.as_str()), name);
        let pair = ("example.invalid", 80u16);
        let owned = (String::from("example.invalid"), 80u16);
        let name_port = Some(Host::NamePort("example.invalid", 80));
        assert_eq!(Host::of(&pair), name_port);
        assert_eq!(Host::of(&&pair), name_port);
        assert_eq!(Host::of(&owned), name_port);
        assert_eq!(Host::of(&&owned), name_port);
        // Anything else is not taken for a string.
        assert_eq!(Host::of(&SocketAddr::from(([127, 0, 0, 1], 80))), None);
        assert_eq!(Host::of(&("example.invalid", 80u32)), None);
        assert_eq!(Host::of(&std::rc::Rc::new("example.invalid:80")), None);
        assert_eq!(Host::of(&vec![0u8; 3]), None);
    }

    #[test]
    fn literal_hosts_are_told_from_names() {
        assert!(Host::Name("127.0.0.1:80").is_literal());
        assert!(Host::Name("[::1]:80").is_literal());
        assert!(!Host::Name("localhost:80").is_literal());
        assert!(Host::NamePort("::1", 80).is_literal());
        assert!(!Host::NamePort("localhost", 80).is_literal());
    }

    #[test]
    fn a_host_resolves_as_the_type_it_came_from() {
        for addr in ["127.0.0.1:9", "[::1]:9", "localhost:9"] {
            let ours: Vec<_> = Host::Name(addr).to_socket_addrs().unwrap().collect();
            let std: Vec<_> = addr.to_socket_addrs().unwrap().collect();
            assert_eq!(ours, std, "{addr}");
        }
        let ours: Vec<_> = Host::NamePort("localhost", 9)
            .to_socket_addrs()
            .unwrap()
            .collect();
        let std: Vec<_> = ("localhost", 9).to_socket_addrs().unwrap().collect();
        assert_eq!(ours, std);
        assert_eq!(
            Host::Name("no port here")
                .to_socket_addrs()
                .unwrap_err()
                .kind(),
            "no port here".to_socket_addrs().unwrap_err().kind()
        );
    }
}
