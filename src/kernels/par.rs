//! One small thread pool for every parallel pass of the kernels: gemm
//! (ours and the gemm crate's), optimizer passes, pooling, im2col/col2im.
//! One pool, not rayon's next to sgemm's: two pools' idle workers spun
//! (sched_yield) on the cores the other pool's threads needed.
//!
//! A tiny fixed pool of `threads - 1` helper threads. A product is cut into
//! a fixed number of parts (so the result never depends on who computes
//! which part); the caller and whichever helpers are awake claim parts from
//! a counter. The caller never waits for a helper that has not started (on
//! a loaded machine it may simply do every part itself), only for parts a
//! helper is computing. Helpers spin briefly after a job (training issues
//! products back to back), then park. A caller that finds the pool busy
//! (another thread is multiplying) runs every part itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long helpers spin before parking.
const SPIN: Duration = Duration::from_micros(50);

#[derive(Clone, Copy)]
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    parts: usize,
}
// SAFETY: the caller keeps `f` alive until no helper holds the job (see run).
unsafe impl Send for Job {}

struct State {
    /// The job on offer (None once the caller has withdrawn it).
    job: Option<Job>,
    /// Helpers currently running parts of the job.
    users: usize,
    /// A part panicked on a helper.
    panicked: bool,
}

struct Pool {
    busy: Mutex<()>,
    state: Mutex<State>,
    idle: Condvar,
    next: AtomicUsize,
    posted: AtomicUsize,
    /// Set once, right after the helpers are spawned.
    helpers: OnceLock<Vec<Thread>>,
}

fn pool(helpers: usize) -> Option<&'static Pool> {
    static POOL: OnceLock<Option<&'static Pool>> = OnceLock::new();
    *POOL.get_or_init(|| {
        let shared: &'static Pool = Box::leak(Box::new(Pool {
            busy: Mutex::new(()),
            state: Mutex::new(State { job: None, users: 0, panicked: false }),
            idle: Condvar::new(),
            next: AtomicUsize::new(0),
            posted: AtomicUsize::new(0),
            helpers: OnceLock::new(),
        }));
        let mut threads = Vec::new();
        for i in 0..helpers {
            let h = std::thread::Builder::new().name(format!("nnrun-par-{i}")).spawn(move || helper(shared)).ok()?;
            threads.push(h.thread().clone());
        }
        let _ = shared.helpers.set(threads);
        Some(shared)
    })
}

fn helper(pool: &'static Pool) {
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        while pool.posted.load(Ordering::Acquire) == seen {
            spins = spins.wrapping_add(1);
            // The clock only every 64 spins: reading it was most of the spinning.
            if !spins.is_multiple_of(64) || start.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(100));
            }
        }
        seen = pool.posted.load(Ordering::Acquire);
        let job = {
            let mut st = pool.state.lock().unwrap();
            match st.job {
                Some(job) => {
                    st.users += 1;
                    job
                }
                None => continue,
            }
        };
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim_parts(pool, job))).is_ok();
        let mut st = pool.state.lock().unwrap();
        st.panicked |= !ok;
        st.users -= 1;
        if st.users == 0 {
            pool.idle.notify_all();
        }
    }
}

fn claim_parts(pool: &Pool, job: Job) {
    loop {
        let i = pool.next.fetch_add(1, Ordering::AcqRel);
        if i >= job.parts {
            return;
        }
        // SAFETY: the job is alive while we are counted in `users`.
        unsafe { (*job.f)(i) };
    }
}

/// Runs `job(i)` for every i in 0..parts, on up to `threads` threads.
pub fn run(parts: usize, threads: usize, job: &(dyn Fn(usize) + Sync)) {
    if parts <= 1 || threads <= 1 {
        return (0..parts).for_each(job);
    }
    let Some(pool) = pool(threads - 1) else {
        return (0..parts).for_each(job);
    };
    let Ok(_guard) = pool.busy.try_lock() else {
        return (0..parts).for_each(job);
    };
    // SAFETY: only the lifetime is erased (same fat pointer). The job is
    // withdrawn, and every helper that took it (counted in `users` under the
    // lock it took it under) has finished, before this function returns or
    // unwinds: a panic in our parts is caught and re-raised after the wait.
    let f = unsafe { std::mem::transmute::<&(dyn Fn(usize) + Sync), *const (dyn Fn(usize) + Sync)>(job) };
    let job_desc = Job { f, parts };
    pool.next.store(0, Ordering::Release);
    pool.state.lock().unwrap().job = Some(job_desc);
    pool.posted.fetch_add(1, Ordering::AcqRel);
    for h in pool.helpers.get().into_iter().flatten().take(threads - 1) {
        h.unpark();
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| claim_parts(pool, job_desc)));
    let mut st = pool.state.lock().unwrap();
    st.job = None;
    while st.users > 0 {
        st = pool.idle.wait(st).unwrap();
    }
    let helper_panicked = std::mem::take(&mut st.panicked);
    drop(st);
    if let Err(e) = caught {
        std::panic::resume_unwind(e);
    }
    assert!(!helper_panicked, "nnrun kernels: a part panicked on a helper thread");
}

/// Threads for the kernels: RAYON_NUM_THREADS (set by `--threads`), else
/// the CPUs. Read once: candle's get_num_threads parses /proc/cpuinfo on
/// every call unless the variable is set.
pub fn threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(candle_core::utils::get_num_threads)
}

/// A raw pointer handed to the parts of one job, each of which touches only
/// its own elements.
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: shared between the parts of one `run`, which write disjoint ranges.
unsafe impl<T> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    pub(crate) fn get(&self) -> *mut T {
        self.0
    }
}

/// Runs `f(i, piece i)` over `out` cut into pieces of `piece` elements (the
/// last may be shorter), on the pool when there are two or more. Each piece
/// is computed whole by one thread, so the result is the same on any number
/// of threads.
pub fn pieces<T: Send>(out: &mut [T], piece: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let (len, piece) = (out.len(), piece.max(1));
    let n = len.div_ceil(piece);
    if n <= 1 || threads() <= 1 {
        return out.chunks_mut(piece).enumerate().for_each(|(i, o)| f(i, o));
    }
    let ptr = SendPtr(out.as_mut_ptr());
    let job = |i: usize| {
        let (lo, hi) = (i * piece, ((i + 1) * piece).min(len));
        // SAFETY: pieces are disjoint ranges of `out`, borrowed mutably for this call.
        f(i, unsafe { std::slice::from_raw_parts_mut(ptr.get().add(lo), hi - lo) })
    };
    run(n, threads(), &job)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_piece_once_with_its_index() {
        let mut v = vec![0usize; 1003];
        super::pieces(&mut v, 10, |i, p| p.iter_mut().enumerate().for_each(|(j, x)| *x += i * 10 + j + 1));
        assert!(v.iter().enumerate().all(|(k, &x)| x == k + 1));
        let mut empty: Vec<u8> = Vec::new();
        super::pieces(&mut empty, 4, |_, _| panic!("no pieces"));
    }
}
