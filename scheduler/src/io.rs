//! The poller: readiness of file descriptors, for green threads that must
//! wait on a socket without blocking their worker.
//!
//! # The model
//!
//! - **One OS poller per runtime** (epoll, through `mio`), made with the
//!   runtime (3 descriptors), polled only while descriptors are registered.
//!   Every descriptor is registered once, edge-triggered, for reading and
//!   writing ([`Registration`]).
//! - **Readiness is a word per registration** (`ScheduledIo`): a ready bit
//!   per direction and a tick counting events. The poller sets bits and
//!   bumps the tick; an operation that fails with `WouldBlock` clears its
//!   direction's bit, but only if no event came since it last looked (the
//!   tick is unchanged; tokio's `ScheduledIo` does the same). So an event
//!   that lands between "would block" and "clear" is never lost.
//! - **Waiting** is the park seam: a green thread that must wait records its
//!   [`Unparker`] in the registration's waiter list, looks at the ready bit
//!   once more, and parks. The poller sets the bit *before* it takes the
//!   waiters under the same lock, so either the green thread sees the bit or
//!   the poller sees the waiter: no lost wake-up. The wake-up goes through
//!   the ordinary unpark path, so the green thread resumes on its home
//!   worker (the soundness rule is unchanged).
//! - **Who polls** (Go's `findrunnable`/`netpoll`): a worker that runs out of
//!   work and would sleep blocks in the poller instead of on its futex, if
//!   any descriptor is registered and no other worker is polling; its
//!   next timer is the poll's timeout, and whoever wants to wake it writes
//!   to the poller's waker instead of its futex (`Shared::wake_worker`).
//!   Busy workers poll without blocking at their fairness tick (every 61st
//!   pick) when nobody is blocked in the poller, so a worker busy with
//!   green threads never starves readiness for the others. A worker that
//!   runs one green thread computing without a pause polls at no tick,
//!   though, and if it left the poller to run it the others may all sleep
//!   on their futexes: the stall monitor's thread then polls without
//!   blocking when nobody has polled for a whole tick of its
//!   (`Driver::poll_if_forgotten`, Go's `sysmon` does the same), so such
//!   readiness waits at most about a tick (25 ms). (A green thread that
//!   computes without ever yielding still holds its own worker: the green
//!   threads homed there wait for it, polled or not.)
//! - A green thread parked on readiness waits for the outside world: it is
//!   never counted in the "all green threads are asleep" report.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::park::{self, Unparker, WaitReason};
use crate::scheduler::{Handle, Shared};
use crate::worker;

/// Which way a green thread waits on a descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Until it can be read (or the peer closed, or an error).
    Read,
    /// Until it can be written (or it was closed, or an error).
    Write,
}

impl Direction {
    fn bit(self) -> u64 {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }

    fn index(self) -> usize {
        match self {
            Direction::Read => 0,
            Direction::Write => 1,
        }
    }

    /// The sticky bit of this direction's final state (see `READ_CLOSED`).
    fn closed_bit(self) -> u64 {
        match self {
            Direction::Read => READ_CLOSED,
            Direction::Write => WRITE_CLOSED,
        }
    }
}

static READ: WaitReason = WaitReason("socket read");
static WRITE: WaitReason = WaitReason("socket write");

const READABLE: u64 = 1;
const WRITABLE: u64 = 1 << 1;
/// The peer closed its side (or an error is pending): a read returns at
/// once from now on. Never cleared, as the state is final: a read that
/// moved fewer bytes than asked (`io_partial`) drained the data but not the
/// end of the stream behind it, and with edge-triggered epoll no new event
/// comes for that end if the one that brought it was already taken.
const READ_CLOSED: u64 = 1 << 2;
/// As `READ_CLOSED`, for writes (the connection is gone, or an error is
/// pending).
const WRITE_CLOSED: u64 = 1 << 3;
const TICK: u64 = 1 << 8;

/// Events taken from the poller per call.
const EVENTS: usize = 1024;
/// The token of the poller's waker (registrations use slab indices below).
const WAKER: Token = Token(usize::MAX);

/// Readiness and waiters of one registered descriptor.
#[derive(Default)]
pub(crate) struct ScheduledIo {
    /// Ready bits (low byte) and the count of events seen (above it).
    readiness: AtomicU64,
    /// Green threads (or OS threads) waiting, per direction, each with an
    /// id so a waiter that gives up can take itself out.
    waiters: Mutex<[Vec<(u64, Unparker)>; 2]>,
}

