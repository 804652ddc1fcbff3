//! Go's `time.Timer`, `time.Ticker` and `time.AfterFunc`: timers that can
//! be stopped and reset.
//!
//! A [`Timer`] or [`Ticker`] is a timer channel (see `timers`) whose
//! deadline can move: nothing is sent ahead of a receiver, a receive parks
//! until the current deadline, and a stop or reset wakes whoever is parked
//! so that it looks again. So a stopped or reset timer never delivers a
//! stale value (Go 1.23), and a timer nobody waits on costs no entry in
//! any timer heap: a million armed-then-stopped timers are a million small
//! allocations, freed when dropped.
//!
//! [`after_func`] needs something that fires without a receiver: one
//! process-wide service thread watches deadline heaps of the armed
//! `after_func` timers (a shard per CPU, each behind its own lock, so that
//! workers arming and stopping timers do not queue on one lock) and, when
//! one is due, starts its function in a new green thread on the runtime
//! `after_func` was called from. A stop or
//! reset leaves the old heap entry behind, recognised as stale by the
//! timer's generation; once stale entries outnumber the live ones they are
//! swept (Go's timer heap does the same with its "zombies"), so a million
//! armed-then-stopped `after_func`s do not pile up either.

use std::cell::Cell;
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use grove_scheduler::scheduler::Handle;
use grove_scheduler::{SpawnOptions, WakeHold};

use crate::api::{Flavor, Receiver};
use crate::timers::Tick;

/// Go's `time.Timer`: delivers one `Instant` (its deadline) on its
/// [`receiver`](Self::receiver) once its duration has passed, unless it is
/// stopped first; [`reset`](Self::reset) arms it again.
///
/// Go 1.23 semantics: once `stop` or `reset` returns, no value from before
/// it will be received (nothing is buffered ahead of the receiver), so
/// there is no need to drain the channel as older Go code did.
///
/// ```
/// use std::time::Duration;
/// use grove_channels::{bounded, select, Timer};
///
/// // An idle timeout that every message pushes back.
/// let (tx, rx) = bounded::<u32>(8);
/// for i in 0..3 {
///     tx.send(i).unwrap();
/// }
/// let idle = Timer::new(Duration::from_millis(20));
/// let mut got = Vec::new();
/// loop {
///     select! {
///         recv(rx) -> v => {
///             got.push(v.unwrap());
///             idle.reset(Duration::from_millis(20));
///         },
///         recv(idle.receiver()) -> _ => break, // 20 ms without a message
///     }
/// }
/// assert_eq!(got, [0, 1, 2]);
/// ```
///
/// A `Timer` is `Send + Sync`: one green thread may wait on it while
/// another stops or resets it.
pub struct Timer {
    rx: Receiver<Instant>,
    core: Arc<Tick>,
    /// Made by `after_func`: firing runs its function.
    func: bool,
}

impl Timer {
    /// A timer that fires once `d` has passed (Go's `time.NewTimer`).
    pub fn new(d: Duration) -> Timer {
        let core = Arc::new(Tick::one_shot(d));
        Timer {
            rx: Receiver {
                flavor: Flavor::Tick(core.clone(), |i| i),
            },
            core,
            func: false,
        }
    }

    /// The channel the timer delivers on: it receives the timer's deadline
    /// (the instant it fired) once. Use it in `select!` or call `recv`.
    /// For an [`after_func`] timer it never delivers (Go's `AfterFunc`
    /// timer has no channel).
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the timer. True if that kept a delivery from happening: the
    /// timer was armed, or had fired and its value was not received yet
    /// (Go 1.23: the value is never received now). False if it had been
    /// received (or its function started), or the timer was stopped
    /// already.
    ///
    /// ```
    /// use std::time::Duration;
    /// use grove_channels::Timer;
    ///
    /// let t = Timer::new(Duration::from_millis(1));
    /// grove_channels::after(Duration::from_millis(5)).recv().unwrap();
    /// assert!(t.stop(), "fired but not received: the value is dropped");
    /// assert!(t.receiver().try_recv().is_err());
    /// assert!(!t.stop(), "stopped already");
    /// ```
    pub fn stop(&self) -> bool {
        let (stopped, shard) = self.core.stop();
        if self.func && stopped {
            service().note_stale(shard);
        }
        stopped
    }

