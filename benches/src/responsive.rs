//! `responsive`: does readiness reach the green threads of one worker
//! while a CPU-bound green thread holds the other? grove only (it is a
//! property of grove's poller, which its workers poll themselves).
//!
//! A grove runtime of 2 workers; `readers` green threads on worker 1
//! (`on_worker(1)`), each answering 64-byte pings on a loopback TCP
//! connection. A plain OS thread (the pinger) sends pings one at a time,
//! round-robin over the connections, with gaps of 0 to 3 ms between them
//! (long enough for worker 1 to run out of work and go to sleep, in the
//! poller or on its futex), and times each round trip. With `hog`, each
//! of the `episodes` starts with a green thread placed on worker 0 that
//! computes without ever yielding until the episode's pings are done: it
//! holds worker 0 throughout, so worker 0 polls nothing, and the readers'
//! wake-ups depend on worker 1 (or on a third party) noticing readiness.
//!
//! A round trip that has no answer within [`ANSWER_LIMIT`] is a *stall*:
//! the hog is stopped, the answer is still awaited (it then comes once
//! worker 0 is free, and its round trip is recorded as it is), and the
//! episode ends there.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes of each ping.
const PING: usize = 64;

/// The gaps between pings, in turn.
const GAPS: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_micros(50),
    Duration::from_micros(500),
    Duration::from_millis(3),
];

/// A ping with no answer for this long is a stall.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(1);

/// The longest a stalled ping's answer is awaited once the hog stopped.
const LATE_ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// What one measurement found.
#[derive(Clone, Debug)]
pub struct Readiness {
    /// Round trips timed.
    pub pings: usize,
    /// Median round trip.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Longest.
    pub max: Duration,
    /// Pings with no answer within [`ANSWER_LIMIT`].
    pub stalls: usize,
}

/// Runs the measurement (see the module doc): `pings` pings in all, over
/// `episodes` episodes, with or without the hog on worker 0.
pub fn measure(
    hog: bool,
    readers: usize,
    pings: usize,
    episodes: usize,
) -> Result<Readiness, String> {
    let e = |what: &'static str| move |err: std::io::Error| format!("{what}: {err}");
    let rt = grove::Runtime::builder()
        .workers(2)
        .thread_name("responsive")
        .build()
        .map_err(e("runtime"))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(e("bind"))?;
    let addr = listener.local_addr().map_err(e("bind"))?;
    let mut clients = Vec::with_capacity(readers);
    for _ in 0..readers.max(1) {
        let c = std::net::TcpStream::connect(addr).map_err(e("connect"))?;
        c.set_nodelay(true).map_err(e("TCP_NODELAY"))?;
        clients.push(c);
    }
    let n = clients.len();
    rt.block_on(move || -> Result<(), String> {
        let listener = grove::net::TcpListener::from(listener);
        for _ in 0..n {
            let (mut conn, _) = listener.accept().map_err(e("accept"))?;
            grove::thread::Builder::new()
                .on_worker(1)
                .spawn(move || {
                    let _ = conn.set_nodelay(true);
                    let mut buf = [0u8; PING];
                    while conn.read_exact(&mut buf).is_ok() && conn.write_all(&buf).is_ok() {}
                })
                .map_err(e("spawn a reader"))?;
        }
        Ok(())
    })?;
    let mut samples: Vec<Duration> = Vec::with_capacity(pings);
    let mut stalls = 0;
    let episodes = episodes.max(1);
    let mut seq = 0usize;
    for episode in 0..episodes {
        let per = pings / episodes + usize::from(episode < pings % episodes);
        let hog = hog.then(|| Hog::start(&rt)).transpose()?;
        let mut stalled = false;
        for _ in 0..per {
            let gap = GAPS[seq % GAPS.len()];
            if !gap.is_zero() {
                std::thread::sleep(gap);
            }
            let conn = &mut clients[seq % n];
            let ping = ping(seq);
            seq += 1;
            let start = Instant::now();
            conn.write_all(&ping).map_err(e("ping"))?;
            conn.set_read_timeout(Some(ANSWER_LIMIT))
                .map_err(e("timeout"))?;
            let mut back = [0u8; PING];
            if let Err(err) = conn.read_exact(&mut back) {
                if !matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    return Err(format!("answer: {err}"));
                }
                // A stall: let worker 0 go, then take the late answer.
                stalls += 1;
                stalled = true;
                if let Some(hog) = &hog {
                    hog.stop();
                }
                conn.set_read_timeout(Some(LATE_ANSWER_LIMIT))
                    .map_err(e("timeout"))?;
                conn.read_exact(&mut back)
                    .map_err(e("the stalled ping's answer"))?;
            }
            samples.push(start.elapsed());
            if back != ping {
                return Err(format!(
                    "responsive: WRONG RESULT: ping {} answered with other bytes",
                    seq - 1
                ));
            }
            if stalled {
                break;
            }
        }
        if let Some(hog) = hog {
            hog.finish()?;
        }
    }
    drop(clients);
    drop(rt);
    samples.sort_unstable();
    let at = |q: f64| {
        let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len().max(1));
        samples.get(rank - 1).copied().unwrap_or_default()
    };
    Ok(Readiness {
        pings: samples.len(),
        p50: at(0.5),
        p99: at(0.99),
        max: at(1.0),
        stalls,
    })
}

/// Ping `seq`'s bytes.
fn ping(seq: usize) -> [u8; PING] {
    let mut p = [0u8; PING];
    for (i, b) in p.iter_mut().enumerate() {
        *b = seq.wrapping_mul(7).wrapping_add(i) as u8;
    }
    p
}

/// A green thread on worker 0 that computes, never yielding, until
/// stopped.
struct Hog {
    go: Arc<AtomicBool>,
    handle: grove::thread::JoinHandle<u64>,
}

impl Hog {
    /// Starts it, from this plain OS thread, and waits until it runs.
    fn start(rt: &grove::Runtime) -> Result<Hog, String> {
        let go = Arc::new(AtomicBool::new(true));
        let running = Arc::new(AtomicBool::new(false));
        let (go2, running2) = (go.clone(), running.clone());
        let handle = grove::thread::Builder::new()
            .on_worker(0)
            .spawn_on(rt, move || {
                running2.store(true, Ordering::SeqCst);
                let mut x = 1u64;
                while go2.load(Ordering::Relaxed) {
                    for _ in 0..1000 {
                        x = x
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                    }
                    std::hint::black_box(x);
                }
                x
            })
            .map_err(|err| format!("spawn the hog: {err}"))?;
        let since = Instant::now();
        while !running.load(Ordering::SeqCst) {
            if since.elapsed() > LATE_ANSWER_LIMIT {
                return Err("the hog never started on worker 0".into());
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        Ok(Hog { go, handle })
    }

    fn stop(&self) {
        self.go.store(false, Ordering::Relaxed);
    }

    fn finish(self) -> Result<(), String> {
        self.stop();
        self.handle
            .join()
            .map(drop)
            .map_err(|_| "the hog panicked".to_string())
    }
}