impl ScheduledIo {
    fn waiters(&self) -> MutexGuard<'_, [Vec<(u64, Unparker)>; 2]> {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An event: sets `bits` and bumps the tick; returns the waiters to wake.
    fn set_ready(&self, bits: u64, woken: &mut Vec<Unparker>) {
        self.readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                Some((r | bits).wrapping_add(TICK))
            })
            .expect("closure never refuses");
        let mut waiters = self.waiters();
        for dir in [Direction::Read, Direction::Write] {
            if bits & dir.bit() != 0 {
                woken.extend(waiters[dir.index()].drain(..).map(|(_, u)| u));
            }
        }
    }

    /// After an operation that would block: clears `dir`'s bit if `seen`
    /// (read before the operation) is still current. False if an event
    /// came since: the caller tries again at once.
    fn clear(&self, seen: u64, dir: Direction) -> bool {
        if seen & dir.bit() == 0 {
            return true;
        }
        self.readiness
            .compare_exchange(seen, seen & !dir.bit(), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn is_ready(&self, dir: Direction) -> bool {
        self.readiness.load(Ordering::Acquire) & dir.bit() != 0
    }

    /// Parks until `dir` is ready or `deadline` passes (`TimedOut`); `at`
    /// is where the blocking call was made (for `Runtime::tasks()`).
    fn wait(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        at: &'static Location<'static>,
    ) -> io::Result<()> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.waiters()[dir.index()].push((id, park::current_unparker()));
        // Takes the entry out if it is still there, whatever ends the wait
        // (a panic or a runtime's unwind included).
        let _entry = WaiterEntry { io: self, dir, id };
        let reason = match dir {
            Direction::Read => &READ,
            Direction::Write => &WRITE,
        };
        // The poller sets the bit before it takes the waiters: seeing no
        // bit here, it will see our entry.
        if self.is_ready(dir) {
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out waiting for the socket",
            ));
        }
        park::park_external(reason, deadline, at);
        // Woken (by the poller, at the deadline, or spuriously): the caller
        // tries its operation again, which says whether the socket is
        // ready. Never park again here: the poller may have taken our
        // entry for an event whose bit the caller had already cleared (it
        // sets the bit, then takes the waiters, and in between the caller
        // can read the new bit, fail its operation, clear the bit and queue
        // this entry). Parked again without an entry, nothing would wake us.
        Ok(())
    }
}

/// Removes a waiter's entry when its wait ends.
struct WaiterEntry<'a> {
    io: &'a ScheduledIo,
    dir: Direction,
    id: u64,
}

impl Drop for WaiterEntry<'_> {
    fn drop(&mut self) {
        let removed = {
            let mut waiters = self.io.waiters();
            let list = &mut waiters[self.dir.index()];
            list.iter()
                .position(|(id, _)| *id == self.id)
                .map(|i| list.swap_remove(i))
        };
        // After the lock: the last reference to a green thread may go.
        drop(removed);
    }
}

/// A runtime's poller.
pub(crate) struct Driver {
    /// Held by the one thread polling (the polling token).
    poll: Mutex<(Poll, Events)>,
    registry: mio::Registry,
    waker: mio::Waker,
    /// Registered descriptors, by token index; a token's high half is the
    /// slot's generation, so an event for a slot reused since is dropped.
    slots: Mutex<Slots>,
    /// Live registrations: workers poll only while some exist.
    registered: AtomicUsize,
    /// The worker blocked in the poller, or `usize::MAX`.
    pub(crate) poller: AtomicUsize,
    /// Polls made, blocking or not (the stall monitor's backstop looks
    /// whether it moved).
    polls: AtomicU64,
}

#[derive(Default)]
struct Slots {
    ios: Vec<(u32, Option<Arc<ScheduledIo>>)>,
    free: Vec<usize>,
}

/// Nobody is blocked in the poller.
pub(crate) const NO_POLLER: usize = usize::MAX;