    /// Arms the timer again, to fire `d` from now; whatever it would have
    /// delivered before is not delivered. Returns what [`stop`](Self::stop)
    /// would have: true if a delivery was still to come.
    ///
    /// An [`after_func`] timer's function runs at most once (it is an
    /// `FnOnce`): once it has started, `reset` has nothing to run, leaves
    /// the timer stopped and returns false.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use grove_channels::Timer;
    ///
    /// let t = Timer::new(Duration::from_secs(3600));
    /// let start = Instant::now();
    /// assert!(t.reset(Duration::from_millis(5)), "it was armed");
    /// let fired = t.receiver().recv().unwrap();
    /// assert!(fired >= start + Duration::from_millis(5));
    /// assert!(fired < start + Duration::from_secs(3600));
    /// ```
    pub fn reset(&self, d: Duration) -> bool {
        if !self.func {
            return self.core.reset(d).0;
        }
        let armed = {
            let mut state = self.core.lock();
            if !state.has_func() {
                return false; // it ran: nothing left to arm
            }
            let armed = state.rearm(d, func_shard());
            self.core.generation.store(armed.2, Ordering::Relaxed);
            armed
        };
        let (was_armed, next, generation, shards) = armed;
        if was_armed {
            service().note_stale(shards.0);
        }
        if let Some(at) = next {
            arm_func(&self.core, at, generation, shards.1, d.is_zero());
        }
        was_armed
    }
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("next", &self.core.next())
            .field("after_func", &self.func)
            .finish()
    }
}

/// Go's `time.Ticker`: delivers an `Instant` on its
/// [`receiver`](Self::receiver) every period, on the fixed schedule
/// `start + period`, `start + 2 period`, ... A slow receiver gets the latest
/// due tick (the ones it missed are dropped); the schedule stays fixed.
///
/// ```
/// use std::time::Duration;
/// use grove_channels::Ticker;
///
/// let ticker = Ticker::new(Duration::from_millis(2));
/// let a = ticker.receiver().recv().unwrap();
/// let b = ticker.receiver().recv().unwrap();
/// assert!(b >= a + Duration::from_millis(2));
/// ticker.stop();
/// assert!(ticker
///     .receiver()
///     .recv_timeout(Duration::from_millis(10))
///     .is_err());
/// ```
pub struct Ticker {
    rx: Receiver<Instant>,
    core: Arc<Tick>,
}

impl Ticker {
    /// A ticker whose first tick comes `period` from now (Go's
    /// `time.NewTicker`).
    ///
    /// # Panics
    ///
    /// If `period` is zero, as Go's `NewTicker` does: a ticker that ticks
    /// without end is never what was meant.
    #[track_caller]
    pub fn new(period: Duration) -> Ticker {
        assert!(!period.is_zero(), "non-positive interval for Ticker::new");
        let core = Arc::new(Tick::periodic(period));
        Ticker {
            rx: Receiver {
                flavor: Flavor::Tick(core.clone(), |i| i),
            },
            core,
        }
    }

    /// The channel the ticks arrive on.
    pub fn receiver(&self) -> &Receiver<Instant> {
        &self.rx
    }

    /// Stops the ticker: no tick is delivered after this returns (a due one
    /// not yet received included) until [`reset`](Self::reset).
    pub fn stop(&self) {
        let _ = self.core.stop();
    }

    /// Stops the ticker and starts it again with a new period: the next tick
    /// comes `period` from now (Go's `Ticker.Reset`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use grove_channels::Ticker;
    ///
    /// let ticker = Ticker::new(Duration::from_secs(3600));
    /// let start = Instant::now();
    /// ticker.reset(Duration::from_millis(2));
    /// let tick = ticker.receiver().recv().unwrap();
    /// assert!(tick >= start + Duration::from_millis(2));
    /// ```
    ///
    /// # Panics
    ///
    /// If `period` is zero, as Go's `Ticker.Reset` does.
    #[track_caller]
    pub fn reset(&self, period: Duration) {
        assert!(!period.is_zero(), "non-positive interval for Ticker::reset");
        self.core.reset(period);
    }
}

impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticker")
            .field("next", &self.core.next())
            .finish()
    }
}

