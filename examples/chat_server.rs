//! A chat server: every line a client sends goes to every other client.
//! Connections, channels, `select!` and context cancellation together:
//!
//! - a **hub** green thread owns the member list and `select!`s between
//!   events (join, leave, a line said) and the context being done;
//! - each **connection** has a reader green thread (lines in, to the hub)
//!   and a writer green thread that `select!`s between its outbox channel
//!   and the context, and on shutdown closes the socket, which wakes its
//!   reader (`shutdown` wakes a green thread parked reading);
//! - the **acceptor** stops when the context is done (a last connect of
//!   our own wakes it from `accept`).
//!
//! A member whose outbox is full (a client that does not read) is dropped
//! rather than allowed to stall everyone.
//!
//! ```text
//! cargo run --release --example chat_server                    # self-test: 3 built-in clients, then shutdown
//! cargo run --release --example chat_server -- 127.0.0.1:7008  # serve until killed (try `nc 127.0.0.1 7008`)
//! ```

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;

use grove::chan::{self, Receiver, Sender, TrySendError};
use grove::context::Context;
use grove::net::{SocketAddr, TcpListener, TcpStream};
use grove::select;

enum Event {
    Join(u64, Sender<String>),
    Leave(u64),
    Say(u64, String),
}

/// Lines a member may have queued before it counts as too slow.
const OUTBOX: usize = 64;

fn hub(ctx: Context, events: Receiver<Event>) {
    let mut members: HashMap<u64, Sender<String>> = HashMap::new();
    let broadcast = |members: &mut HashMap<u64, Sender<String>>, from: u64, line: String| {
        members.retain(|&id, outbox| {
            id == from
                || match outbox.try_send(line.clone()) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => false, // too slow: dropped
                    Err(_) => false,                     // gone
                }
        });
    };
    loop {
        select! {
            recv(events) -> event => match event {
                Ok(Event::Join(id, outbox)) => {
                    let _ = outbox.try_send(format!("welcome, you are #{id}, {} others here\n", members.len()));
                    broadcast(&mut members, id, format!("* #{id} joined\n"));
                    members.insert(id, outbox);
                }
                Ok(Event::Leave(id)) => {
                    members.remove(&id);
                    broadcast(&mut members, id, format!("* #{id} left\n"));
                }
                Ok(Event::Say(id, line)) => broadcast(&mut members, id, format!("#{id}: {line}\n")),
                Err(_) => break,
            },
            recv(ctx.done()) -> _ => break,
        }
    }
    // Dropping the outboxes ends every writer.
}

fn connection(ctx: Context, conn: TcpStream, id: u64, events: Sender<Event>) {
    let (outbox, inbox) = chan::bounded::<String>(OUTBOX);
    if events.send(Event::Join(id, outbox)).is_err() {
        return; // the hub is gone: shutting down
    }
    let writer_conn = conn.try_clone().expect("try_clone");
    let writer = grove::go(move || {
        let mut conn = writer_conn;
        loop {
            select! {
                recv(inbox) -> line => match line {
                    Ok(line) => if conn.write_all(line.as_bytes()).is_err() { break },
                    Err(_) => break, // dropped by the hub
                },
                recv(ctx.done()) -> _ => {
                    let _ = conn.write_all(b"* server shutting down\n");
                    break;
                }
            }
        }
        // Wakes the reader below, parked in `read`.
        let _ = conn.shutdown(Shutdown::Both);
    });
    for line in BufReader::new(&conn).lines() {
        let Ok(line) = line else { break };
        if events.send(Event::Say(id, line)).is_err() {
            break;
        }
    }
    let _ = events.send(Event::Leave(id));
    let _ = conn.shutdown(Shutdown::Both);
    writer.join().unwrap();
}

/// Serves until `ctx` is done; then every connection is closed and every
/// green thread of the server has returned.
fn serve(ctx: Context, listener: TcpListener) {
    let (events_tx, events_rx) = chan::bounded::<Event>(256);
    let hub = {
        let ctx = ctx.clone();
        grove::go(move || hub(ctx, events_rx))
    };
    let mut conns = Vec::new();
    for (id, conn) in (1..).zip(listener.incoming()) {
        if ctx.is_done() {
            break; // woken by the shutdown's own connect
        }
        let Ok(conn) = conn else { continue };
        let (ctx, events) = (ctx.clone(), events_tx.clone());
        conns.push(grove::go(move || connection(ctx, conn, id, events)));
    }
    drop(events_tx);
    hub.join().unwrap();
    for c in conns {
        c.join().unwrap();
    }
}

/// Cancels the server's context and wakes its acceptor.
fn shut_down(cancel: grove::context::CancelHandle, addr: SocketAddr) {
    cancel.cancel();
    let _ = TcpStream::connect(addr);
}

/// A built-in client: joins (and says so on `joined`), says one line once
/// `go` closes, and reads until it has heard each of the `others`.
fn client(
    addr: SocketAddr,
    name: &'static str,
    others: usize,
    joined: Sender<()>,
    go: Receiver<()>,
) -> Vec<String> {
    let conn = TcpStream::connect(addr).unwrap();
    let mut lines = BufReader::new(conn.try_clone().unwrap()).lines();
    let welcome = lines.next().unwrap().unwrap();
    assert!(welcome.starts_with("welcome"), "{welcome}");
    // The hub sent the welcome while adding us: we are a member now.
    joined.send(()).unwrap();
    let _ = go.recv(); // closed once everyone has joined
    (&conn)
        .write_all(format!("hello from {name}\n").as_bytes())
        .unwrap();
    let mut heard = Vec::new();
    for line in lines {
        let line = line.unwrap();
        if line.contains("hello from") {
            heard.push(line);
            if heard.len() == others {
                break;
            }
        }
    }
    heard
}

fn main() {
    if let Some(addr) = std::env::args().nth(1) {
        grove::run(move || {
            let listener = TcpListener::bind(addr.as_str()).expect("bind");
            println!("chat server on {}", listener.local_addr().unwrap());
            serve(Context::background(), listener);
        });
        return;
    }
    const NAMES: [&str; 3] = ["ada", "brian", "grace"];
    let heard = grove::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (ctx, cancel) = Context::background().with_cancel();
        let server = grove::go(move || serve(ctx, listener));
        let (joined_tx, joined_rx) = chan::bounded::<()>(0);
        let (go_tx, go_rx) = chan::bounded::<()>(0);
        let clients: Vec<_> = NAMES
            .iter()
            .map(|&name| {
                let (joined, go) = (joined_tx.clone(), go_rx.clone());
                grove::go(move || client(addr, name, NAMES.len() - 1, joined, go))
            })
            .collect();
        // Everyone says hello at once, after everyone has joined.
        for _ in NAMES {
            joined_rx.recv().unwrap();
        }
        go_tx.close();
        let heard: Vec<Vec<String>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        shut_down(cancel, addr);
        server.join().unwrap();
        heard
    });
    for (name, lines) in NAMES.iter().zip(&heard) {
        println!("{name} heard: {lines:?}");
        assert_eq!(lines.len(), NAMES.len() - 1);
    }
    println!("server shut down: every connection closed, every green thread returned");
}
