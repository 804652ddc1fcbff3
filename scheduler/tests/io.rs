//! The poller seam (`grove_scheduler::io`) on a socket pair: a green thread
//! that would block parks until the peer writes, on 1 and 2 workers, many
//! times over (no lost wake-up between "would block" and "parked"); a
//! deadline ends the wait with `TimedOut`; OS threads wait with poll(2).

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use grove_scheduler::io::{Direction, Registration};
use grove_scheduler::{Config, Scheduler, SpawnOptions};

fn scheduler(workers: usize) -> Scheduler {
    let mut config = Config::default();
    config.workers = workers;
    config.stall_warning = None;
    Scheduler::new(config).unwrap()
}

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

/// A reader and a writer green thread pass `ROUNDS` one-byte messages each
/// way through a socket pair, each waiting on the poller for every one.
#[test]
fn green_threads_ping_pong_through_a_socket_pair() {
    const ROUNDS: u32 = 2000;
    for workers in [1, 2, 4] {
        let s = scheduler(workers);
        let (a, b) = pair();
        let at = std::panic::Location::caller();
        let ponger = s
            .spawn_at(SpawnOptions::default(), at, move || {
                // SAFETY: the socket outlives the registration (dropped first, in this closure).
                let reg = unsafe { Registration::for_current_runtime(b.as_fd()) }
                    .unwrap()
                    .unwrap();
                let mut b = &b;
                let mut buf = [0u8; 1];
                for i in 0..ROUNDS {
                    let n = reg.io(Direction::Read, None, || b.read(&mut buf)).unwrap();
                    assert_eq!((n, buf[0]), (1, i as u8));
                    reg.io(Direction::Write, None, || b.write(&buf)).unwrap();
                }
            })
            .unwrap();
        let pinger = s
            .spawn_at(SpawnOptions::default(), at, move || {
                // SAFETY: the socket outlives the registration (dropped first, in this closure).
                let reg = unsafe { Registration::for_current_runtime(a.as_fd()) }
                    .unwrap()
                    .unwrap();
                let mut a = &a;
                let mut buf = [0u8; 1];
                for i in 0..ROUNDS {
                    reg.io(Direction::Write, None, || a.write(&[i as u8]))
                        .unwrap();
                    let n = reg.io(Direction::Read, None, || a.read(&mut buf)).unwrap();
                    assert_eq!((n, buf[0]), (1, i as u8));
                }
            })
            .unwrap();
        pinger.join().unwrap();
        ponger.join().unwrap();
    }
}

#[test]
fn a_deadline_ends_the_wait() {
    let s = scheduler(1);
    let (a, _b) = pair();
    let at = std::panic::Location::caller();
    let h = s
        .spawn_at(SpawnOptions::default(), at, move || {
            // SAFETY: the socket outlives the registration (dropped first, in this closure).
            let reg = unsafe { Registration::for_current_runtime(a.as_fd()) }
                .unwrap()
                .unwrap();
            let start = Instant::now();
            let deadline = start + Duration::from_millis(30);
            let mut buf = [0u8; 1];
            let err = reg
                .io(Direction::Read, Some(deadline), || (&a).read(&mut buf))
                .unwrap_err();
            (err.kind(), start.elapsed())
        })
        .unwrap();
    let (kind, took) = h.join().unwrap();
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(took >= Duration::from_millis(30), "{took:?}");
}

/// The peer hanging up wakes a parked reader: it reads 0.
#[test]
fn a_hang_up_wakes_a_parked_reader() {
    let s = scheduler(2);
    let (a, b) = pair();
    let at = std::panic::Location::caller();
    let (parked_tx, parked_rx) = std::sync::mpsc::channel();
    let h = s
        .spawn_at(SpawnOptions::default(), at, move || {
            // SAFETY: the socket outlives the registration (dropped first, in this closure).
            let reg = unsafe { Registration::for_current_runtime(a.as_fd()) }
                .unwrap()
                .unwrap();
            parked_tx.send(()).unwrap();
            let mut buf = [0u8; 8];
            reg.io(Direction::Read, None, || (&a).read(&mut buf))
        })
        .unwrap();
    parked_rx.recv().unwrap();
    drop(b);
    assert_eq!(h.join().unwrap().unwrap(), 0);
}

#[test]
fn outside_a_green_thread_there_is_no_registration_and_poll_2_waits() {
    // SAFETY: stdin stays open; on a plain OS thread nothing is registered.
    assert!(unsafe { Registration::for_current_runtime(std::io::stdin().as_fd()) }.is_none());
    let (a, b) = pair();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        (&b).write_all(b"x").unwrap();
        b
    });
    grove_scheduler::io::wait_os(a.as_fd(), Direction::Read, None).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!((&a).read(&mut buf).unwrap(), 1);
    drop(writer.join().unwrap());
}
