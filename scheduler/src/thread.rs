//! Thread handles shared by green threads and OS threads: [`ThreadId`],
//! [`Thread`], [`JoinHandle`] (and [`JoinFuture`], a `JoinHandle` awaited
//! from async code).

use std::cell::OnceCell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::num::NonZeroU64;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::park::{self, Unparker};
use crate::scheduler::Handle;
use crate::task::TaskRef;
use crate::worker;
use std::marker::PhantomData;

/// A unique identifier for a green thread or an OS thread, never reused.
///
/// Green threads and OS threads draw from one sequence, so ids compare
/// across both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(NonZeroU64);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Ids a thread takes from `NEXT_ID` at once, so that spawns on different
/// workers do not contend on one counter.
const ID_BLOCK: u64 = 1024;

thread_local! {
    static IDS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl ThreadId {
    pub(crate) fn next() -> ThreadId {
        let id = crate::tls_access!({
            IDS.with(|ids| {
                let (next, end) = ids.get();
                if next < end {
                    ids.set((next + 1, end));
                    next
                } else {
                    let start = NEXT_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
                    ids.set((start + 1, start + ID_BLOCK));
                    start
                }
            })
        });
        ThreadId::from_raw(id)
    }

    pub(crate) fn from_raw(id: u64) -> ThreadId {
        ThreadId(NonZeroU64::new(id).expect("thread ids start at 1"))
    }

    /// The id as a number.
    pub fn as_u64(&self) -> NonZeroU64 {
        self.0
    }

    pub(crate) fn get(self) -> u64 {
        self.0.get()
    }
}

/// A handle to a thread: a green thread, or an OS thread that uses grove's
/// parking (`grove::thread::park`).
#[derive(Clone)]
pub struct Thread(Inner);

// A handle names a thread and unparks it; a panic cannot leave it half
// changed. Unwind safe, as std's `Thread` (and std's `JoinHandle`, below).
impl std::panic::UnwindSafe for Thread {}
impl std::panic::RefUnwindSafe for Thread {}

#[derive(Clone)]
enum Inner {
    Green(TaskRef),
    Os(Arc<OsThread>),
}

struct OsThread {
    id: ThreadId,
    name: Option<String>,
    unparker: Unparker,
    /// std's park token (see [`park_token`]): the parker's own token is
    /// taken by any wait of this thread on grove's primitives.
    token: AtomicBool,
}

thread_local! {
    static OS_THREAD: OnceCell<Thread> = const { OnceCell::new() };
}

impl Thread {
    pub(crate) fn green(task: TaskRef) -> Thread {
        Thread(Inner::Green(task))
    }

    /// The thread's unique id.
    pub fn id(&self) -> ThreadId {
        match &self.0 {
            Inner::Green(task) => ThreadId::from_raw(task.header().id),
            Inner::Os(os) => os.id,
        }
    }

    /// The thread's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match &self.0 {
            Inner::Green(task) => task.header().name(),
            Inner::Os(os) => os.name.as_deref(),
        }
    }

    /// Wakes the thread from `park`, or makes its next `park` return at once
    /// (as `std::thread::Thread::unpark`).
    pub fn unpark(&self) {
        match &self.0 {
            Inner::Green(task) => {
                task.header().park_token.store(true, Ordering::Release);
                park::unpark_task(task);
            }
            Inner::Os(os) => {
                os.token.store(true, Ordering::Release);
                os.unparker.unpark();
            }
        }
    }

    /// Whether this is a green thread.
    pub fn is_green(&self) -> bool {
        matches!(self.0, Inner::Green(_))
    }

    /// An unparker for this thread (for wait queues).
    pub fn unparker(&self) -> Unparker {
        match &self.0 {
            Inner::Green(task) => Unparker::green(task.clone()),
            Inner::Os(os) => os.unparker.clone(),
        }
    }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As std's: `Thread { id: ThreadId(..), name: .., .. }`.
        f.debug_struct("Thread")
            .field("id", &self.id())
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

