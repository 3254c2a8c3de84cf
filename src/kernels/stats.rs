//! `NNRUN_PROFILE=gemm`: time every matrix product by shape and layout and
//! print a table at exit (stderr), so the GFLOP/s a product reaches inside a
//! training step (cold caches, the weights just rewritten by the optimizer)
//! can be set beside what it reaches alone in `examples/gemm_bench`.
//! Off (one relaxed load per product) unless the variable is set.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

/// 0: not read yet, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);

type Key = (usize, usize, usize, bool, bool, &'static str);

static TABLE: Mutex<Option<HashMap<Key, (u64, f64)>>> = Mutex::new(None);

/// Whether products are being timed.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = std::env::var("NNRUN_PROFILE").is_ok_and(|v| v.split(',').any(|p| p.trim() == "gemm"));
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// A started timing, from `start` (None when profiling is off).
pub struct Timer(Instant);

pub fn start() -> Option<Timer> {
    enabled().then(|| Timer(Instant::now()))
}

impl Timer {
    /// Records one m x k x n product; `ta`/`tb`: A or B stored transposed;
    /// `by`: which implementation ran it.
    pub fn stop(self, (m, k, n): (usize, usize, usize), ta: bool, tb: bool, by: &'static str) {
        let s = self.0.elapsed().as_secs_f64();
        let mut t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let e = t.get_or_insert_with(HashMap::new).entry((m, k, n, ta, tb, by)).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += s;
    }
}

/// The table, largest total time first (empty when nothing was timed).
pub fn report() -> String {
    let t = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = t.as_ref() else { return String::new() };
    let mut rows: Vec<_> = t.iter().collect();
    rows.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    let total: f64 = rows.iter().map(|r| r.1.1).sum();
    let mut out = format!("{:>7} {:>6} {:>6} {:>3} {:>5} {:>8} {:>9} {:>7} {:>6}\n", "m", "k", "n", "T", "by", "calls", "seconds", "GFLOP/s", "share");
    for (&(m, k, n, ta, tb, by), &(calls, s)) in rows {
        let flops = 2.0 * m as f64 * k as f64 * n as f64 * calls as f64;
        let lay = format!("{}{}", if ta { "T" } else { "N" }, if tb { "T" } else { "N" });
        out += &format!("{m:>7} {k:>6} {n:>6} {lay:>3} {by:>5} {calls:>8} {s:>9.3} {:>7.1} {:>5.1}%\n", flops / s / 1e9, 100.0 * s / total.max(1e-12));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_reports() {
        // Force on for this process's test (other tests may time products too).
        STATE.store(2, Ordering::Relaxed);
        let t = start().expect("on");
        t.stop((2, 3, 4), true, false, "ours");
        let r = report();
        assert!(r.lines().next().unwrap().contains("GFLOP/s"));
        assert!(r.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()[..5] == ["2", "3", "4", "TN", "ours"]), "{r}");
        STATE.store(1, Ordering::Relaxed);
        assert!(start().is_none());
    }
}
