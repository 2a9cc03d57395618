//! What a process has cost so far, read from /proc (Linux): CPU seconds and peak resident
//! memory, for the benchmark (`RunOptions::measure`).

/// What a process has used so far: CPU seconds (user and system) and peak resident memory.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Usage {
    /// User and system CPU seconds.
    pub(super) cpu_s: f64,
    /// Of which in the process itself (the rest is the kernel's, for it).
    pub(super) user_s: f64,
    /// Peak resident set (VmHWM), KiB.
    pub(super) peak_rss_kib: u64,
}

impl Usage {
    /// Process `pid`'s usage; None when it is gone.
    pub(super) fn of(pid: u32) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        parse(&stat, &status)
    }

    /// The larger of two samples of one process, field by field: an exited process (a zombie)
    /// reads as nothing used, so the largest sample is the truth.
    pub(super) fn max(self, other: Usage) -> Usage {
        Usage {
            cpu_s: self.cpu_s.max(other.cpu_s),
            user_s: self.user_s.max(other.user_s),
            peak_rss_kib: self.peak_rss_kib.max(other.peak_rss_kib),
        }
    }
}

/// The usage in a `/proc/PID/stat` line and a `/proc/PID/status` text.
fn parse(stat: &str, status: &str) -> Option<Usage> {
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; clock
    // ticks of 1/100 s on Linux.
    let user: u64 = f.get(11)?.parse::<u64>().ok()?;
    let ticks: u64 = user + f.get(12)?.parse::<u64>().ok()?;
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(Usage {
        cpu_s: ticks as f64 / 100.0,
        user_s: user as f64 / 100.0,
        peak_rss_kib: hwm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ticks_after_a_name_with_spaces_and_the_peak() {
        let stat = "4242 (olt (a b)) S 1 4242 4242 0 -1 4194304 500 0 0 0 250 50 0 0 20 0 3 0";
        let status = "Name:\tolt\nVmPeak:\t  9000 kB\nVmHWM:\t  5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(
            parse(stat, status),
            Some(Usage {
                cpu_s: 3.0,
                user_s: 2.5,
                peak_rss_kib: 5120,
            })
        );
        assert_eq!(parse("4242 olt", status), None);
    }

    #[test]
    fn this_process_has_used_something() {
        let u = Usage::of(std::process::id()).unwrap();
        assert!(u.peak_rss_kib > 0);
        assert_eq!(
            u.max(Usage {
                cpu_s: 0.0,
                user_s: 0.0,
                peak_rss_kib: 0
            }),
            u
        );
    }
}
