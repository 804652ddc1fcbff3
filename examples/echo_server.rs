//! A TCP echo server with a green thread per connection: the code of a
//! thread-per-connection server (`use grove::net` where it would say
//! `use std::net`), serving thousands of connections on a few workers.
//!
//! ```text
//! cargo run --release --example echo_server                   # self-test: 100 built-in clients, then exit
//! cargo run --release --example echo_server -- 127.0.0.1:7007 # serve there until killed
//! ```
//!
//! Each connection's green thread parks in `read` until bytes come; its
//! worker runs the others meanwhile (Go's `for { conn, _ := ln.Accept();
//! go handle(conn) }`).

use std::io::{Read, Write};

use grove::net::{SocketAddr, TcpListener, TcpStream};

/// Echoes everything `conn` sends until it closes its end.
fn handle(mut conn: TcpStream) -> std::io::Result<u64> {
    let mut buf = [0u8; 4096];
    let mut echoed = 0;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(echoed);
        }
        conn.write_all(&buf[..n])?;
        echoed += n as u64;
    }
}

/// Accepts connections forever (or `limit` of them), a green thread each.
fn serve(listener: TcpListener, limit: Option<usize>) {
    let mut handlers = Vec::new();
    for conn in listener.incoming().take(limit.unwrap_or(usize::MAX)) {
        match conn {
            Ok(conn) => handlers.push(grove::go(move || {
                if let Err(e) = handle(conn) {
                    eprintln!("connection failed: {e}");
                }
            })),
            // Out of descriptors, say: the listener keeps working.
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    for h in handlers {
        h.join().unwrap();
    }
}

/// The built-in client: sends `rounds` messages and checks each echo.
fn client(addr: SocketAddr, id: usize, rounds: usize) -> usize {
    let mut conn = TcpStream::connect(addr).expect("connect");
    conn.set_nodelay(true).unwrap();
    let mut back = Vec::new();
    for round in 0..rounds {
        let msg = format!("client {id} round {round}\n");
        conn.write_all(msg.as_bytes()).unwrap();
        back.resize(msg.len(), 0);
        conn.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    rounds
}

fn main() {
    if let Some(addr) = std::env::args().nth(1) {
        grove::run(move || {
            let listener = TcpListener::bind(addr.as_str()).expect("bind");
            println!("echo server on {}", listener.local_addr().unwrap());
            serve(listener, None);
        });
        return;
    }
    const CLIENTS: usize = 100;
    const ROUNDS: usize = 100;
    let echoed = grove::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = grove::go(move || serve(listener, Some(CLIENTS)));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| grove::go(move || client(addr, id, ROUNDS)))
            .collect();
        let echoed: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        server.join().unwrap();
        echoed
    });
    println!("{CLIENTS} clients, {echoed} messages echoed and checked");
    assert_eq!(echoed, CLIENTS * ROUNDS);
}
