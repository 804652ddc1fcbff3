use grove_channels::{after, bounded, never, select, tick, unbounded, Select};
use grove_scheduler::{global, SpawnOptions};
use std::time::{Duration, Instant};

fn go<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> grove_scheduler::JoinHandle<T> {
    global().handle().spawn(SpawnOptions::default(), f).unwrap()
}

#[test]
fn pingpong_green() {
    let (tx1, rx1) = bounded::<u64>(0);
    let (tx2, rx2) = bounded::<u64>(0);
    let p = go(move || {
        for i in 0..10000 {
            tx1.send(i).unwrap();
            assert_eq!(rx2.recv().unwrap(), i + 1);
        }
    });
    let q = go(move || {
        for v in &rx1 {
            tx2.send(v + 1).unwrap();
        }
    });
    p.join().unwrap();
    q.join().unwrap();
}

#[test]
fn mpmc_checksum() {
    for cap in [0usize, 1, 64] {
        let (tx, rx) = bounded::<u64>(cap);
        let mut hs = vec![];
        for p in 0..4u64 {
            let tx = tx.clone();
            hs.push(go(move || {
                for i in 0..2500u64 {
                    tx.send(p * 10000 + i).unwrap();
                }
                0u64
            }));
        }
        drop(tx);
        for _ in 0..4 {
            let rx = rx.clone();
            hs.push(go(move || rx.iter().sum::<u64>()));
        }
        let total: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        let expect: u64 = (0..4u64)
            .map(|p| (0..2500u64).map(|i| p * 10000 + i).sum::<u64>())
            .sum();
        assert_eq!(total, expect, "cap {cap}");
    }
    let (tx, rx) = unbounded();
    for i in 0..1000 {
        tx.send(i).unwrap();
    }
    drop(tx);
    assert_eq!(rx.iter().sum::<i32>(), 499500);
}

#[test]
fn os_threads_and_green_mix() {
    let (tx, rx) = bounded::<u32>(0);
    let t = std::thread::spawn(move || {
        for i in 0..1000 {
            tx.send(i).unwrap();
        }
    });
    let g = go(move || rx.iter().count());
    assert_eq!(g.join().unwrap(), 1000);
    t.join().unwrap();
}

#[test]
fn close_semantics() {
    let (tx, rx) = bounded::<u32>(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(tx.close());
    assert!(!tx.close());
    assert!(rx.is_closed());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Ok(2));
    assert!(rx.recv().is_err());
    assert_eq!(tx.send(3).unwrap_err().0, 3);
    // blocked sender gets its value back
    let (tx, rx) = bounded::<u32>(0);
    let tx2 = tx.clone();
    let h = go(move || tx2.send(9));
    while rx.is_empty() && !h.is_finished() {
        std::thread::yield_now();
        if tx.capacity() == Some(0) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(20));
    tx.close();
    assert_eq!(h.join().unwrap().unwrap_err().0, 9);
}

#[test]
fn select_fairness_and_default() {
    let (tx1, rx1) = bounded::<u32>(100000);
    let (tx2, rx2) = bounded::<u32>(100000);
    for _ in 0..10000 {
        tx1.send(1).unwrap();
        tx2.send(2).unwrap();
    }
    let mut a = 0;
    let mut b = 0;
    for _ in 0..10000 {
        select! {
            recv(rx1) -> v => { assert_eq!(v, Ok(1)); a += 1 },
            recv(rx2) -> v => { assert_eq!(v, Ok(2)); b += 1 },
        }
    }
    assert!(a > 4000 && b > 4000, "{a} {b}");
    let (_t, r) = bounded::<u32>(0);
    let x = select! { recv(r) -> _v => 1, default => 2 };
    assert_eq!(x, 2);
    let t0 = Instant::now();
    let x = select! { recv(r) -> _v => 1, default(Duration::from_millis(30)) => 2 };
    assert_eq!(x, 2);
    assert!(t0.elapsed() >= Duration::from_millis(30));
    let x = select! { recv(never::<u32>()) -> _v => 1, recv(after(Duration::from_millis(5))) -> t => { t.unwrap(); 3 } };
    assert_eq!(x, 3);
}

#[test]
fn select_send_deferred_to_a_waiting_receiver() {
    // select send arm blocked, receiver comes later (plain recv)
    let (tx, rx) = bounded::<u32>(0);
    let h = go(move || {
        let mut evaluated = 0;
        let r = select! { send(tx, { evaluated += 1; 42 }) -> res => res };
        (r, evaluated)
    });
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(rx.recv(), Ok(42));
    let (r, e) = h.join().unwrap();
    assert!(r.is_ok());
    assert_eq!(e, 1);
    // two selects pairing on one channel
    for _ in 0..200 {
        let (tx, rx) = bounded::<u32>(0);
        let (tx_b, rx_b) = (tx.clone(), rx.clone());
        let s = go(move || select! { send(tx_b, 5) -> r => r.is_ok() });
        let r = go(move || select! { recv(rx_b) -> v => v.unwrap() });
        assert!(s.join().unwrap());
        assert_eq!(r.join().unwrap(), 5);
        drop((tx, rx));
    }
    // dynamic select
    let (tx, rx) = bounded::<u32>(1);
    let mut sel = Select::new();
    let i = sel.send(&tx);
    let op = sel.select();
    assert_eq!(op.index(), i);
    op.send(&tx, 7).unwrap();
    assert_eq!(rx.recv(), Ok(7));
}

#[test]
fn timers() {
    let t0 = Instant::now();
    let v = after(Duration::from_millis(20)).recv().unwrap();
    assert!(v >= t0 + Duration::from_millis(20));
    let tk = tick(Duration::from_millis(5));
    let a = tk.recv().unwrap();
    let b = tk.recv().unwrap();
    assert!(b >= a + Duration::from_millis(5));
    let g = go(|| {
        let t0 = Instant::now();
        after(Duration::from_millis(15)).recv().unwrap();
        t0.elapsed()
    });
    assert!(g.join().unwrap() >= Duration::from_millis(15));
    let (_t, r) = bounded::<u8>(0);
    assert!(r
        .recv_timeout(Duration::from_millis(10))
        .unwrap_err()
        .is_timeout());
}

#[test]
fn block_bodies_need_no_comma() {
    let (tx, rx) = bounded::<u32>(1);
    tx.send(3).unwrap();
    let got;
    select! {
        recv(rx) -> v => { got = v.unwrap(); }
        send(tx, 9) -> _r => { got = 100; }
        default => { got = 200; }
    }
    assert_eq!(got, 3);
}