impl Driver {
    pub(crate) fn new() -> io::Result<Driver> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok(Driver {
            poll: Mutex::new((poll, Events::with_capacity(EVENTS))),
            registry,
            waker,
            slots: Mutex::new(Slots::default()),
            registered: AtomicUsize::new(0),
            poller: AtomicUsize::new(NO_POLLER),
            polls: AtomicU64::new(0),
        })
    }

    /// Whether any descriptor is registered (so polling can find anything).
    pub(crate) fn is_used(&self) -> bool {
        self.registered.load(Ordering::Relaxed) != 0
    }

    /// Wakes the worker blocked in the poller.
    pub(crate) fn wake(&self) {
        // An error means the eventfd is full, i.e. a wake is pending.
        let _ = self.waker.wake();
    }

    /// The backstop (Go's `sysmon` does the same): polls without blocking
    /// if nobody has polled since `*seen` was taken and nobody is blocked
    /// in the poller now. A busy worker polls at its fairness tick and an
    /// idle one sleeps in the poller, but a worker that runs one green
    /// thread computing without a pause does neither, and if it left the
    /// poller to run it, the other workers may all be asleep on their
    /// futexes: readiness for their green threads would wait for it. The
    /// stall monitor calls this at every tick.
    pub(crate) fn poll_if_forgotten(&self, seen: &mut u64) {
        let polls = self.polls.load(Ordering::Relaxed);
        if polls == *seen && self.poller.load(Ordering::SeqCst) == NO_POLLER {
            if let Some(poller) = self.try_poll() {
                poller.poll(false, None);
            }
        }
        *seen = self.polls.load(Ordering::Relaxed);
    }

    /// The right to poll, if no other thread polls now.
    pub(crate) fn try_poll(&self) -> Option<Poller<'_>> {
        let guard = self.poll.try_lock().ok()?;
        Some(Poller {
            driver: self,
            guard,
        })
    }

    fn register(&self, fd: RawFd) -> io::Result<(Token, Arc<ScheduledIo>)> {
        let io = Arc::new(ScheduledIo::default());
        let token = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let index = match slots.free.pop() {
                Some(i) => i,
                None => {
                    slots.ios.push((0, None));
                    slots.ios.len() - 1
                }
            };
            let slot = &mut slots.ios[index];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(io.clone());
            join(index, slot.0)
        };
        let registered = self.registry.register(
            &mut SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(err) = registered {
            self.release(token);
            return Err(err);
        }
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok((token, io))
    }

    fn release(&self, token: Token) {
        let (index, _) = split(token);
        let old = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let old = slots.ios[index].1.take();
            slots.free.push(index);
            old
        };
        drop(old);
    }
}

/// The one thread polling a runtime's poller now (see [`Driver::try_poll`]).
pub(crate) struct Poller<'a> {
    driver: &'a Driver,
    guard: MutexGuard<'a, (Poll, Events)>,
}

impl Poller<'_> {
    /// Takes the events there are, blocking until `deadline` (forever if
    /// none) when `block`, and wakes whoever waits on them. A worker that
    /// blocks here must have published itself in `Driver::poller` first,
    /// so that it is woken through the poller's waker.
    pub(crate) fn poll(self, block: bool, deadline: Option<Instant>) {
        let Poller { driver, mut guard } = self;
        driver.polls.fetch_add(1, Ordering::Relaxed);
        let (poll, events) = &mut *guard;
        let timeout = if block {
            deadline.map(|d| d.saturating_duration_since(Instant::now()))
        } else {
            Some(Duration::ZERO)
        };
        if poll.poll(events, timeout).is_err() {
            return; // EINTR: the caller loops
        }
        let mut woken = Vec::new();
        {
            let slots = driver.slots.lock().unwrap_or_else(|e| e.into_inner());
            for event in events.iter() {
                let token = event.token();
                if token == WAKER {
                    continue;
                }
                let (index, generation) = split(token);
                let Some((gen, Some(io))) = slots.ios.get(index) else {
                    continue;
                };
                if *gen != generation {
                    continue;
                }
                let mut bits = 0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    bits |= READABLE;
                }
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    bits |= WRITABLE;
                }
                if event.is_read_closed() || event.is_error() {
                    bits |= READ_CLOSED;
                }
                if event.is_write_closed() || event.is_error() {
                    bits |= WRITE_CLOSED;
                }
                io.set_ready(bits, &mut woken);
            }
        }
        drop(guard);
        // With no lock held: waking may free a finished green thread.
        for unparker in woken {
            unparker.wake();
        }
    }
}

fn join(index: usize, generation: u32) -> Token {
    Token((u64::from(generation) << 32 | index as u64) as usize)
}

fn split(token: Token) -> (usize, u32) {
    let t = token.0 as u64;
    ((t & 0xffff_ffff) as usize, (t >> 32) as u32)
}

impl Shared {
    /// This runtime's poller.
    pub(crate) fn driver(&self) -> &Driver {
        &self.io
    }

    /// The poller, if it has descriptors registered.
    pub(crate) fn used_driver(&self) -> Option<&Driver> {
        Some(&self.io).filter(|d| d.is_used())
    }
}

