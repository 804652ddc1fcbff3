//! The public API contract, item by item: every name, signature, bound,
//! return type, error variant and macro arm form the contract page gives,
//! written in exactly that shape (function pointers of the stated types,
//! trait-bound assertions, each `select!` arm form). A change that breaks a
//! program written against the contract fails to compile here. Behaviour
//! is tested by the other test files; these run only the little they need
//! to (a few channel operations, a spawn or two).
#![allow(unused)]
use std::any::Any;
use std::error::Error;
use std::fmt::{Debug, Display};
use std::io;
use std::panic::{Location, RefUnwindSafe, UnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn clone_send_sync<T: Clone + Send + Sync>() {}
fn send_sync<T: Send + Sync>() {}
fn unwind<T: UnwindSafe + RefUnwindSafe>() {}
fn err_traits<T: Debug + Display + Error>() {}
fn err_eq<T: Clone + PartialEq + Eq>() {}

#[test]
fn running_green_threads() {
    // grove::run<F,T>(f: F) -> T where F: FnOnce() -> T + Send + 'static, T: Send + 'static
    let _: fn(fn() -> u8) -> u8 = grove::run::<fn() -> u8, u8>;
    let _: fn(fn() -> u8) -> grove::thread::JoinHandle<u8> = grove::go::<fn() -> u8, u8>;
    let _: fn(fn() -> u8) -> grove::thread::JoinHandle<u8> = grove::thread::spawn::<fn() -> u8, u8>;
    let _: fn() = grove::thread::yield_now;
    let _: fn(Duration) = grove::thread::sleep;
    let _: fn() -> grove::thread::Thread = grove::thread::current;
    let _: fn() = grove::thread::park;
    let _: fn(Duration) = grove::thread::park_timeout;
    let _: fn() -> Option<usize> = grove::thread::current_worker;
    fn thread_methods(t: &grove::thread::Thread) {
        let _: grove::thread::ThreadId = t.id();
        let _: Option<&str> = t.name();
        t.unpark();
    }
    fn builder() -> io::Result<grove::thread::JoinHandle<u32>> {
        let b: grove::thread::Builder = grove::thread::Builder::new();
        let b: grove::thread::Builder = b.name(String::from("x"));
        let b: grove::thread::Builder = b.stack_size(64 * 1024usize);
        let b: grove::thread::Builder = b.on_worker(0usize);
        b.spawn(|| 1u32)
    }
    fn join_handle(h: grove::thread::JoinHandle<u32>) {
        let _: bool = h.is_finished();
        let _: &grove::thread::Thread = h.thread();
        let _: std::thread::Result<u32> = h.join();
    }
    fn scope_shape() {
        let mut v = vec![1, 2, 3];
        let r: usize = grove::thread::scope(|s: &grove::thread::Scope<'_, '_>| {
            let h: grove::thread::ScopedJoinHandle<'_, usize> = s.spawn(|| v.len());
            let _: bool = h.is_finished();
            let _: &grove::thread::Thread = h.thread();
            let x: std::thread::Result<usize> = h.join();
            x.unwrap()
        });
        v.push(r);
    }
    send_sync::<grove::thread::JoinHandle<u32>>();
    fn _debug<T: Debug>() {}
    _debug::<grove::thread::Thread>();
    _debug::<grove::thread::ThreadId>();
    _debug::<grove::thread::JoinHandle<u8>>();
    _debug::<grove::thread::Builder>();
}

#[test]
fn runtime_shapes() {
    let _: fn() -> io::Result<grove::Runtime> = grove::Runtime::new;
    let _: fn() -> grove::runtime::Builder = grove::Runtime::builder;
    fn b() -> io::Result<grove::Runtime> {
        grove::Runtime::builder()
            .workers(2usize)
            .stack_size(128 * 1024usize)
            .thread_name("p")
            .max_blocking_threads(4usize)
            .build()
    }
    fn b2() -> io::Result<grove::runtime::Runtime> {
        grove::runtime::Builder::new()
            .thread_name(String::from("p"))
            .build()
    }
    fn uses(rt: &grove::Runtime) {
        let x: u8 = rt.block_on(|| 1u8);
        let h: grove::thread::JoinHandle<u8> = rt.spawn(|| 1u8);
        let s: grove::runtime::Stats = rt.stats();
        let _: usize = s.workers;
        let _ = s.spawned;
        let _ = s.completed;
        let _ = s.live;
        let _ = s.live_stacks;
        let t: Vec<grove::runtime::TaskInfo> = rt.tasks();
        for i in t {
            let _ = i.id;
            let _: Option<String> = i.name;
            let st = i.state;
            match st {
                grove::runtime::TaskState::Queued => {}
                grove::runtime::TaskState::Running => {}
                grove::runtime::TaskState::Parked => {}
                _ => {}
            }
            let _: &'static Location<'static> = i.spawned_at;
            let _: Option<&'static str> = i.blocked_on;
        }
    }
    let _: fn() -> usize = grove::runtime::num_green_threads;
    send_sync::<grove::Runtime>();
}

#[test]
fn chan_shapes() {
    use grove::chan::*;
    let _: fn(usize) -> (Sender<u8>, Receiver<u8>) = bounded::<u8>;
    let _: fn() -> (Sender<u8>, Receiver<u8>) = unbounded::<u8>;
    let _: fn(Duration) -> Receiver<Instant> = after;
    let _: fn(Duration) -> Receiver<Instant> = tick;
    let _: fn() -> Receiver<u8> = never::<u8>;
    clone_send_sync::<Sender<u8>>();
    clone_send_sync::<Receiver<u8>>();
    unwind::<Sender<u8>>();
    unwind::<Receiver<u8>>();
    // also for a !UnwindSafe / non-Clone T
    unwind::<Sender<std::cell::Cell<u8>>>();
    clone_send_sync::<Sender<Vec<u8>>>();
    fn s(tx: &Sender<u8>) {
        let _: Result<(), SendError<u8>> = tx.send(1);
        let _: Result<(), TrySendError<u8>> = tx.try_send(1);
        let _: Result<(), SendTimeoutError<u8>> = tx.send_timeout(1, Duration::from_millis(1));
        let _: bool = tx.close();
        let _: bool = tx.is_closed();
        let _: usize = tx.len();
        let _: Option<usize> = tx.capacity();
    }
    fn r(rx: &Receiver<u8>) {
        let _: Result<u8, RecvError> = rx.recv();
        let _: Result<u8, TryRecvError> = rx.try_recv();
        let _: Result<u8, RecvTimeoutError> = rx.recv_timeout(Duration::from_millis(1));
        for _v in rx.iter() {}
        for _v in rx.try_iter() {}
        for _v in rx {}
        for _v in &rx.clone() {}
        let _: bool = rx.is_closed();
        let _: usize = rx.len();
        fn ii<I: IntoIterator<Item = u8>>(_: I) {}
        ii(rx);
    }
    fn it<I: Iterator<Item = u8>>(_: I) {}
    fn r2(rx: &Receiver<u8>) {
        it(rx.iter());
        it(rx.try_iter());
        it(rx.into_iter());
    }
    // errors
    let _ = SendError::<u8>(1).0;
    let _ = TrySendError::<u8>::Full(1);
    let _ = TrySendError::<u8>::Disconnected(1);
    let _ = SendTimeoutError::<u8>::Timeout(1);
    let _ = SendTimeoutError::<u8>::Disconnected(1);
    let _ = RecvError;
    let _ = TryRecvError::Empty;
    let _ = TryRecvError::Disconnected;
    let _ = RecvTimeoutError::Timeout;
    let _ = RecvTimeoutError::Disconnected;
    err_traits::<SendError<u8>>();
    err_traits::<TrySendError<u8>>();
    err_traits::<SendTimeoutError<u8>>();
    err_traits::<RecvError>();
    err_traits::<TryRecvError>();
    err_traits::<RecvTimeoutError>();
    // Error for a non-Debug T? crossbeam requires T: Send; std requires T: Send for Error.
    struct NoDebug;
    fn dbg_any<T: Debug>() {}
    dbg_any::<SendError<NoDebug>>();
    dbg_any::<TrySendError<NoDebug>>();
    dbg_any::<SendTimeoutError<NoDebug>>();
    err_eq::<SendError<u8>>();
    err_eq::<TrySendError<u8>>();
    err_eq::<SendTimeoutError<u8>>();
    err_eq::<RecvError>();
    err_eq::<TryRecvError>();
    err_eq::<RecvTimeoutError>();
    impl Copy for Dummy {}
    #[derive(Clone)]
    struct Dummy;
    // Copy where crossbeam has it
    fn copy<T: Copy>() {}
    copy::<SendError<u8>>();
    copy::<TrySendError<u8>>();
    copy::<SendTimeoutError<u8>>();
    copy::<RecvError>();
    copy::<TryRecvError>();
    copy::<RecvTimeoutError>();
    // Box<dyn Error> conversion via ?
    fn q() -> Result<(), Box<dyn Error + Send + Sync>> {
        let (tx, rx) = bounded::<u8>(1);
        tx.send(1)?;
        rx.recv()?;
        tx.try_send(1)?;
        rx.try_recv()?;
        tx.send_timeout(1, Duration::ZERO)?;
        rx.recv_timeout(Duration::ZERO)?;
        Ok(())
    }
}

#[test]
fn select_shapes() {
    use grove::chan::*;
    let (tx, rx) = bounded::<u8>(1);
    let _: Select<'_> = Select::new();
    let mut sel = Select::new();
    let i: usize = sel.send(&tx);
    let j: usize = sel.recv(&rx);
    let sel2: Select<'_> = sel.clone();
    let oper: SelectedOperation<'_> = sel.select();
    let _: usize = oper.index();
    if oper.index() == i {
        let _: Result<(), SendError<u8>> = oper.send(&tx.clone(), 1);
    } else {
        let _: Result<u8, RecvError> = oper.recv(&rx);
    }
    let mut sel = Select::new_biased();
    sel.recv(&rx);
    let r: Result<SelectedOperation<'_>, TrySelectError> = sel.try_select();
    if let Ok(o) = r {
        let _ = o.recv(&rx);
    }
    let mut sel = Select::new();
    sel.recv(&rx);
    let r: Result<SelectedOperation<'_>, SelectTimeoutError> = sel.select_timeout(Duration::ZERO);
    if let Ok(o) = r {
        let _ = o.recv(&rx);
    }
    let _ = tx.try_send(5);
    let _: usize = sel.ready();
    let _: Result<usize, TryReadyError> = sel.try_ready();
    let _: Result<usize, ReadyTimeoutError> = sel.ready_timeout(Duration::ZERO);
    let _: Result<usize, ReadyTimeoutError> = sel.ready_deadline(Instant::now());
    let r: Result<SelectedOperation<'_>, SelectTimeoutError> = sel.select_deadline(Instant::now());
    if let Ok(o) = r {
        let _ = o.recv(&rx);
    }
    sel.remove(0);
    drop(sel2);
}

#[test]
fn timers_shapes() {
    use grove::chan::*;
    let t: Timer = Timer::new(Duration::from_millis(1));
    let _: &Receiver<Instant> = t.receiver();
    let _: bool = t.reset(Duration::from_millis(1));
    let _: bool = t.stop();
    let tk: Ticker = Ticker::new(Duration::from_millis(1));
    let _: &Receiver<Instant> = tk.receiver();
    tk.reset(Duration::from_millis(2));
    tk.stop();
    let _: Timer = after_func(Duration::from_millis(1), || {});
    fn af<F: FnOnce() + Send + 'static>(f: F) -> Timer {
        after_func::<F>(Duration::ZERO, f)
    }
}

