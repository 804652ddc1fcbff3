//! A retrying client with one resettable timer (Go's `time.NewTimer` and
//! `t.Reset` in a retry loop, instead of a fresh `time.After` per attempt
//! that cannot be cancelled and piles up).
//!
//! A flaky server green thread answers requests on a channel but drops
//! some on the floor. The client sends a request and waits for the answer
//! or for its attempt timer; on a timeout it backs off (doubling the
//! timeout) and tries again, until an overall deadline. An `after_func`
//! logs when the whole run takes longer than expected, and is stopped
//! when it does not.
//!
//! Go's version:
//!
//! ```text
//! t := time.NewTimer(timeout)
//! for attempt := 1; ; attempt++ {
//!     requests <- req
//!     select {
//!     case resp := <-req.reply: return resp
//!     case <-t.C:
//!         timeout *= 2
//!         t.Reset(timeout)
//!     case <-deadline: return errGaveUp
//!     }
//! }
//! ```
//!
//! `cargo run --example retry_timer`

use std::time::{Duration, Instant};

use grove::chan::{self, Receiver, Sender, Timer};
use grove::select;

/// A request: a number to square, and where to send the answer.
struct Request {
    n: u64,
    reply: Sender<u64>,
}

/// Answers every third request it sees and never answers the others (a
/// lost packet: the request is kept, so its reply channel stays open and
/// the client can only time out).
fn flaky_server(requests: Receiver<Request>) {
    let mut lost = Vec::new();
    for (seen, req) in requests.iter().enumerate() {
        if seen % 3 == 2 {
            // A closed client is fine: it gave up on this request.
            let _ = req.reply.send(req.n * req.n);
        } else {
            lost.push(req);
        }
    }
}

#[derive(Debug)]
enum Error {
    GaveUp { attempts: u32 },
    ServerGone,
}

/// Sends `n` until an answer comes, waiting `first_timeout` for the first
/// attempt and twice as long for each next one, until `budget` is spent.
fn call(
    server: &Sender<Request>,
    n: u64,
    first_timeout: Duration,
    budget: Duration,
) -> Result<(u64, u32), Error> {
    let deadline = chan::after(budget);
    let mut timeout = first_timeout;
    // One timer for every attempt: reset, never re-made.
    let attempt_timer = Timer::new(timeout);
    for attempt in 1.. {
        let (reply, answer) = chan::bounded(1);
        server
            .send(Request { n, reply })
            .map_err(|_| Error::ServerGone)?;
        select! {
            recv(answer) -> v => return Ok((v.map_err(|_| Error::ServerGone)?, attempt)),
            recv(attempt_timer.receiver()) -> _ => {
                timeout *= 2;
                attempt_timer.reset(timeout);
                println!("  attempt {attempt} timed out; next waits {timeout:?}");
            },
            recv(deadline) -> _ => return Err(Error::GaveUp { attempts: attempt }),
        }
    }
    unreachable!("the attempts run until an answer or the deadline")
}

fn main() {
    grove::run(|| {
        let (requests, incoming) = chan::bounded::<Request>(16);
        let server = grove::go(move || flaky_server(incoming));
        let start = Instant::now();
        // Says so if the run is slow; stopped when it is not.
        let watchdog = chan::after_func(Duration::from_secs(5), || {
            eprintln!("retry_timer: the calls take longer than expected");
        });

        for n in 1..=4u64 {
            match call(
                &requests,
                n,
                Duration::from_millis(2),
                Duration::from_secs(2),
            ) {
                Ok((square, attempts)) => {
                    assert_eq!(square, n * n);
                    println!("{n}^2 = {square} after {attempts} attempt(s)");
                }
                Err(err) => panic!("call {n} failed: {err:?}"),
            }
        }
        // A call with too small a budget gives up.
        let (dead_end, _never_read) = chan::bounded::<Request>(64);
        match call(
            &dead_end,
            9,
            Duration::from_millis(1),
            Duration::from_millis(20),
        ) {
            Err(Error::GaveUp { attempts }) => {
                println!("a call to nobody gave up after {attempts} attempt(s)")
            }
            other => panic!("expected to give up, got {other:?}"),
        }

        if !watchdog.stop() {
            eprintln!("retry_timer: (the slow-run warning fired)");
        }
        drop(requests);
        server.join().unwrap();
        println!("retry_timer: ok in {:?}", start.elapsed());
    });
}