/// The worker the calling green thread runs on (its index in its runtime,
/// from 0); `None` on a plain OS thread.
pub fn current_worker() -> Option<usize> {
    worker::with_current_header(|h| h.map(|h| h.home()))
}

/// `std::thread::park` and `park_timeout` (with `deadline`): returns at
/// once if [`Thread::unpark`] left the calling thread its token (taking
/// it), else parks until it comes or `deadline` passes, and takes the
/// token if it came. The token is not the runtime's own wake-up: a wait
/// on a lock, a sleep or a join while an unpark comes leaves the token for
/// the next `park`, as in std.
///
/// A wake-up without the token (a spurious one, which std allows but
/// rarely gives) parks again. One came every time after an `unpark` that
/// found the thread running and a `park` that took its token at once: the
/// unpark's wake-up stayed pending for the thread's next park, and the
/// `park_timeout(d)` after returned at once where std's waits `d`.
#[track_caller]
pub fn park_token(deadline: Option<Instant>) {
    let at = Location::caller();
    while !take_token() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return;
        }
        park::park_with(&park::PARK, deadline, at);
    }
}

/// Takes the calling thread's park token: true if it was there.
fn take_token() -> bool {
    if let Some(taken) =
        worker::with_current_header(|h| h.map(|h| h.park_token.swap(false, Ordering::Acquire)))
    {
        return taken;
    }
    // An OS thread that never made its handle has no token.
    OS_THREAD
        .try_with(|t| match t.get() {
            Some(Thread(Inner::Os(os))) => os.token.swap(false, Ordering::Acquire),
            _ => false,
        })
        .unwrap_or(false)
}

/// The calling thread: its green thread, or else the OS thread.
pub fn current() -> Thread {
    if let Some(task) = worker::current_task() {
        return Thread::green(task);
    }
    let os_thread = || {
        Thread(Inner::Os(Arc::new(OsThread {
            id: ThreadId::next(),
            name: std::thread::current().name().map(str::to_string),
            unparker: park::current_unparker(),
            token: AtomicBool::new(false),
        })))
    };
    // In a thread-local's destructor, after OS_THREAD's own ran: a fresh
    // handle each time (a new id), whose unparker still wakes this thread
    // (the parker survives, see `park`), rather than a panic that aborts.
    OS_THREAD
        .try_with(|t| t.get_or_init(os_thread).clone())
        .unwrap_or_else(|_| os_thread())
}

/// An owned permission to join a green thread (wait for it to finish and
/// take its result). Dropping it detaches the green thread, as in std; an
/// unjoined result is then dropped by the green thread itself when it
/// finishes, or here if it had finished already, so its destructor may
/// use grove's locks and channels (a destructor that panics aborts the
/// process, as std's does for a thread's result).
///
/// Async code awaits it instead of joining: it is `IntoFuture` (see
/// [`JoinFuture`]).
pub struct JoinHandle<T> {
    task: TaskRef,
    /// Made on first use of `thread()`: most handles are only joined.
    thread: std::sync::OnceLock<Thread>,
    /// The output type. A handle may move between threads (joining moves
    /// the T, which `spawn` requires to be Send) and be shared (only
    /// `is_finished` and `thread` take `&self`), as std's.
    _output: PhantomData<fn() -> T>,
}

impl<T> Drop for JoinHandle<T> {
    /// Detaches the green thread. If it has finished and left its output
    /// (not joined), the output is dropped here, on the dropping thread;
    /// if not, the green thread drops it itself when it finishes, never
    /// the worker's OS thread that frees the task (where a grove lock or
    /// channel in the destructor would block the worker).
    fn drop(&mut self) {
        let state = &self.task.header().state;
        // A finished green thread no longer looks at DETACHED: a load
        // instead of a read-modify-write, for every joined handle.
        if state.load().is_done() || state.detach() {
            // SAFETY: DONE or OUTPUT_READY was seen (Acquire): the output
            // was stored before it, and the body, which saw no DETACHED,
            // left it to us; a `join` of this handle took it already, if
            // any.
            let output = unsafe { self.task.take_output::<T>() };
            crate::task::drop_output(output, "green thread");
        }
    }
}