#[test]
fn sync_shapes() {
    use grove::sync::*;
    let m: Mutex<u8> = Mutex::new(0);
    {
        let g: std::sync::LockResult<MutexGuard<'_, u8>> = m.lock();
        drop(g);
        let g: std::sync::TryLockResult<MutexGuard<'_, u8>> = m.try_lock();
        drop(g);
    }
    let _: bool = m.is_poisoned();
    let _: std::sync::LockResult<u8> = Mutex::new(1u8).into_inner();
    let rw: RwLock<u8> = RwLock::new(0);
    {
        let g: std::sync::LockResult<RwLockReadGuard<'_, u8>> = rw.read();
        drop(g);
        let g: std::sync::LockResult<RwLockWriteGuard<'_, u8>> = rw.write();
        drop(g);
        let _ = rw.try_read();
        let _ = rw.try_write();
    }
    let cv: Condvar = Condvar::new();
    {
        let g = m.lock().unwrap();
        let (g, r): (MutexGuard<'_, u8>, WaitTimeoutResult) =
            cv.wait_timeout(g, Duration::ZERO).unwrap();
        let _: bool = r.timed_out();
        let (g, _r) = cv.wait_timeout_while(g, Duration::ZERO, |_| true).unwrap();
        let g = cv.wait_while(g, |_| false).unwrap();
        drop(g);
    }
    fn w<'a>(cv: &Condvar, g: MutexGuard<'a, u8>) -> std::sync::LockResult<MutexGuard<'a, u8>> {
        cv.wait(g)
    }
    cv.notify_one();
    cv.notify_all();
    let b: Barrier = Barrier::new(1);
    let r: BarrierWaitResult = b.wait();
    let _: bool = r.is_leader();
    let o: OnceLock<u8> = OnceLock::new();
    let _: &u8 = o.get_or_init(|| 1);
    let _: Option<&u8> = o.get();
    let _: Result<(), u8> = o.set(2);
    let once: Once = Once::new();
    once.call_once(|| {});
    let _: bool = once.is_completed();
    once.call_once_force(|_s: &OnceState| {});
    static L: LazyLock<u8> = LazyLock::new(|| 3);
    let _: u8 = *L;
    static M: Mutex<u8> = Mutex::new(0);
    static RW: RwLock<u8> = RwLock::new(0);
    static C: Condvar = Condvar::new();
    static OL: OnceLock<u8> = OnceLock::new();
    static ON: Once = Once::new();
    // WaitGroup
    let wg: WaitGroup = WaitGroup::new();
    wg.add(1usize);
    wg.done();
    wg.wait();
    clone_send_sync::<WaitGroup>();
    // Semaphore
    let sem: Semaphore = Semaphore::new(2usize);
    {
        let p: SemaphorePermit<'_> = sem.acquire();
        let _: Option<SemaphorePermit<'_>> = sem.try_acquire();
        let _: usize = sem.available_permits();
        drop(p);
        let p: SemaphorePermit<'_> = sem.acquire_many(2usize);
        drop(p);
        let _: Option<SemaphorePermit<'_>> = sem.try_acquire_many(1usize);
        let ctx = grove::context::Context::background();
        let _: Result<SemaphorePermit<'_>, grove::context::ContextError> = sem.acquire_ctx(&ctx);
    }
    let sem = Arc::new(Semaphore::new(1));
    let p: OwnedSemaphorePermit = sem.clone().acquire_owned();
    fn st<T: 'static + Send>(_: T) {}
    st(p);
    send_sync::<Semaphore>();
    // ErrGroup
    let g: ErrGroup = ErrGroup::new();
    let g2: ErrGroup<io::Error> = ErrGroup::new();
    let (g3, ctx): (ErrGroup<String>, grove::context::Context) =
        ErrGroup::with_context(&grove::context::Context::background());
    g.set_limit(2usize);
    g.go(|| Ok(()));
    let _: bool = g.try_go(|| Ok(()));
    let _: Result<(), Box<dyn Error + Send + Sync>> = g.wait();
    let _: Result<(), io::Error> = g2.wait();
    g3.go(|| Err::<(), String>("x".into()));
    let _: Result<(), String> = g3.wait();
    send_sync::<ErrGroup>();
    // std re-exports that mirror programs use
    let _: Option<Arc<u8>> = None;
    let _: Option<grove::sync::Weak<u8>> = None;
    let _: Option<grove::sync::PoisonError<u8>> = None;
    let _: Option<grove::sync::TryLockError<u8>> = None;
    let _ = grove::sync::atomic::AtomicUsize::new(0);
    let (_tx, _rx) = grove::sync::mpsc::channel::<u8>();
    let (_tx, _rx) = grove::sync::mpsc::sync_channel::<u8>(1);
}

