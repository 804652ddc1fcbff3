//! [`NofileGuard`]: the process's soft limit on open descriptors
//! (`ulimit -n`, `RLIMIT_NOFILE`) raised for a measurement and put back.

use std::io;

/// Raises this process's soft `RLIMIT_NOFILE` (as far as its hard limit
/// allows, which needs no privilege) for as long as it lives, and puts the
/// old soft limit back when dropped, on unwinding too. Child processes
/// started meanwhile inherit the raised limit.
///
/// The limit is the process's own: unlike `vm.max_map_count` it touches
/// nothing outside this process.
///
/// ```
/// use grove_test_support::NofileGuard;
///
/// let guard = NofileGuard::raise_to(4096).unwrap();
/// // Room for at most this many descriptors now (the hard limit may be lower
/// // than asked: the caller scales down and says why).
/// assert!(guard.soft() >= 1);
/// drop(guard); // the old soft limit is back
/// ```
#[derive(Debug)]
pub struct NofileGuard {
    /// The soft limit found, if this guard changed it.
    old: Option<u64>,
    soft: u64,
    hard: u64,
}

impl NofileGuard {
    /// Raises the soft limit to `wanted`, or to the hard limit if that is
    /// lower; leaves a higher soft limit as it is. `Err` only if the limit
    /// cannot be read or written at all.
    pub fn raise_to(wanted: u64) -> io::Result<NofileGuard> {
        let (soft, hard) = nofile()?;
        let target = wanted.min(hard);
        if soft >= target {
            return Ok(NofileGuard {
                old: None,
                soft,
                hard,
            });
        }
        set_soft(target, hard)?;
        Ok(NofileGuard {
            old: Some(soft),
            soft: target,
            hard,
        })
    }

    /// The soft limit while this guard lives.
    pub fn soft(&self) -> u64 {
        self.soft
    }

    /// The hard limit (the most an unprivileged process can raise to).
    pub fn hard(&self) -> u64 {
        self.hard
    }

    /// The soft limit before this guard, if it raised it.
    pub fn raised_from(&self) -> Option<u64> {
        self.old
    }
}

impl Drop for NofileGuard {
    fn drop(&mut self) {
        if let Some(old) = self.old {
            if let Err(err) = set_soft(old, self.hard) {
                eprintln!("note: FAILED to restore the open-file soft limit to {old}: {err}");
            }
        }
    }
}

/// The soft and hard `RLIMIT_NOFILE` now.
pub fn nofile() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit, which `lim` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // rlim_t is narrower than u64 on some targets.
    #[allow(clippy::unnecessary_cast)]
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

fn set_soft(soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: setrlimit reads one valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raises_within_the_hard_limit_and_restores() {
        let (soft, hard) = nofile().unwrap();
        {
            let guard = NofileGuard::raise_to(u64::MAX).unwrap();
            assert_eq!(guard.soft(), hard.max(soft));
            assert_eq!(nofile().unwrap().0, guard.soft());
        }
        assert_eq!(nofile().unwrap(), (soft, hard));
        let lower = NofileGuard::raise_to(1).unwrap();
        assert_eq!((lower.soft(), lower.raised_from()), (soft, None));
    }
}
