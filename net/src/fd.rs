//! The conversions every socket type has, written once: from and into its
//! std twin and file descriptors, and `Debug`.
//!
//! Every way in sets the descriptor non-blocking (the sockets never block
//! in a system call; waits go through the poller); every way out hands it
//! back in blocking mode, as std's own sockets expect to be.

/// Implements the conversions for `$ty`, a tuple struct around
/// `Socket<$std>`.
macro_rules! fd_impls {
    ($ty:ident, $std:ty) => {
        impl $ty {
            /// Hands the socket back as its std twin, in blocking mode
            /// (timeouts and every other option stay as set).
            pub fn into_std(self) -> ::std::io::Result<$std> {
                let sock = self.0.into_inner();
                sock.set_nonblocking(false)?;
                Ok(sock)
            }
        }

        impl ::std::convert::From<$std> for $ty {
            /// Takes a std socket in, in either blocking mode: it is set
            /// non-blocking (as is every other handle of the same socket,
            /// the mode being the socket's). Its timeouts keep applying.
            ///
            /// # Panics
            ///
            /// If the descriptor cannot be set non-blocking, which only a
            /// descriptor that is not open can cause.
            fn from(sock: $std) -> $ty {
                if let Err(err) = sock.set_nonblocking(true) {
                    panic!("grove::net: cannot set a socket non-blocking: {err}");
                }
                $ty($crate::socket::Socket::new(sock))
            }
        }

        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                self.0.fd()
            }
        }

        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                self.0.get().as_fd()
            }
        }

        impl ::std::os::fd::IntoRawFd for $ty {
            /// Hands the descriptor back in blocking mode, as `into_std`.
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                let sock = self.0.into_inner();
                // The descriptor is open: setting its mode cannot fail.
                let _ = sock.set_nonblocking(false);
                sock.into_raw_fd()
            }
        }

        impl ::std::os::fd::FromRawFd for $ty {
            /// Takes ownership of `fd`, as the std twin's `from_raw_fd`,
            /// and sets it non-blocking.
            ///
            /// # Safety
            ///
            /// As the std twin's: `fd` is an open socket of the right kind
            /// that the caller owns and gives up.
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller's contract is std's.
                let sock = unsafe { <$std as ::std::os::fd::FromRawFd>::from_raw_fd(fd) };
                $ty::from(sock)
            }
        }

        impl ::std::convert::From<::std::os::fd::OwnedFd> for $ty {
            /// Takes an owned descriptor in, as the std twin does.
            fn from(fd: ::std::os::fd::OwnedFd) -> $ty {
                $ty::from(<$std>::from(fd))
            }
        }

        impl ::std::convert::From<$ty> for ::std::os::fd::OwnedFd {
            /// Hands the descriptor back in blocking mode, as `into_std`.
            fn from(sock: $ty) -> ::std::os::fd::OwnedFd {
                let sock = sock.0.into_inner();
                // The descriptor is open: setting its mode cannot fail.
                let _ = sock.set_nonblocking(false);
                ::std::os::fd::OwnedFd::from(sock)
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Debug::fmt(self.0.get(), f)
            }
        }
    };
}

pub(crate) use fd_impls;

/// `Read` and `Write` for an owned stream `$ty`, through its `&$ty`
/// implementations (which do the work).
macro_rules! owned_stream_io {
    ($ty:ident) => {
        impl ::std::io::Read for $ty {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                (&*self).read(buf)
            }

            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl ::std::io::Write for $ty {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                (&*self).write(buf)
            }

            #[track_caller]
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) use owned_stream_io;