#[test]
fn context_shapes() {
    use grove::context::*;
    let bg: Context = Context::background();
    let (c, h): (Context, CancelHandle) = bg.with_cancel();
    let _: () = h.cancel();
    let (_c, _h): (Context, CancelHandle) = bg.with_timeout(Duration::from_secs(1));
    let (_c, _h): (Context, CancelHandle) = bg.with_deadline(Instant::now());
    let _: grove::chan::Receiver<()> = c.done();
    let e: Option<ContextError> = c.err();
    match e.unwrap() {
        ContextError::Cancelled => {}
        ContextError::DeadlineExceeded => {}
    }
    let _: bool = c.is_done();
    let _: Option<Instant> = c.deadline();
    clone_send_sync::<Context>();
    clone_send_sync::<CancelHandle>();
    err_traits::<ContextError>();
    let v: Context = bg.with_value(5u32);
    let _: Option<&u32> = v.value::<u32>();
    fn wv<T: Any + Send + Sync>(c: &Context, t: T) -> Context {
        c.with_value(t)
    }
    let (cc, ch): (Context, CancelCauseHandle) = bg.with_cancel_cause();
    ch.cancel(io::Error::other("x"));
    let _: Option<Arc<dyn Error + Send + Sync>> = cc.cause();
    let _: Context = cc.without_cancel();
    let a: AfterFuncHandle = grove::context::after_func(&bg, || {});
    let _: bool = a.stop();
    clone_send_sync::<CancelCauseHandle>();
    fn dbg<T: Debug>() {}
    dbg::<Context>();
}

