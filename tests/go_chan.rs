//! More of Go's channel tests (The Go Authors, BSD-style licence), beside
//! the ones in `chan_golang.rs`: `TestSelectStackAdjust` from
//! src/runtime/chan_test.go, and the GOROOT test/chan programs
//! doubleselect.go, select6.go, select7.go and sieve1.go. Each keeps its Go
//! original's logic and checks; where Go sleeps so that a goroutine "has
//! surely blocked" these wait until the green thread is parked
//! (`Runtime::tasks`), and the sizes are cut to suit a debug build. Each
//! test's doc comment names its Go original and what changed.
//!
//! Left out as covered already: fifo.go (`chan_api.rs`), select.go
//! (`chan_select.rs`: send values evaluated only when chosen), select3.go
//! and select8.go (`chan_select.rs`, `chan_golang.rs`), goroutines.go
//! (`chan_stress.rs`'s daisy chain), nonblock.go (`chan_nonblocking.rs`).

#[path = "common/chan_util.rs"]
mod chan_util;

use std::collections::HashSet;

use chan_util::{block_on_each, for_each_workers, runtime, wait_blocked};
use grove::chan::{self, Receiver, Sender};
use grove::{select, thread};

/// Go's `stackGrowthRecursive`: `i` frames of about 1 KiB each.
#[inline(never)]
fn stack_growth_recursive(i: usize) {
    let mut pad = [0u8; 1024];
    std::hint::black_box(&mut pad);
    if i != 0 && pad[0] == 0 {
        stack_growth_recursive(i - 1);
    }
}

/// Go's `TestSelectStackAdjust` (runtime/chan_test.go): two goroutines grow
/// their stacks, then park in a select holding a pointer into their own
/// frame, one with each channel in two arms; closing `d` wakes both, and
/// the pointer still points at the (unchanged) local. grove never moves a
/// stack, so the pointer part holds by construction; what is tested is the
/// wake-up of a select parked with duplicate arms. Go's 10 ms sleep "so
/// both are blocked" is a wait until both are parked on their select.
#[test]
fn go_test_select_stack_adjust() {
    for_each_workers(|workers| {
        let rt = runtime(workers);
        let (c_tx, c) = chan::bounded::<usize>(0);
        let (d_tx, d) = chan::bounded::<usize>(0);
        let (ready_tx, ready) = chan::bounded::<bool>(0);
        let f = |ready: Sender<bool>, dup: bool, c: Receiver<usize>, d: Receiver<usize>| {
            move || {
                stack_growth_recursive(10);
                ready.send(true).unwrap();
                let mut val = 42;
                let cx: *mut i32 = &mut val;
                let before = cx as usize;
                let (c2, d2) = if dup {
                    (c.clone(), d.clone())
                } else {
                    (chan::never(), chan::never())
                };
                let got = select! {
                    recv(c) -> v => v.ok(),
                    recv(c2) -> v => v.ok(),
                    recv(d) -> v => v.ok(),
                    recv(d2) -> v => v.ok(),
                };
                assert_eq!(got, None, "only the close of d can end the select");
                assert_eq!(before, std::hint::black_box(cx) as usize, "cx moved");
                assert_eq!(val, 42, "val changed");
                // SAFETY: `cx` points at `val`, a live local of this frame,
                // and no reference to `val` is alive across the write.
                unsafe { *cx = 43 };
                assert_eq!(
                    std::hint::black_box(val),
                    43,
                    "changing *cx failed to change val"
                );
                ready.send(true).unwrap();
            }
        };
        let a = rt.spawn(f(ready_tx.clone(), false, c.clone(), d.clone()));
        let b = rt.spawn(f(ready_tx, true, c, d));
        ready.recv().unwrap();
        ready.recv().unwrap();
        wait_blocked(&rt, "select", 2);
        assert!(d_tx.close());
        ready.recv().unwrap();
        ready.recv().unwrap();
        a.join().unwrap();
        b.join().unwrap();
        drop(c_tx);
    });
}

/// Go's test/chan/doubleselect.go: one goroutine sends 0..N through a
/// select over four unbuffered channels, four goroutines forward what they
/// get into one multiplexed channel; every value must arrive exactly once
/// (a select send must never complete twice). N is 20,000 per worker count
/// here (Go: 100,000, once).
#[test]
fn go_test_doubleselect() {
    const ITERATIONS: usize = 20_000;
    block_on_each(|_| {
        let (c1t, c1) = chan::bounded::<usize>(0);
        let (c2t, c2) = chan::bounded::<usize>(0);
        let (c3t, c3) = chan::bounded::<usize>(0);
        let (c4t, c4) = chan::bounded::<usize>(0);
        let (done_t, done) = chan::bounded::<bool>(0);
        let (cmux_t, cmux) = chan::bounded::<usize>(0);
        grove::go(move || {
            for i in 0..ITERATIONS {
                select! {
                    send(c1t, i) -> r => r.unwrap(),
                    send(c2t, i) -> r => r.unwrap(),
                    send(c3t, i) -> r => r.unwrap(),
                    send(c4t, i) -> r => r.unwrap(),
                }
            }
            c1t.close();
            c2t.close();
            c3t.close();
            c4t.close();
        });
        for input in [c1, c2, c3, c4] {
            let (out, done_t) = (cmux_t.clone(), done_t.clone());
            grove::go(move || {
                for v in &input {
                    out.send(v).unwrap();
                }
                done_t.send(true).unwrap();
            });
        }
        grove::go(move || {
            for _ in 0..4 {
                done.recv().unwrap();
            }
            cmux_t.close();
        });
        let mut seen = HashSet::new();
        for v in &cmux {
            assert!(seen.insert(v), "got duplicate value: {v}");
        }
        assert_eq!(seen.len(), ITERATIONS, "values lost");
    });
}

