//! Go's `context` tests (src/context/context_test.go, the `XTest*`
//! functions, The Go Authors, BSD-style licence) that `context_tree.rs`,
//! `context_values.rs` and `context_growth.rs` do not already state:
//! `XTestSimultaneousCancels`, `XTestInterlockedCancels`,
//! `XTestLayersCancel`, `XTestLayersTimeout` and
//! `XTestCustomContextGoroutines`. Each keeps its Go original's logic and
//! checks; Go's `quiescent(t)` failure bound is the tests' usual
//! `WAIT_LIMIT`. Each doc comment names its Go original and what changed.
//!
//! Left out as covered already: `XTestBackground`, `XTestWithCancel`,
//! `XTestParentFinishesChild`, `XTestChildFinishesFirst`,
//! `XTestDeadline`, `XTestTimeout`, `XTestCanceledTimeout`, `XTestValues`,
//! `XTestCancelRemoves` (`context_growth.rs`) and
//! `XTestWithCancelCanceledParent`.

#[path = "common/sync_util.rs"]
mod sync_util;

use std::time::Duration;

use grove::chan::{self, after_func, RecvTimeoutError};
use grove::context::{CancelHandle, Context, ContextError};
use grove::runtime::num_green_threads;
use grove::select;
use grove::sync::WaitGroup;
use sync_util::{block_on_each, WAIT_LIMIT};

const SHORT: Duration = Duration::from_millis(1);
const VERY_LONG: Duration = Duration::from_secs(10_000);

/// A xorshift generator: Go's tests draw from `math/rand` with a printed
/// seed; these print theirs in every failure message.
struct Rng(u64);