#[test]
fn future_and_blocking_shapes() {
    let _: fn(std::future::Ready<u8>) -> u8 = grove::future::block_on::<std::future::Ready<u8>>;
    fn b(x: &[u8]) -> usize {
        grove::blocking(|| x.len())
    }
    // F: FnOnce() -> T + Send, T: Send (no 'static)
    fn b2<F: FnOnce() -> T + Send, T: Send>(f: F) -> T {
        grove::blocking::<F, T>(f)
    }
    fn fut<T>(
        h: grove::thread::JoinHandle<T>,
    ) -> impl std::future::Future<Output = std::thread::Result<T>> {
        std::future::IntoFuture::into_future(h)
    }
    fn fut_send<T: Send + 'static>(
        h: grove::thread::JoinHandle<T>,
    ) -> impl std::future::Future<Output = std::thread::Result<T>> + Send {
        std::future::IntoFuture::into_future(h)
    }
}

#[test]
fn net_shapes() {
    use grove::net::*;
    use std::io::{Read, Write};
    use std::os::fd::{AsFd, AsRawFd, IntoRawFd};
    fn rw<T: Read + Write>() {}
    rw::<TcpStream>();
    fn rwr<'a>()
    where
        &'a TcpStream: Read + Write,
    {
    }
    rwr();
    rw::<unix::UnixStream>();
    fn rwu<'a>()
    where
        &'a unix::UnixStream: Read + Write,
    {
    }
    rwu();
    fn fds<T: AsRawFd + AsFd + IntoRawFd>() {}
    fds::<TcpListener>();
    fds::<TcpStream>();
    fds::<UdpSocket>();
    fds::<unix::UnixListener>();
    fds::<unix::UnixStream>();
    fn from<A, B: From<A>>() {}
    from::<std::net::TcpListener, TcpListener>();
    from::<std::net::TcpStream, TcpStream>();
    from::<std::net::UdpSocket, UdpSocket>();
    from::<std::os::unix::net::UnixListener, unix::UnixListener>();
    from::<std::os::unix::net::UnixStream, unix::UnixStream>();
    fn _l(l: TcpListener) -> io::Result<()> {
        let l2: TcpListener = TcpListener::bind("127.0.0.1:0")?;
        let l3: TcpListener = TcpListener::bind(("127.0.0.1", 0))?;
        let l4: TcpListener = TcpListener::bind(&[SocketAddr::from(([127, 0, 0, 1], 0))][..])?;
        let (s, a): (TcpStream, SocketAddr) = l.accept()?;
        for s in l.incoming().take(1) {
            let _: io::Result<TcpStream> = s;
        }
        let _: SocketAddr = l.local_addr()?;
        let _: TcpListener = l.try_clone()?;
        l.set_ttl(64u32)?;
        let _: u32 = l.ttl()?;
        let _: Option<io::Error> = l.take_error()?;
        l.set_nonblocking(false)?;
        let _: std::net::TcpListener = l2.into_std()?;
        Ok(())
    }
    fn _s(a: SocketAddr) -> io::Result<()> {
        let s: TcpStream = TcpStream::connect("127.0.0.1:1")?;
        let s: TcpStream = TcpStream::connect(a)?;
        let s: TcpStream = TcpStream::connect_timeout(&a, Duration::from_secs(1))?;
        let _: SocketAddr = s.peer_addr()?;
        let _: SocketAddr = s.local_addr()?;
        s.shutdown(Shutdown::Both)?;
        let _: TcpStream = s.try_clone()?;
        s.set_nodelay(true)?;
        let _: bool = s.nodelay()?;
        let mut b = [0u8; 4];
        let _: usize = s.peek(&mut b)?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        let _: Option<Duration> = s.read_timeout()?;
        s.set_write_timeout(None)?;
        let _: Option<Duration> = s.write_timeout()?;
        s.set_ttl(1)?;
        let _: u32 = s.ttl()?;
        let _: Option<io::Error> = s.take_error()?;
        s.set_nonblocking(false)?;
        let _: std::net::TcpStream = s.into_std()?;
        Ok(())
    }
    fn _u() -> io::Result<()> {
        let u: UdpSocket = UdpSocket::bind("127.0.0.1:0")?;
        u.connect("127.0.0.1:9")?;
        let _: usize = u.send(b"x")?;
        let mut b = [0u8; 4];
        let _: usize = u.recv(&mut b)?;
        let _: usize = u.send_to(b"x", "127.0.0.1:9")?;
        let (_n, _a): (usize, SocketAddr) = u.recv_from(&mut b)?;
        let (_n, _a): (usize, SocketAddr) = u.peek_from(&mut b)?;
        let _: usize = u.peek(&mut b)?;
        let _: SocketAddr = u.local_addr()?;
        let _: SocketAddr = u.peer_addr()?;
        u.set_read_timeout(Some(Duration::from_secs(1)))?;
        u.set_write_timeout(None)?;
        let _: Option<Duration> = u.read_timeout()?;
        let _: Option<Duration> = u.write_timeout()?;
        u.set_broadcast(true)?;
        let _: bool = u.broadcast()?;
        let _: UdpSocket = u.try_clone()?;
        let _: std::net::UdpSocket = u.into_std()?;
        Ok(())
    }
    fn _x() -> io::Result<()> {
        use grove::net::unix::*;
        let l: UnixListener = UnixListener::bind("/tmp/x")?;
        let (s, _a): (UnixStream, std::os::unix::net::SocketAddr) = l.accept()?;
        for s in l.incoming().take(1) {
            let _: io::Result<UnixStream> = s;
        }
        let s2: UnixStream = UnixStream::connect("/tmp/x")?;
        let (a, b): (UnixStream, UnixStream) = UnixStream::pair()?;
        a.shutdown(Shutdown::Write)?;
        let _ = a.try_clone()?;
        a.set_read_timeout(None)?;
        a.set_write_timeout(None)?;
        let _ = a.read_timeout()?;
        let _ = a.local_addr()?;
        let _ = a.peer_addr()?;
        let _ = l.local_addr()?;
        let _ = l.try_clone()?;
        let _: std::os::unix::net::UnixStream = a.into_std()?;
        let _: std::os::unix::net::UnixListener = l.into_std()?;
        Ok(())
    }
    // plain re-exports
    let _: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let _: Ipv6Addr = Ipv6Addr::LOCALHOST;
    let _: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    let _: SocketAddrV6 = SocketAddrV6::new(Ipv6Addr::LOCALHOST, 0, 0, 0);
    let _: Result<IpAddr, AddrParseError> = "x".parse();
    fn tsa<T: ToSocketAddrs>(_: T) {}
    let _ = Shutdown::Read;
    fn dbg<T: Debug>() {}
    dbg::<TcpStream>();
    dbg::<TcpListener>();
    dbg::<UdpSocket>();
    dbg::<unix::UnixStream>();
    dbg::<unix::UnixListener>();
    send_sync::<TcpStream>();
    send_sync::<TcpListener>();
    send_sync::<UdpSocket>();
}

