//! Stack-overflow reporting for green threads.
//!
//! A green thread that overflows touches the guard page below its stack and
//! takes a SIGSEGV (or SIGBUS). The guard is a `PROT_NONE` page or a guard
//! region (`MADV_GUARD_INSTALL`), depending on the stack mode (see `stack`);
//! either way it is the page below the usable part, the fault's address lies
//! in it, and what follows is the same. std's handler only knows the OS
//! thread's own guard page and would turn ours into a bare "Segmentation
//! fault", so we own the handler:
//!
//! 1. It runs on an alternate signal stack (every worker makes sure it has
//!    one), since the faulting stack is full.
//! 2. It compares the fault address with the guard page of the green thread
//!    running on this OS thread, kept in a const-initialised thread-local
//!    that is safe to read from a signal handler.
//! 3. On a hit it writes `green thread 'NAME' overflowed its stack of N KiB`
//!    with `write(2)` and aborts. Recovery is never tried: the thread may
//!    hold locks and half-written data (corosensei's trap recovery is only
//!    sound for code that writes no outside memory).
//! 4. Any other fault goes to the handler that was installed before ours
//!    (std's, usually), or to the default action.

use std::cell::Cell;
use std::mem;
use std::ptr;
use std::sync::Once;

use crate::task::Header;

/// What the handler needs to know about the green thread running on this
/// OS thread: its guard page, and its task's header for the name and stack
/// size (read only if it overflows). Two words and a pointer, rebuilt on
/// every resume from its coroutine (see `Coro::running`).
#[derive(Clone, Copy)]
pub(crate) struct Running {
    guard_low: usize,
    guard_high: usize,
    header: *const Header,
}

impl Running {
    const NONE: Running = Running {
        guard_low: 0,
        guard_high: 0,
        header: ptr::null(),
    };

    pub(crate) fn new(guard: (usize, usize), header: &Header) -> Running {
        Running {
            guard_low: guard.0,
            guard_high: guard.1,
            header,
        }
    }
}

thread_local! {
    /// The green thread running on this OS thread (`header` null if none).
    static RUNNING: Cell<Running> = const { Cell::new(Running::NONE) };
}

/// Records the green thread about to run on this OS thread; its header must
/// stay alive until [`leave`].
pub(crate) fn enter(running: Running) {
    RUNNING.with(|r| r.set(running));
}

/// Records that no green thread runs on this OS thread.
pub(crate) fn leave() {
    RUNNING.with(|r| r.set(Running::NONE));
}

static INSTALL: Once = Once::new();
/// The handlers that were in place before ours, for SIGSEGV and SIGBUS.
static mut PREVIOUS: [mem::MaybeUninit<libc::sigaction>; 2] =
    [mem::MaybeUninit::uninit(), mem::MaybeUninit::uninit()];

/// Installs the process-wide handler (once) and gives the calling thread an
/// alternate signal stack if it has none.
pub(crate) fn install_for_this_thread() {
    INSTALL.call_once(|| {
        for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            // SAFETY: sigaction with a zeroed struct and our extern "C"
            // handler; PREVIOUS[i] is written before the handler can run (it
            // is installed by this very call) and never written again.
            unsafe {
                let mut action: libc::sigaction = mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let previous = ptr::addr_of_mut!(PREVIOUS[i]).cast::<libc::sigaction>();
                libc::sigaction(sig, &action, previous);
            }
        }
    });
    ensure_altstack();
}

fn ensure_altstack() {
    // SAFETY: querying the current alternate stack has no preconditions.
    let mut current: libc::stack_t = unsafe { mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    unsafe { libc::sigaltstack(ptr::null(), &mut current) };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return; // std (or the embedder) already gave this thread one
    }
    let size = 64 * 1024;
    // SAFETY: a fresh private mapping that is never unmapped: the alternate
    // stack must outlive every signal this thread can take, and a worker
    // thread lives as long as its runtime. 64 KiB per worker thread.
    let mem = unsafe {
        libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return; // overflow then shows as a plain SIGSEGV; nothing else breaks
    }
    let stack = libc::stack_t {
        ss_sp: mem,
        ss_flags: 0,
        ss_size: size,
    };
    // SAFETY: `stack` describes the mapping made above.
    unsafe { libc::sigaltstack(&stack, ptr::null_mut()) };
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    // `try_with` on a const thread-local without destructor is a plain load.
    let running = RUNNING.try_with(|r| r.get()).unwrap_or(Running::NONE);
    if !running.header.is_null() && addr >= running.guard_low && addr < running.guard_high {
        // SAFETY: `header` is set only between `enter` and `leave`, while its
        // task runs on this very thread (we interrupted it): it is alive.
        report_overflow(unsafe { &*running.header });
    }
    chain(sig, info, ctx);
}

fn report_overflow(header: &Header) -> ! {
    let mut buf = [0u8; 512];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"\ngreen thread '");
    match header.name() {
        Some(name) if !name.is_empty() => {
            let name = name.as_bytes();
            put(&name[..name.len().min(200)]);
        }
        _ => put(b"<unnamed>"),
    }
    put(b"' overflowed its stack of ");
    let mut digits = [0u8; 20];
    let mut n = header.stack_size / 1024;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b" KiB; raise it with grove::thread::Builder::stack_size or runtime::Builder::stack_size\nfatal runtime error: green-thread stack overflow, aborting\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::abort();
    }
}

fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let index = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: PREVIOUS was fully written before our handler was installed.
    let previous = unsafe {
        ptr::addr_of!(PREVIOUS[index])
            .cast::<libc::sigaction>()
            .read()
    };
    let action = previous.sa_sigaction;
    if action == libc::SIG_DFL || action == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction
        // runs again and the process dies of the signal, as it would have.
        // SAFETY: resetting a signal's disposition is async-signal-safe.
        unsafe {
            let mut dfl: libc::sigaction = mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &dfl, ptr::null_mut());
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed as an SA_SIGINFO
        // handler with exactly this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { mem::transmute(action) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler taking the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { mem::transmute(action) };
        f(sig);
    }
}