impl Rng {
    fn from_time() -> (u64, Rng) {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        (seed, Rng(seed))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn done_now(c: &Context) -> bool {
    select! { recv(c.done()) -> _v => true, default => false }
}

/// Go's `XTestSimultaneousCancels`: a tree of about 100 contexts, four
/// children each, every one of whose cancel functions runs at the same
/// time on its own goroutine; every context must end up done (cancelled)
/// and every cancel call must return. Go's random map order is a shuffle
/// with a printed seed; 20 trees per worker count (Go: one).
#[test]
fn go_xtest_simultaneous_cancels() {
    block_on_each(|_| {
        let (seed, mut rng) = Rng::from_time();
        for _ in 0..20 {
            let (root, cancel) = Context::background().with_cancel();
            let mut m: Vec<(Context, CancelHandle)> = vec![(root.clone(), cancel)];
            let mut q = std::collections::VecDeque::from([root]);
            while m.len() < 100 {
                let parent = q.pop_front().unwrap();
                for _ in 0..4 {
                    let (ctx, cancel) = parent.with_cancel();
                    m.push((ctx.clone(), cancel));
                    q.push_back(ctx);
                }
            }
            rng.shuffle(&mut m);
            let wg = WaitGroup::new();
            wg.add(m.len());
            for (_, cancel) in &m {
                let (cancel, wg) = (cancel.clone(), wg.clone());
                grove::go(move || {
                    cancel.cancel();
                    wg.done();
                });
            }
            let (stuck_t, stuck) = chan::bounded::<()>(0);
            let timer = after_func(WAIT_LIMIT, move || {
                stuck_t.close();
            });
            rng.shuffle(&mut m);
            for (ctx, _) in &m {
                select! {
                    recv(ctx.done()) -> _v => {},
                    recv(stuck) -> _v => panic!("seed {seed}: timed out waiting for <-ctx.Done()"),
                }
                assert_eq!(ctx.err(), Some(ContextError::Cancelled), "seed {seed}");
            }
            let (done_t, done) = chan::bounded::<()>(0);
            grove::go(move || {
                wg.wait();
                done_t.close();
            });
            select! {
                recv(done) -> _v => {},
                recv(stuck) -> _v => panic!("seed {seed}: timed out waiting for cancel functions"),
            }
            timer.stop();
        }
    });
}

/// Go's `XTestInterlockedCancels`: a goroutine waiting on the parent's
/// `done()` cancels the child while the parent's cancel may still be
/// working through its children; the child must end up done (no deadlock
/// between the two cancels). 100 rounds per worker count (Go: one), the
/// goroutine joined each round.
#[test]
fn go_xtest_interlocked_cancels() {
    block_on_each(|_| {
        for _ in 0..100 {
            let (parent, cancel_parent) = Context::background().with_cancel();
            let (child, cancel_child) = parent.with_cancel();
            let canceller = grove::go(move || {
                assert!(parent.done().recv().is_err());
                cancel_child.cancel();
            });
            cancel_parent.cancel();
            match child.done().recv_timeout(WAIT_LIMIT) {
                Err(RecvTimeoutError::Disconnected) => {}
                other => panic!("timed out waiting for child.Done(): {other:?}"),
            }
            assert_eq!(child.err(), Some(ContextError::Cancelled));
            canceller.join().unwrap();
        }
    });
}

/// The value types of [`layers`]: Go keys each value layer by a fresh
/// pointer; grove keys values by type, so a layer takes one of eight
/// types, and a later layer of a type hides the earlier ones (nearest
/// ancestor), as a Go layer with an old key would.
#[derive(Debug)]
struct V<const K: usize>(usize);

fn with_v(ctx: &Context, k: usize, layer: usize) -> Context {
    match k {
        0 => ctx.with_value(V::<0>(layer)),
        1 => ctx.with_value(V::<1>(layer)),
        2 => ctx.with_value(V::<2>(layer)),
        3 => ctx.with_value(V::<3>(layer)),
        4 => ctx.with_value(V::<4>(layer)),
        5 => ctx.with_value(V::<5>(layer)),
        6 => ctx.with_value(V::<6>(layer)),
        _ => ctx.with_value(V::<7>(layer)),
    }
}

fn get_v(ctx: &Context, k: usize) -> Option<usize> {
    match k {
        0 => ctx.value::<V<0>>().map(|v| v.0),
        1 => ctx.value::<V<1>>().map(|v| v.0),
        2 => ctx.value::<V<2>>().map(|v| v.0),
        3 => ctx.value::<V<3>>().map(|v| v.0),
        4 => ctx.value::<V<4>>().map(|v| v.0),
        5 => ctx.value::<V<5>>().map(|v| v.0),
        6 => ctx.value::<V<6>>().map(|v| v.0),
        _ => ctx.value::<V<7>>().map(|v| v.0),
    }
}

/// Go's `testLayers`: at least 30 random layers of values, cancels and
/// timeouts (at least one of each); every value is found before and after
/// the end; then either a random cancel function ends the context at once
/// or (with `timeout`) the 1 ms timeouts end it.
fn layers(seed: u64, rng: &mut Rng, timeout: bool) {
    const MIN_LAYERS: usize = 30;
    let mut latest: [Option<usize>; 8] = [None; 8];
    let mut cancels: Vec<CancelHandle> = Vec::new();
    let mut num_timers = 0;
    let mut ctx = Context::background();
    let mut i = 0;
    while i < MIN_LAYERS
        || num_timers == 0
        || cancels.is_empty()
        || latest.iter().all(Option::is_none)
    {
        match rng.below(3) {
            0 => {
                let k = rng.below(8);
                ctx = with_v(&ctx, k, i);
                latest[k] = Some(i);
            }
            1 => {
                let (c, cancel) = ctx.with_cancel();
                ctx = c;
                cancels.push(cancel);
            }
            _ => {
                let d = if timeout { SHORT } else { VERY_LONG };
                let (c, cancel) = ctx.with_timeout(d);
                ctx = c;
                cancels.push(cancel);
                num_timers += 1;
            }
        }
        i += 1;
    }
    let check_values = |when: &str| {
        for (k, want) in latest.iter().enumerate() {
            assert_eq!(
                get_v(&ctx, k),
                *want,
                "seed {seed}: {when}: ctx.Value(V<{k}>)"
            );
        }
    };
    if !timeout {
        assert!(
            !done_now(&ctx),
            "seed {seed}: ctx should not be canceled yet"
        );
    }
    check_values("before cancel");
    if timeout {
        match ctx.done().recv_timeout(WAIT_LIMIT) {
            Err(RecvTimeoutError::Disconnected) => {}
            other => panic!("seed {seed}: ctx should have timed out: {other:?}"),
        }
        assert_eq!(
            ctx.err(),
            Some(ContextError::DeadlineExceeded),
            "seed {seed}"
        );
        check_values("after timeout");
    } else {
        cancels[rng.below(cancels.len())].cancel();
        assert!(done_now(&ctx), "seed {seed}: ctx should be canceled");
        assert_eq!(ctx.err(), Some(ContextError::Cancelled), "seed {seed}");
        check_values("after cancel");
    }
}

/// Go's `XTestLayersCancel`: [`layers`] ended by a cancel. 50 random
/// stacks per worker count (Go: one), from one printed seed.
#[test]
fn go_xtest_layers_cancel() {
    block_on_each(|_| {
        let (seed, mut rng) = Rng::from_time();
        for _ in 0..50 {
            layers(seed, &mut rng, false);
        }
    });
}

/// Go's `XTestLayersTimeout`: [`layers`] ended by its 1 ms timeouts. Go
/// also checks the error only through `Done`; here `err()` must say
/// `DeadlineExceeded`, since no cancel ran. 50 random stacks per worker
/// count (Go: one), from one printed seed.
#[test]
fn go_xtest_layers_timeout() {
    block_on_each(|_| {
        let (seed, mut rng) = Rng::from_time();
        for _ in 0..50 {
            layers(seed, &mut rng, true);
        }
    });
}

/// Go's `XTestCustomContextGoroutines`, the rows that use only the
/// built-in context types (Go's `myCtx` and `myDoneCtx`, user types
/// wrapping a Context, have no twin: grove's `Context` is one concrete
/// type): deriving cancel, value and timeout contexts, cancelling them,
/// and deriving from a cancelled one start no goroutine.
#[test]
fn go_xtest_custom_context_goroutines() {
    block_on_each(|_| {
        let g = num_green_threads();
        let check_no_goroutine = |at: &str| {
            let now = num_green_threads();
            assert_eq!(
                now,
                g,
                "{at}: {} goroutines created",
                now as isize - g as isize
            );
        };
        let (ctx1, cancel1) = Context::background().with_cancel();
        check_no_goroutine("WithCancel");
        let ctx2 = ctx1.with_value(1u32);
        let (ctx3, cancel3) = ctx2.with_cancel();
        check_no_goroutine("WithCancel of a value");
        let (ctx4, cancel4) = ctx3.with_timeout(VERY_LONG);
        check_no_goroutine("WithTimeout");
        let (ctx5, cancel5) = ctx4.with_cancel();
        check_no_goroutine("WithCancel of a timeout");
        cancel5.cancel();
        check_no_goroutine("cancel");
        let (_ctx6, cancel6) = ctx5.with_timeout(VERY_LONG);
        check_no_goroutine("WithTimeout of a cancelled context");
        cancel6.cancel();
        cancel1.cancel();
        let (ctx7, _cancel7) = ctx5.with_cancel();
        check_no_goroutine("WithCancel after cancel");
        assert!(done_now(&ctx7));
        drop((cancel3, cancel4));
        check_no_goroutine("the end");
    });
}
