//! A minimal HTTP/1.1 server: a green thread per connection, keep-alive,
//! requests parsed with `httparse` (never by hand), a handler that may
//! block (`/slow` sleeps: only its green thread waits).
//!
//! ```text
//! cargo run --release --example http_server                    # self-test: 50 keep-alive clients, then exit
//! cargo run --release --example http_server -- 127.0.0.1:8080  # serve until killed (try `curl 127.0.0.1:8080/`)
//! ```
//!
//! Routes: `/` says hello, `/count` says how many requests the server has
//! answered, `/slow` answers after 50 ms; anything else is a 404. A request
//! that does not parse gets a 400 and the connection is closed.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use grove::net::{SocketAddr, TcpListener, TcpStream};

/// Requests answered, for `/count`.
static ANSWERED: AtomicU64 = AtomicU64::new(0);

/// The most a request head may take.
const MAX_HEAD: usize = 16 * 1024;

/// What the handler answers: status, reason, body.
fn route(method: &str, path: &str) -> (u16, &'static str, String) {
    match (method, path) {
        ("GET" | "HEAD", "/") => (200, "OK", "hello from grove\n".to_string()),
        ("GET" | "HEAD", "/count") => {
            let n = ANSWERED.load(Ordering::Relaxed);
            (200, "OK", format!("{n}\n"))
        }
        ("GET" | "HEAD", "/slow") => {
            // Blocking-style code: parks this green thread only.
            grove::thread::sleep(Duration::from_millis(50));
            (200, "OK", "slept 50 ms\n".to_string())
        }
        ("GET" | "HEAD", _) => (404, "Not Found", "no such page\n".to_string()),
        _ => (405, "Method Not Allowed", "GET or HEAD only\n".to_string()),
    }
}

/// Serves the requests of one connection until it closes, asks to close,
/// or sends something that is not HTTP/1.x.
fn handle(mut conn: TcpStream) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // Read until a whole head is buffered.
        let (head_len, method, path, close, body_len) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let header = |name: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                    };
                    let close =
                        header("connection").as_deref() == Some("close") || req.version == Some(0);
                    let body_len = header("content-length")
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    let method = req.method.unwrap_or("").to_string();
                    let path = req.path.unwrap_or("").to_string();
                    break (len, method, path, close, body_len);
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                Ok(httparse::Status::Partial) | Err(_) => {
                    let body = "bad request\n";
                    let resp = format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return conn.write_all(resp.as_bytes());
                }
            }
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(()); // closed between requests
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        // Skip a body (this server reads none).
        while buf.len() < head_len + body_len {
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..head_len + body_len);
        let (status, reason, body) = route(&method, &path);
        let mut resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if method != "HEAD" {
            resp.push_str(&body);
        }
        conn.write_all(resp.as_bytes())?;
        ANSWERED.fetch_add(1, Ordering::Relaxed);
        if close {
            return Ok(());
        }
    }
}

fn serve(listener: TcpListener, limit: Option<usize>) {
    let mut handlers = Vec::new();
    for conn in listener.incoming().take(limit.unwrap_or(usize::MAX)) {
        match conn {
            Ok(conn) => handlers.push(grove::go(move || {
                if let Err(e) = handle(conn) {
                    eprintln!("connection failed: {e}");
                }
            })),
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    for h in handlers {
        h.join().unwrap();
    }
}

/// Reads one response from `conn` (with `httparse`): status and body.
fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String) {
    let mut chunk = [0u8; 4096];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(len) = resp.parse(buf).expect("a valid response") {
            let body_len: usize = resp
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                .expect("Content-Length");
            let status = resp.code.unwrap();
            while buf.len() < len + body_len {
                let n = conn.read(&mut chunk).unwrap();
                assert!(n > 0, "closed mid-response");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8(buf[len..len + body_len].to_vec()).unwrap();
            buf.drain(..len + body_len);
            return (status, body);
        }
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "closed mid-response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A built-in client: `requests` requests on one keep-alive connection,
/// every answer checked; then one that asks to close.
fn client(addr: SocketAddr, requests: usize) -> usize {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut buf = Vec::new();
    for i in 0..requests {
        let (path, want) = match i % 10 {
            0 => ("/slow", 200),
            1 => ("/missing", 404),
            _ => ("/", 200),
        };
        let req = format!("GET {path} HTTP/1.1\r\nHost: grove\r\n\r\n");
        conn.write_all(req.as_bytes()).unwrap();
        let (status, body) = read_response(&mut conn, &mut buf);
        assert_eq!(status, want, "{path}: {body}");
        if path == "/" {
            assert_eq!(body, "hello from grove\n");
        }
    }
    conn.write_all(b"GET /count HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (status, _) = read_response(&mut conn, &mut buf);
    assert_eq!(status, 200);
    assert_eq!(conn.read(&mut [0u8; 1]).unwrap(), 0, "closed as asked");
    requests + 1
}

fn main() {
    if let Some(addr) = std::env::args().nth(1) {
        grove::run(move || {
            let listener = TcpListener::bind(addr.as_str()).expect("bind");
            println!("HTTP server on http://{}/", listener.local_addr().unwrap());
            serve(listener, None);
        });
        return;
    }
    const CLIENTS: usize = 50;
    const REQUESTS: usize = 40;
    let answered = grove::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = grove::go(move || serve(listener, Some(CLIENTS + 1)));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| grove::go(move || client(addr, REQUESTS)))
            .collect();
        let answered: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        // A request that is not HTTP gets a 400.
        let mut bad = TcpStream::connect(addr).unwrap();
        bad.write_all(b"HELLO?\r\n\r\n").unwrap();
        let (status, _) = read_response(&mut bad, &mut Vec::new());
        assert_eq!(status, 400);
        server.join().unwrap();
        answered
    });
    println!("{CLIENTS} keep-alive clients, {answered} responses checked");
    assert_eq!(answered, CLIENTS * (REQUESTS + 1));
    assert_eq!(ANSWERED.load(Ordering::Relaxed), answered as u64);
}