impl<T> std::panic::UnwindSafe for JoinHandle<T> {}
impl<T> std::panic::RefUnwindSafe for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// A handle for a task whose output type is `T`.
    pub(crate) fn new(task: TaskRef) -> JoinHandle<T> {
        JoinHandle {
            task,
            thread: std::sync::OnceLock::new(),
            _output: PhantomData,
        }
    }

    /// Waits for the green thread to finish; parks a green caller, blocks an
    /// OS caller. `Err` carries the panic payload if it panicked (or a
    /// message if its runtime was dropped before it could finish).
    #[track_caller]
    pub fn join(self) -> std::thread::Result<T> {
        let header = self.task.header();
        if !header.state.load().is_done() {
            header.set_join_waiter(park::current_unparker());
            if !header.state.register_join_waiter().is_done() {
                let at = Location::caller();
                while !header.state.load().is_done() {
                    if let Some(leaked) = leaked(header) {
                        return leaked;
                    }
                    park::park_with(&park::JOIN, None, at);
                }
            }
        }
        // SAFETY: DONE was observed with Acquire above, and this handle is
        // the only reader of the output (join takes it by value).
        unsafe { self.task.take_output::<T>() }.expect("a finished green thread has an output")
    }

    /// Like [`join`](Self::join), for an OS thread that waits on a
    /// runtime's main green thread (`block_on`, `grove::run`): if every
    /// green thread of `rt` stays parked with no timer armed and nothing
    /// happening for `grace`, it panics with Go's report, "all green threads
    /// are asleep - deadlock!", and the list of green threads, instead of
    /// waiting forever. From a green thread it is a plain `join`.
    ///
    /// The grace period covers what the runtime cannot see: an OS thread
    /// that holds a sender and will use it later.
    #[track_caller]
    pub fn join_or_report_deadlock(self, rt: &Handle, grace: Duration) -> std::thread::Result<T> {
        if park::in_green_thread() {
            return self.join();
        }
        let header = self.task.header();
        if !header.state.load().is_done() {
            header.set_join_waiter(park::current_unparker());
            if !header.state.register_join_waiter().is_done() {
                let at = Location::caller();
                let tick = (grace / 10).clamp(Duration::from_millis(1), Duration::from_millis(100));
                let mut asleep_since: Option<((u64, u64, u64), Instant)> = None;
                while !header.state.load().is_done() {
                    if let Some(leaked) = leaked(header) {
                        return leaked;
                    }
                    park::park_with(&park::JOIN, Instant::now().checked_add(tick), at);
                    if header.state.load().is_done() {
                        break;
                    }
                    let probe = rt.deadlock_probe();
                    asleep_since = match asleep_since {
                        _ if !probe.all_asleep => None,
                        Some((activity, since)) if activity == probe.activity => {
                            if since.elapsed() >= grace {
                                panic!("{}", deadlock_report(rt));
                            }
                            Some((activity, since))
                        }
                        _ => Some((probe.activity, Instant::now())),
                    };
                }
            }
        }
        // SAFETY: DONE was observed with Acquire above, and this handle is
        // the only reader of the output (it is taken by value).
        unsafe { self.task.take_output::<T>() }.expect("a finished green thread has an output")
    }

    /// Whether the green thread has finished (its `join` will not wait).
    pub fn is_finished(&self) -> bool {
        self.task.header().state.load().is_done()
    }

    /// The green thread's handle.
    pub fn thread(&self) -> &Thread {
        self.thread.get_or_init(|| Thread::green(self.task.clone()))
    }
}

/// A join's result if its green thread was leaked by its runtime's
/// shutdown: it will never finish, so the join returns `Err` instead of
/// waiting for ever. Looked at after the joiner is registered, and
/// `shutdown` wakes it after flagging the green thread: one of the two
/// sees the other.
fn leaked<T>(header: &crate::task::Header) -> Option<std::thread::Result<T>> {
    header
        .abandoned
        .load(std::sync::atomic::Ordering::SeqCst)
        .then(|| Err(Box::new(worker::LEAKED) as Box<dyn std::any::Any + Send>))
}