#[test]
// `r.unwrap_or(&never())` is the contract's own arm form for an optional
// receiver.
#[allow(clippy::unnecessary_literal_unwrap)]
fn select_macro_shapes() {
    use grove::chan::*;
    fn f() -> Result<u32, RecvError> {
        let (tx, rx) = bounded::<u32>(1);
        let r: Option<&Receiver<u32>> = None;
        let ctx = grove::context::Context::background();
        let mut n = 0;
        loop {
            n += 1;
            if n > 3 {
                break;
            }
            grove::select! {
                recv(rx) -> msg => { let _m: Result<u32, RecvError> = msg; continue; },
                send(tx, 1) -> res => { let _r: Result<(), SendError<u32>> = res; },
                recv(ctx.done()) -> _x => return Ok(0),
                recv(r.unwrap_or(&never()),) -> m => { m?; },
                send(tx, 2,) -> _r => break,
                default(Duration::from_millis(1)) => {},
            }
        }
        grove::select! {
            recv(rx) -> msg => { msg?; },
            default() => {},
        }
        grove::select! {
            recv(rx) -> msg => { msg?; }
            default => {}
        }
        grove::select_biased! {
            recv(rx) -> msg => { msg?; },
            send(tx, 1) -> _r => {},
            default => {},
        }
        grove::select_biased! {
            recv(rx) -> msg => { msg?; },
            default(Duration::ZERO) => {},
        }
        grove::select_biased! {
            recv(rx) -> msg => { msg?; },
            default() => {},
        }
        // a select with only arms, blocking; evaluates to a value
        tx.send(9).unwrap();
        let v = grove::select! {
            recv(rx) -> m => m?,
            recv(never::<u32>()) -> _m => unreachable!(),
        };
        Ok(v)
    }
    grove::run(|| assert_eq!(f(), Ok(9)));
}

#[test]
fn chan_bounds_for_non_sync_t() {
    clone_send_sync::<grove::chan::Sender<std::cell::Cell<u8>>>();
    clone_send_sync::<grove::chan::Receiver<std::cell::Cell<u8>>>();
    unwind::<grove::chan::Receiver<std::cell::Cell<u8>>>();
    fn f<'a>() -> grove::chan::Select<'a> {
        grove::chan::Select::default()
    }
}