/// Go's `time.AfterFunc`: runs `f` in its own green thread once `d` has
/// passed, unless the returned [`Timer`] is stopped first. The green
/// thread is started on the runtime of the calling green thread (from any
/// other thread, the global runtime); if that runtime is gone by then, on
/// the global runtime: `f` is never lost with a runtime.
///
/// Dropping the `Timer` does not cancel `f` (as in Go); [`Timer::stop`]
/// does, and [`Timer::reset`] moves its start (until it has started). The
/// timer's receiver never delivers.
///
/// ```
/// use std::time::Duration;
/// use grove_channels::{after_func, bounded};
///
/// let (done_tx, done) = bounded::<&str>(1);
/// let _timer = after_func(Duration::from_millis(5), move || {
///     done_tx.send("ran").unwrap();
/// });
/// assert_eq!(done.recv(), Ok("ran"));
///
/// let cancelled = after_func(Duration::from_secs(3600), || unreachable!());
/// assert!(cancelled.stop(), "it had not started");
/// ```
pub fn after_func<F>(d: Duration, f: F) -> Timer
where
    F: FnOnce() + Send + 'static,
{
    let shard = func_shard();
    let core = Arc::new(Tick::one_shot_func(
        d,
        Handle::current(),
        Box::new(f),
        shard,
    ));
    let (next, generation) = {
        let state = core.lock();
        (state.next(), state.generation)
    };
    if let Some(at) = next {
        arm_func(&core, at, generation, shard, d.is_zero());
    }
    Timer {
        rx: Receiver {
            flavor: Flavor::Never,
        },
        core,
        func: true,
    }
}

/// Arms an `after_func` timer for `at` in shard `shard` of the service's
/// heaps, or, for a zero duration (`at_once`), starts it here as the
/// service would start it at once. Go's `BenchmarkAfterFunc` (a chain of
/// `AfterFunc(0, f)`) took 3.2-4.0 ms against Go's 0.18: each link went
/// through the service thread's lock and condition variable, and its spawn
/// from that OS thread through the injector.
fn arm_func(core: &Arc<Tick>, at: Instant, generation: u64, shard: usize, at_once: bool) {
    if !at_once {
        service().schedule(core.clone(), at, generation, shard);
        return;
    }
    // The guard goes before the start: the function is user code.
    let func = core.lock().fire(generation, at);
    if let Some(func) = func {
        func.start();
    }
}

/// The shard of the service's heaps the calling thread arms its
/// `after_func` timers in (see [`Service`]).
pub(crate) fn func_shard() -> usize {
    service().pick()
}

/// How many `after_func` timers the service holds, stale entries included
/// (for tests: stopping many does not pile them up).
#[doc(hidden)]
pub fn after_func_entries() -> usize {
    service().shards.iter().map(|s| s.lock().heap.len()).sum()
}

/// An armed `after_func` timer in one of the service's heaps: valid while
/// the timer's generation is still `generation`.
struct Entry {
    at: Instant,
    order: u64,
    generation: u64,
    /// The shard it is in, where its staleness is counted.
    shard: usize,
    timer: Arc<Tick>,
}

impl Entry {
    /// Whether this entry may still be the timer's current arming: read
    /// under its shard's lock, taken after the push that followed the
    /// arming's generation, so a live entry is never taken for a stale one.
    fn may_be_live(&self) -> bool {
        self.timer.generation.load(Ordering::Relaxed) == self.generation
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest comes first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// One of the service's heaps, with its own lock, on lines of its own
/// (two shards on one line would bounce it between their workers).
#[derive(Default)]
#[repr(align(128))]
struct Shard {
    state: Mutex<ShardState>,
}

#[derive(Default)]
struct ShardState {
    heap: BinaryHeap<Entry>,
    order: u64,
    /// Entries known to be stale (their timer was stopped or reset since).
    stale: usize,
}

impl Shard {
    fn lock(&self) -> MutexGuard<'_, ShardState> {
        // Nothing panics under this lock but an allocation failure.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The `after_func` service (see the module docs).
///
/// Its armed timers are spread over shards, one per CPU: a green thread
/// arms in its worker's shard, a plain OS thread in one given to it on its
/// first use, and a timer's stop or reset counts its stale entry in the
/// shard it was armed in. With one heap behind one lock, Go's
/// `BenchmarkStartStop` (each of two workers arming and stopping 1,000
/// `AfterFunc(Hour)`s, over 2^15 armed ones each) cost 335-397 ns a timer
/// on two workers against 235 on one: the two queued on the lock.
///
/// The service thread sleeps until the earliest deadline of all shards.
/// `wake_at` says until when: an arming earlier than that wakes it, an
/// arming while it looks (`LOOKING`) too, so none is missed: it clears
/// `notified` before it looks at the shards and sleeps only if nothing
/// set it meanwhile.
struct Service {
    shards: Box<[Shard]>,
    /// When the service thread wakes next, in nanoseconds from `base`;
    /// [`LOOKING`] while it looks at the shards or sleeps with none armed.
    wake_at: AtomicU64,
    base: Instant,
    /// Set by an arming that must wake the service thread.
    notified: Mutex<bool>,
    changed: Condvar,
    started: Once,
}

/// `Service::wake_at` while any arming must wake the service thread.
const LOOKING: u64 = u64::MAX;

/// Stale entries swept at once at the least. Guessed: sweeping costs a
/// lock per entry, so not for a handful.
const MIN_SWEEP: usize = 64;

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get().min(64));
        Service {
            shards: (0..shards).map(|_| Shard::default()).collect(),
            wake_at: AtomicU64::new(LOOKING),
            base: Instant::now(),
            notified: Mutex::new(false),
            changed: Condvar::new(),
            started: Once::new(),
        }
    })
}

