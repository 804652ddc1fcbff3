//! Scoped green threads: like `std::thread::scope`, they may borrow from the
//! caller's stack, and all of them are joined before `scope` returns.

use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::{fmt, io, mem, thread};

use crate::park::{self, Unparker, WaitReason};
use crate::scheduler::{Handle, SpawnOptions};
use crate::thread::{JoinHandle, Thread};

static SCOPE: WaitReason = WaitReason("thread::scope");

struct ScopeData {
    running: AtomicUsize,
    a_thread_panicked: AtomicBool,
    main: Unparker,
}

/// A scope to spawn scoped green threads in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    handle: Handle,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// An owned permission to join a scoped green thread.
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<()>,
    packet: Arc<Packet<'scope, T>>,
}

/// Where a scoped green thread leaves its result. When the last reference
/// is gone the scope counts the thread as finished.
struct Packet<'scope, T> {
    scope: Arc<ScopeData>,
    result: Mutex<Option<thread::Result<T>>>,
    _marker: PhantomData<Option<&'scope ScopeData>>,
}

impl<T> Drop for Packet<'_, T> {
    fn drop(&mut self) {
        let result = self.result.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(result, Some(Err(_))) {
            self.scope.a_thread_panicked.store(true, Ordering::Relaxed);
        }
        // The result may hold borrowed data: drop it before the scope can
        // end, i.e. before the count goes down.
        drop(result.take());
        if self.scope.running.fetch_sub(1, Ordering::Release) == 1 {
            self.scope.main.unpark();
        }
    }
}

/// Creates a scope for spawning green threads that borrow from the caller.
///
/// Every green thread spawned in the scope is joined before this returns.
/// If one panicked and was not joined, `scope` panics after joining them
/// all. Scoped green threads run on the caller's runtime (the global one
/// when called from an OS thread).
///
/// ```
/// let mut counts = vec![0; 4];
/// grove_scheduler::scope::scope(|s| {
///     for c in counts.iter_mut() {
///         s.spawn(move || *c += 1);
///     }
/// });
/// assert_eq!(counts, [1, 1, 1, 1]);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            a_thread_panicked: AtomicBool::new(false),
            main: park::current_unparker(),
        }),
        handle: Handle::current(),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Wait for every scoped green thread, whatever happened above: they
    // borrow from our caller.
    let at = Location::caller();
    while scope.data.running.load(Ordering::Acquire) != 0 {
        park::park_with(&SCOPE, None, at);
    }
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.data.a_thread_panicked.load(Ordering::Relaxed) => {
            panic!("a scoped green thread panicked")
        }
        Ok(value) => value,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a scoped green thread. Panics if it cannot be spawned (see
    /// [`Scope::spawn_with`] for the error).
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_with(SpawnOptions::default(), Location::caller(), f)
            .unwrap_or_else(|err| panic!("failed to spawn a scoped green thread: {err}"))
    }

    /// Spawns a scoped green thread with options.
    pub fn spawn_with<F, T>(
        &'scope self,
        opts: SpawnOptions,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let packet = Arc::new(Packet {
            scope: self.data.clone(),
            result: Mutex::new(None),
            _marker: PhantomData,
        });
        self.data.running.fetch_add(1, Ordering::Relaxed);
        // A tuple drops in field order: if the body is dropped unrun, `f`'s
        // captures go before the packet that lets the scope end.
        let captures = (f, packet.clone());
        let body = move || {
            let (f, their_packet) = captures;
            let result = panic::catch_unwind(AssertUnwindSafe(f));
            *their_packet
                .result
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(result);
            drop(their_packet);
        };
        let body: Box<dyn FnOnce() + Send + 'scope> = Box::new(body);
        // SAFETY: only the lifetime changes. The body borrows for 'scope,
        // and `scope` does not return (nor unwind past the borrowed data)
        // before every packet is dropped, which happens after the body ran
        // or was dropped unrun. So the body never outlives its borrows.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { mem::transmute(body) };
        let inner = self.handle.spawn_at(opts, location, body)?;
        Ok(ScopedJoinHandle { inner, packet })
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the scoped green thread and returns its result.
    #[track_caller]
    pub fn join(self) -> thread::Result<T> {
        let outcome = self.inner.join();
        let result = self
            .packet
            .result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match (result, outcome) {
            (Some(result), _) => result,
            (None, Err(payload)) => Err(payload),
            (None, Ok(())) => unreachable!("a finished scoped green thread left its result"),
        }
    }

    /// Whether the scoped green thread has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// The green thread's handle.
    pub fn thread(&self) -> &Thread {
        self.inner.thread()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("thread", self.thread())
            .finish_non_exhaustive()
    }
}