/// Go's deadlock report: the message and every green thread.
fn deadlock_report(rt: &Handle) -> String {
    let mut out = String::from("all green threads are asleep - deadlock!\n");
    for task in rt.tasks() {
        out.push_str(&format!(
            "\ngreen thread {}{} [{}]",
            task.id.as_u64(),
            task.name
                .as_deref()
                .map(|n| format!(" '{n}'"))
                .unwrap_or_default(),
            task.blocked_on.unwrap_or(match task.state {
                crate::TaskState::Queued => "not started",
                _ => "parked",
            }),
        ));
        if let Some(at) = task.blocked_at {
            out.push_str(&format!(", blocked at {at}"));
        }
        out.push_str(&format!(", spawned at {}", task.spawned_at));
    }
    if !rt.0.starved.is_empty() {
        out.push_str(&format!(
            "\n\nthe green threads not started wait for a stack, and every stack is held by a \
             green thread above: {}",
            rt.0.stacks.limit_reached()
        ));
    }
    out
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `JoinHandle { .. }`, as std's.
        f.debug_struct("JoinHandle").finish_non_exhaustive()
    }
}

/// A [`JoinHandle`] awaited from async code: `handle.await` (or
/// `handle.into_future()`) gives the green thread's result, as `join` does,
/// without blocking the executor's thread: the green thread's completion
/// wakes the awaiting task's `Waker`, from whichever worker it finishes on.
/// Works under any executor (tokio, async-std, `futures::executor`, or
/// `grove::future::block_on`).
///
/// Dropping the future before it is ready detaches the green thread, as
/// dropping its `JoinHandle` does.
///
/// ```
/// use std::future::IntoFuture;
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     // any executor; this one parks the calling thread
/// #     use std::task::{Context, Poll, Wake, Waker};
/// #     struct T(std::thread::Thread);
/// #     impl Wake for T { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = Waker::from(std::sync::Arc::new(T(std::thread::current())));
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(&waker)) { return v; }
/// #         std::thread::park();
/// #     }
/// # }
/// let handle = grove_scheduler::Handle::current()
///     .spawn(Default::default(), || 6 * 7)
///     .unwrap();
/// let answer = block_on(async move { handle.await.unwrap() });
/// assert_eq!(answer, 42);
/// ```
#[must_use = "futures do nothing unless polled; dropping it detaches the green thread"]
pub struct JoinFuture<T> {
    /// `None` once the output was taken.
    handle: Option<JoinHandle<T>>,
}

impl<T> IntoFuture for JoinHandle<T> {
    type Output = std::thread::Result<T>;
    type IntoFuture = JoinFuture<T>;

    fn into_future(self) -> JoinFuture<T> {
        JoinFuture { handle: Some(self) }
    }
}

impl<T> Future for JoinFuture<T> {
    type Output = std::thread::Result<T>;

    /// The join protocol of [`JoinHandle::join`] with the waker as the
    /// joiner: store it, announce it, and look at the state once more (a
    /// completion in between either sees the waiter or is seen here).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let handle = this
            .handle
            .as_ref()
            .expect("JoinFuture polled after it returned Ready");
        let header = handle.task.header();
        if !header.state.load().is_done() {
            header.set_join_waiter(Unparker::waker(cx.waker().clone()));
            if !header.state.register_join_waiter().is_done() {
                if let Some(leaked) = leaked(header) {
                    this.handle = None;
                    return Poll::Ready(leaked);
                }
                return Poll::Pending;
            }
        }
        let handle = this.handle.take().expect("checked above");
        // SAFETY: DONE was observed with Acquire above, and this future
        // owns the only handle (it took it by value), taken out once.
        let output = unsafe { handle.task.take_output::<T>() };
        Poll::Ready(output.expect("a finished green thread has an output"))
    }
}

impl<T> fmt::Debug for JoinFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.handle {
            Some(handle) => f.debug_tuple("JoinFuture").field(handle).finish(),
            None => f.write_str("JoinFuture(<taken>)"),
        }
    }
}