impl Service {
    /// The calling thread's shard: its worker's, or one dealt to a plain
    /// OS thread round-robin on its first arming.
    fn pick(&self) -> usize {
        thread_local! {
            static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = self.shards.len();
        if let Some(worker) = grove_scheduler::thread::current_worker() {
            return worker % n;
        }
        SHARD
            .try_with(|shard| {
                shard.get().unwrap_or_else(|| {
                    let s = NEXT.fetch_add(1, Ordering::Relaxed);
                    shard.set(Some(s));
                    s
                })
            })
            .unwrap_or(0)
            % n
    }

    /// `at` in nanoseconds from `base` (at least 0, below [`LOOKING`]).
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos())
            .unwrap_or(LOOKING - 1)
            .min(LOOKING - 1)
    }

    fn notify(&self) {
        *self.notified.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_one();
    }

    /// Adds an armed timer to shard `shard`; starts the service thread on
    /// first use.
    fn schedule(&'static self, timer: Arc<Tick>, at: Instant, generation: u64, shard: usize) {
        self.started.call_once(|| {
            std::thread::Builder::new()
                .name("grove-after-func".into())
                .spawn(move || self.run())
                .expect("grove: could not start the after_func service thread");
        });
        {
            let shard = shard % self.shards.len();
            let mut state = self.shards[shard].lock();
            state.order += 1;
            let order = state.order;
            state.heap.push(Entry {
                at,
                order,
                generation,
                shard,
                timer,
            });
        }
        // After the push (see `Service`): if the service thread looked at
        // this shard before it, it has stored its `wake_at` since, or
        // still says LOOKING.
        if self.nanos(at) < self.wake_at.load(Ordering::SeqCst) {
            self.notify();
        }
    }

    /// A timer armed in shard `shard` was stopped or reset: its entry is
    /// stale. Once stale entries are as many as the live ones, sweeps them
    /// out.
    fn note_stale(&self, shard: usize) {
        let dead = {
            let mut state = self.shards[shard % self.shards.len()].lock();
            state.stale += 1;
            if state.stale < MIN_SWEEP || state.stale * 2 < state.heap.len() {
                return;
            }
            // The stale ones' timers are kept to be dropped after the lock.
            let mut dead = Vec::new();
            state.heap.retain(|e| {
                e.may_be_live() || {
                    dead.push(e.timer.clone());
                    false
                }
            });
            state.stale = 0;
            dead
        };
        // A stale entry may hold the last reference to its timer, and so to
        // an unrun function: dropped with no lock held (user code).
        drop(dead);
    }

    /// The service thread: fires due entries, forever.
    fn run(&self) {
        let mut due = Vec::new();
        loop {
            self.wake_at.store(LOOKING, Ordering::SeqCst);
            *self.notified.lock().unwrap_or_else(|e| e.into_inner()) = false;
            let now = Instant::now();
            let mut earliest: Option<Instant> = None;
            for shard in &*self.shards {
                let mut state = shard.lock();
                while state.heap.peek().is_some_and(|e| e.at <= now) {
                    due.push(state.heap.pop().expect("peeked"));
                }
                if let Some(e) = state.heap.peek() {
                    earliest = Some(earliest.map_or(e.at, |x| x.min(e.at)));
                }
            }
            if !due.is_empty() {
                // In deadline order across the shards (each shard gave its
                // own in order; a stable sort keeps it for equal instants).
                due.sort_by_key(|e: &Entry| e.at);
                for entry in due.drain(..) {
                    let func = entry.timer.lock().fire(entry.generation, entry.at);
                    if func.is_none() {
                        self.fired_stale(&entry);
                    }
                    // No lock held: starting the function may fail and drop
                    // it (or run it here, at worst), and the entry may hold
                    // the timer's last reference, and so an unrun function.
                    // A panic there (user code) must not end this thread:
                    // no `after_func` of the process would fire again.
                    let user_code = move || {
                        if let Some(func) = func {
                            func.start();
                        }
                        drop(entry);
                    };
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(user_code)).is_err() {
                        eprintln!(
                            "grove: an after_func's function or its destructor panicked on the \
                             after_func service thread; the service goes on"
                        );
                    }
                }
                continue;
            }
            let notified = self.notified.lock().unwrap_or_else(|e| e.into_inner());
            if *notified {
                continue;
            }
            match earliest {
                None => drop(self.changed.wait(notified)),
                Some(at) => {
                    self.wake_at.store(self.nanos(at), Ordering::SeqCst);
                    let now = Instant::now();
                    if at > now {
                        drop(self.changed.wait_timeout(notified, at - now));
                    }
                }
            }
        }
    }

    /// A due entry that was stale leaves the heap: one fewer to count.
    fn fired_stale(&self, entry: &Entry) {
        let mut state = self.shards[entry.shard].lock();
        state.stale = state.stale.saturating_sub(1);
    }
}