/// A file descriptor registered with a runtime's poller, for green threads
/// to wait on without blocking their worker. Dropping it deregisters the
/// descriptor, which must still be open then (drop it before closing the
/// descriptor; the `grove-net` sockets declare it first): the constructors
/// are `unsafe` for that.
///
/// A registration belongs to the runtime of the green thread that made it;
/// green threads of any runtime may wait on it (the wake-up reaches them
/// wherever they live), as long as that runtime runs.
pub struct Registration {
    fd: RawFd,
    token: Token,
    io: Arc<ScheduledIo>,
    shared: Arc<Shared>,
}

impl Registration {
    /// Registers `fd` (edge-triggered, both directions) with the runtime of
    /// the calling green thread. `None` on a plain OS thread, which should
    /// wait with [`wait_os`] instead.
    ///
    /// # Safety
    ///
    /// As for [`Registration::new`]: `fd` stays open until the
    /// registration is dropped.
    pub unsafe fn for_current_runtime(fd: BorrowedFd<'_>) -> Option<io::Result<Registration>> {
        let handle = Handle::try_current()?;
        // SAFETY: the caller's promise, passed on.
        Some(unsafe { Registration::new(&handle, fd) })
    }

    /// Registers `fd` with `handle`'s runtime.
    ///
    /// # Safety
    ///
    /// `fd` must stay open until the registration is dropped (its drop
    /// deregisters the descriptor by number). Closed earlier, the number
    /// may name another descriptor by then (a socket of the same process),
    /// whose registration with this runtime's poller the drop would remove:
    /// the I/O-safety rule that a descriptor is used only by its owner.
    pub unsafe fn new(handle: &Handle, fd: BorrowedFd<'_>) -> io::Result<Registration> {
        let fd = fd.as_raw_fd();
        let shared = handle.shared().clone();
        let (token, io) = shared.driver().register(fd)?;
        Ok(Registration {
            fd,
            token,
            io,
            shared,
        })
    }

    /// Runs `op` until it returns anything but a `WouldBlock` error,
    /// parking the calling green thread (blocking an OS thread) until the
    /// descriptor is ready for `dir` in between. Past `deadline`, returns
    /// `TimedOut`. `op` must be a non-blocking operation on this
    /// registration's descriptor.
    #[track_caller]
    pub fn io<R>(
        &self,
        dir: Direction,
        deadline: Option<Instant>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io_lazy(dir, || Ok(deadline), op)
    }

    /// [`io`](Self::io), with the deadline asked for only when a wait is
    /// needed, and then once: a socket reads its timeout from the kernel,
    /// a system call that operations which do not wait should not pay. An
    /// error from `deadline` is returned as is.
    #[track_caller]
    pub fn io_lazy<R>(
        &self,
        dir: Direction,
        deadline: impl FnOnce() -> io::Result<Option<Instant>>,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.run_io(dir, deadline, op, |_| false, false)
    }

    /// [`io_lazy`](Self::io_lazy) for a stream socket's reads and writes,
    /// where a transfer that moved some bytes but fewer than asked
    /// (`partial` says which results are such) shows the socket drained
    /// for `dir` (nothing left to read, or no room left to write): with
    /// edge-triggered epoll, new data or new room is a new event. Such a
    /// transfer clears `dir`'s ready bit as a `WouldBlock` would (an event
    /// that came meanwhile keeps it), and while the bit is clear the next
    /// operation waits for the event before it tries: the system call that
    /// would only have said `WouldBlock` is not made (tokio's `poll_read`
    /// does the same).
    #[track_caller]
    pub fn io_partial<R>(
        &self,
        dir: Direction,
        deadline: impl FnOnce() -> io::Result<Option<Instant>>,
        op: impl FnMut() -> io::Result<R>,
        partial: impl Fn(&R) -> bool,
    ) -> io::Result<R> {
        self.run_io(dir, deadline, op, partial, true)
    }