/// Go's test/chan/select6.go (issue 2075): a goroutine parked in a select
/// on `c1` and `c2` is woken by `c2`, then receives on `c1` with a plain
/// receive; a second goroutine also waits on `c1`. Neither of the two
/// sends on `c1` may be given to the select's stale entry (which would
/// panic "dummy") or lost (which would hang). 1,000 rounds per worker
/// count (Go: one).
#[test]
fn go_test_select6() {
    block_on_each(|_| {
        for _ in 0..1000 {
            let (c1t, c1) = chan::bounded::<bool>(0);
            let (c2t, c2) = chan::bounded::<bool>(0);
            let (c3t, c3) = chan::bounded::<bool>(0);
            let r = c1.clone();
            let first = grove::go(move || {
                r.recv().unwrap();
            });
            let r = c1;
            let second = grove::go(move || {
                select! {
                    recv(r) -> _v => panic!("dummy"),
                    recv(c2) -> _v => c3t.send(true).unwrap(),
                }
                r.recv().unwrap();
            });
            grove::go(move || c2t.send(true).unwrap());
            c3.recv().unwrap();
            c1t.send(true).unwrap();
            c1t.send(true).unwrap();
            first.join().unwrap();
            second.join().unwrap();
        }
    });
}

/// Go's test/chan/select7.go: every pairing of a plain, a one-arm select
/// and a two-arm select send with the same three kinds of receive on an
/// unbuffered channel completes, with the value sent. Go's `runtime.Gosched`
/// is `yield_now` (a hint, not synchronisation); 100 rounds per worker
/// count (Go: one).
#[test]
fn go_test_select7() {
    type RecvF = fn(Receiver<i32>);
    fn recv1(c: Receiver<i32>) {
        assert_eq!(c.recv(), Ok(1));
    }
    fn recv2(c: Receiver<i32>) {
        select! { recv(c) -> v => assert_eq!(v, Ok(1)) }
    }
    fn recv3(c: Receiver<i32>) {
        let (_c2t, c2) = chan::bounded::<i32>(0);
        select! {
            recv(c) -> v => assert_eq!(v, Ok(1)),
            recv(c2) -> _v => unreachable!(),
        }
    }
    fn send1(recv: RecvF) {
        let (t, r) = chan::bounded::<i32>(0);
        let h = grove::go(move || recv(r));
        thread::yield_now();
        t.send(1).unwrap();
        h.join().unwrap();
    }
    fn send2(recv: RecvF) {
        let (t, r) = chan::bounded::<i32>(0);
        let h = grove::go(move || recv(r));
        thread::yield_now();
        select! { send(t, 1) -> res => res.unwrap() }
        h.join().unwrap();
    }
    fn send3(recv: RecvF) {
        let (t, r) = chan::bounded::<i32>(0);
        let h = grove::go(move || recv(r));
        thread::yield_now();
        let (c2t, _c2) = chan::bounded::<i32>(0);
        select! {
            send(t, 1) -> res => res.unwrap(),
            send(c2t, 1) -> _res => unreachable!(),
        }
        h.join().unwrap();
    }
    block_on_each(|_| {
        for _ in 0..100 {
            for send in [send1 as fn(RecvF), send2, send3] {
                for recv in [recv1 as RecvF, recv2, recv3] {
                    send(recv);
                }
            }
        }
    });
}

/// Go's test/chan/sieve1.go: the concurrent prime sieve, a pipeline that
/// grows one filtering goroutine per prime found, must yield the first 25
/// primes in order. The pipeline's goroutines, parked when the test ends,
/// are unwound by the runtime's drop (Go's exit).
#[test]
fn go_test_sieve1() {
    const PRIMES: [i32; 25] = [
        2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97,
    ];
    block_on_each(|_| {
        let (primes_t, primes) = chan::bounded::<i32>(0);
        grove::go(move || {
            let (gen_t, mut ch) = chan::bounded::<i32>(0);
            grove::go(move || {
                let mut i = 2;
                while gen_t.send(i).is_ok() {
                    i += 1;
                }
            });
            while let Ok(prime) = ch.recv() {
                if primes_t.send(prime).is_err() {
                    return;
                }
                let (next_t, next) = chan::bounded::<i32>(0);
                let input = ch;
                grove::go(move || {
                    for i in &input {
                        if i % prime != 0 && next_t.send(i).is_err() {
                            return;
                        }
                    }
                });
                ch = next;
            }
        });
        for want in PRIMES {
            assert_eq!(primes.recv(), Ok(want));
        }
    });
}
