//! The machine a run happened on, and when: printed at the top of the
//! table so that a pasted table carries its provenance.

use std::time::{SystemTime, UNIX_EPOCH};

/// What the table header says about the machine.
#[derive(Clone, Debug)]
pub struct Machine {
    /// Cores this process may use.
    pub cores: usize,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu: String,
    /// `uname -r` (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// `vm.max_map_count`.
    pub max_map_count: Option<u64>,
    /// `kernel.threads-max`.
    pub threads_max: Option<u64>,
    /// `kernel.pid_max`.
    pub pid_max: Option<u64>,
    /// `ulimit -u` (RLIMIT_NPROC), `None` when unlimited.
    pub nproc_limit: Option<u64>,
    /// MemTotal, bytes.
    pub mem_total: Option<u64>,
    /// UTC date and time of the run, `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_number(path: &str) -> Option<u64> {
    read_trimmed(path)?.parse().ok()
}

/// A field of `/proc/meminfo`, in bytes.
pub fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// `ulimit -u`: the soft RLIMIT_NPROC, `None` when unlimited.
pub fn nproc_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut rl) } == 0;
    (ok && rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur)
}

/// `vm.max_map_count` now.
pub fn max_map_count() -> Option<u64> {
    grove_test_support::procfs::max_map_count()
        .ok()
        .map(|n| n as u64)
}

/// `kernel.pid_max` now: every thread takes a PID.
pub fn pid_max() -> Option<u64> {
    read_number("/proc/sys/kernel/pid_max")
}

/// `kernel.threads-max` now.
pub fn threads_max() -> Option<u64> {
    read_number("/proc/sys/kernel/threads-max")
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60
    )
}

impl Machine {
    /// Reads it all now.
    pub fn probe() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpu_model(),
            kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "?".into()),
            max_map_count: max_map_count(),
            threads_max: threads_max(),
            pid_max: pid_max(),
            nproc_limit: nproc_limit(),
            mem_total: meminfo("MemTotal:"),
            date: utc_now(),
        }
    }

    /// The header lines.
    pub fn describe(&self) -> Vec<String> {
        let opt = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
        let mem = self.mem_total.map_or_else(
            || "?".into(),
            |b| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        );
        vec![
            format!(
                "machine: {} cores, {}, {mem} RAM, Linux {}",
                self.cores, self.cpu, self.kernel
            ),
            format!(
                "limits:  vm.max_map_count {}, kernel.threads-max {}, kernel.pid_max {}, ulimit -u {}",
                opt(self.max_map_count),
                opt(self.threads_max),
                opt(self.pid_max),
                self.nproc_limit
                    .map_or_else(|| "unlimited".to_string(), |v| v.to_string())
            ),
            format!("date:    {}", self.date),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
    }
}