    /// The loop of [`io_partial`](Self::io_partial) (and, trusting no
    /// clear bit, of [`io_lazy`](Self::io_lazy)).
    #[track_caller]
    fn run_io<R>(
        &self,
        dir: Direction,
        deadline: impl FnOnce() -> io::Result<Option<Instant>>,
        mut op: impl FnMut() -> io::Result<R>,
        partial: impl Fn(&R) -> bool,
        trust_clear: bool,
    ) -> io::Result<R> {
        let mut deadline = Some(deadline);
        let mut until = None;
        // The first try is skipped when the bit says "not ready" and the
        // caller trusts it (a fresh registration's bits are clear too:
        // grove-net registers a socket after a `WouldBlock`, and epoll
        // reports a socket that is ready when it is added). After a wait,
        // the operation is always tried.
        // A closed direction is tried: its operation returns at once.
        let mut first = trust_clear;
        loop {
            let seen = self.io.readiness.load(Ordering::Acquire);
            let try_now = !(first && seen & (dir.bit() | dir.closed_bit()) == 0);
            first = false;
            if try_now {
                match op() {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Ok(done) => {
                        if partial(&done) {
                            self.io.clear(seen, dir);
                        }
                        return Ok(done);
                    }
                    done => return done,
                }
                if !self.io.clear(seen, dir) {
                    continue; // an event came meanwhile: try again
                }
            }
            if let Some(deadline) = deadline.take() {
                until = deadline()?;
            }
            let deadline = until;
            if park::in_green_thread() {
                self.io.wait(dir, deadline, Location::caller())?;
            } else {
                // A descriptor closed under the registration (against its
                // contract) makes poll(2) report it invalid: an error, no
                // harm.
                wait_raw(self.fd, dir, deadline)?;
            }
        }
    }

    /// Whether the poller has reported `dir` closed for good on this
    /// descriptor (the peer's or its own shutdown, a hang-up, or a pending
    /// error; the bit is never cleared). A hint for socket types whose
    /// non-blocking call says `EAGAIN` once shut down, where a blocking
    /// one returns: it tells when a look at the socket's state is worth a
    /// system call.
    pub fn is_closed(&self, dir: Direction) -> bool {
        self.io.readiness.load(Ordering::Acquire) & dir.closed_bit() != 0
    }

    /// Marks `dir` ready, as an event would, and wakes its waiters: for a
    /// change the poller does not report. A Unix stream shut down for
    /// writing by its own side is never reported writable, yet a write on
    /// it now fails at once (`EPIPE`); without this, a writer that found
    /// the socket full waits for an event that never comes.
    pub fn set_ready(&self, dir: Direction) {
        let mut woken = Vec::new();
        self.io.set_ready(dir.bit(), &mut woken);
        woken.into_iter().for_each(Unparker::wake);
    }

    /// Whether this registration belongs to the runtime of the calling
    /// green thread.
    pub fn is_current_runtime(&self) -> bool {
        // Compares pointers without taking a reference on the runtime (one
        // atomic every worker shares).
        worker::with_worker(|w| w.is_some_and(|w| Arc::ptr_eq(&w.shared, &self.shared)))
    }

    /// Whether this registration's runtime still runs (has not begun to
    /// shut down). Green threads of a runtime that stopped cannot wait on
    /// it any more; a socket moved to another runtime registers there.
    pub fn is_runtime_running(&self) -> bool {
        !self.shared.is_shutting_down()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let driver = self.shared.driver();
        let _ = driver.registry.deregister(&mut SourceFd(&self.fd));
        driver.release(self.token);
        driver.registered.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

/// Blocks the calling OS thread until `fd` is ready for `dir` or
/// `deadline` passes (`TimedOut`), with `poll(2)`: the path of a plain OS
/// thread, which has no poller to park on.
pub fn wait_os(fd: BorrowedFd<'_>, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    wait_raw(fd.as_raw_fd(), dir, deadline)
}

fn wait_raw(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "timed out waiting for the socket",
                    ));
                }
                // Rounded up, so a wait never ends early.
                left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, its count 1; poll(2) only writes
        // `revents`.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout) };
        if n > 0 {
            if pfd.revents & libc::POLLNVAL != 0 {
                return Err(io::Error::from_raw_os_error(libc::EBADF));
            }
            return Ok(()); // ready, hung up or in error: the operation says which
        }
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        for (i, g) in [(0, 1), (7, u32::MAX), (u32::MAX as usize, 3)] {
            assert_eq!(split(join(i, g)), (i, g));
        }
        assert_ne!(join(0, 1), WAKER);
    }

    #[test]
    fn a_stale_clear_keeps_a_later_event() {
        let io = ScheduledIo::default();
        let mut woken = Vec::new();
        io.set_ready(READABLE, &mut woken);
        let seen = io.readiness.load(Ordering::Acquire);
        // An event arrives between the operation and the clear.
        io.set_ready(READABLE, &mut woken);
        assert!(!io.clear(seen, Direction::Read), "the newer event stays");
        assert!(io.is_ready(Direction::Read));
        let seen = io.readiness.load(Ordering::Acquire);
        assert!(io.clear(seen, Direction::Read));
        assert!(!io.is_ready(Direction::Read));
        assert!(io.clear(io.readiness.load(Ordering::Acquire), Direction::Write));
        assert_eq!(
            (READABLE | WRITABLE) & io.readiness.load(Ordering::Acquire),
            0
        );
    }
}