/// An `after_func`'s function and where to run it.
pub(crate) struct AfterFunc {
    runtime: Runtime,
    f: Box<dyn FnOnce() + Send>,
}

/// The runtime an `after_func` starts its function in. While the timer is
/// armed, its hold: the runtime is not deadlocked, whatever its green
/// threads wait for (one may wait for what `f` sends). Held until `f`'s
/// green thread is spawned.
enum Runtime {
    Armed(WakeHold),
    Stopped(Handle),
    /// Only while switching between the two.
    Switching,
}

impl AfterFunc {
    /// An armed function.
    pub(crate) fn new(handle: Handle, f: Box<dyn FnOnce() + Send>) -> AfterFunc {
        AfterFunc {
            runtime: Runtime::Armed(handle.into_wake_hold()),
            f,
        }
    }

    /// The timer was armed again (`reset`) or stopped: keep the runtime's
    /// deadlock report off, or not. The hold takes the handle itself, so
    /// arming and stopping move no reference count of the runtime.
    pub(crate) fn set_armed(&mut self, armed: bool) {
        self.runtime = match (
            std::mem::replace(&mut self.runtime, Runtime::Switching),
            armed,
        ) {
            (Runtime::Armed(hold), false) => Runtime::Stopped(hold.release()),
            (Runtime::Stopped(handle), true) => Runtime::Armed(handle.into_wake_hold()),
            (same, _) => same,
        };
    }

    /// Starts the function in its own green thread of its runtime; if
    /// that runtime is gone (dropped since the timer was made), in one of
    /// the calling thread's runtime, else the global one (at worst on the
    /// calling thread): Go's `AfterFunc` always runs `f` unless stopped,
    /// and `Timer::stop` has already said it started. Called with no lock
    /// held: `f` (run, or dropped) is user code.
    fn start(self) {
        // The hold lasts until the spawn below is done.
        let AfterFunc { runtime, f } = self;
        let handle = match &runtime {
            Runtime::Armed(hold) => hold.handle(),
            Runtime::Stopped(handle) => handle,
            Runtime::Switching => unreachable!("an after_func between two states"),
        };
        let at = std::panic::Location::caller();
        let Err(f) = handle.spawn_or_back(SpawnOptions::default(), at, f) else {
            return;
        };
        // Refused (the runtime shut down). As a context's `after_func`:
        // the calling thread's runtime, the global one (the calling
        // thread's may be shutting down too), failing both the calling
        // thread itself.
        let Err(f) = Handle::current().spawn_or_back(SpawnOptions::default(), at, f) else {
            return;
        };
        if let Err(f) =
            grove_scheduler::global()
                .handle()
                .spawn_or_back(SpawnOptions::default(), at, f)
        {
            f();
        }
    }
}
