//! Times nnrun's own f32 kernel (`kernels::sgemm`, forced on every shape)
//! against the `gemm` crate on the exact products that
//! mnist_mlp, mnist_cnn and sunspots_lstm training issue (shapes and layouts
//! logged from the training runs).
//!
//! cargo run --release --example gemm_bench [-- SAMPLES [FILTER]]
//! Threads: RAYON_NUM_THREADS (default: all cores), as in training.
//! Each sample runs a shape for >= 2 ms; the two implementations alternate
//! sample by sample; the median GFLOP/s of each is printed, and which one
//! `kernels::gemm::matmul` uses for that shape (`sgemm::wins`).

#![deny(clippy::undocumented_unsafe_blocks)]

use nnrun::kernels::gemm::{Mat, matmul_gemm_crate};
use nnrun::kernels::sgemm;
use std::time::Instant;

thread_local! {
    static START: Instant = Instant::now();
}

/// (name, m, k, n, A transposed (stored k x m), B transposed (stored n x k), accumulate)
const SHAPES: &[(&str, usize, usize, usize, bool, bool, bool)] = &[
    ("mlp fwd1", 128, 784, 512, false, false, true),
    ("mlp dW1", 784, 128, 512, true, false, false),
    ("mlp fwd2", 128, 512, 10, false, false, true),
    ("mlp dW2", 512, 128, 10, true, false, false),
    ("mlp dX2", 128, 10, 512, false, true, false),
    ("mlp eval1", 256, 784, 512, false, false, true),
    ("cnn c1 fwd", 43264, 9, 32, false, false, false),
    ("cnn c1 dK", 9, 43264, 32, true, false, false),
    ("cnn c2 fwd", 7744, 288, 64, false, false, false),
    ("cnn c2 dK", 288, 7744, 64, true, false, false),
    ("cnn c2 dX", 7744, 64, 288, false, true, false),
    ("cnn d fwd", 64, 1600, 10, false, false, true),
    ("cnn d dW", 1600, 64, 10, true, false, false),
    ("cnn d dX", 64, 10, 1600, false, true, false),
    ("cnn c1 eval", 173056, 9, 32, false, false, false),
    ("cnn c2 eval", 30976, 288, 64, false, false, false),
    ("lstm step", 32, 32, 128, false, false, true),
    ("lstm dh", 32, 128, 32, false, true, false),
    ("lstm dRk", 32, 384, 128, true, false, false),
    // Cache-resident, kernel-bound reference points.
    ("l1 peak", 48, 256, 64, false, false, true),
    ("l2 peak", 120, 256, 256, false, false, true),
];

fn vals(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 97) as f32 / 48.0 - 1.0).collect()
}

/// Seconds this thread has been on a CPU (Linux, CLOCK_THREAD_CPUTIME_ID):
/// with one thread, timing by CPU time leaves out the time the scheduler
/// gave to other processes on this shared machine.
#[cfg(target_os = "linux")]
fn cpu_now() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: plain libc call writing into ts; 3 = CLOCK_THREAD_CPUTIME_ID.
    (unsafe { clock_gettime(3, &mut ts) } == 0).then_some(ts.sec as f64 + ts.nsec as f64 * 1e-9)
}

#[cfg(not(target_os = "linux"))]
fn cpu_now() -> Option<f64> {
    None
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let samples: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    let filter = args.get(2).cloned().unwrap_or_default();
    // One thread: CPU time (robust to load); several: wall time.
    let cpu = std::env::var("RAYON_NUM_THREADS").is_ok_and(|t| t == "1") && cpu_now().is_some();
    let now = || if cpu { cpu_now().unwrap() } else { Instant::now().duration_since(START.with(|s| *s)).as_secs_f64() };
    println!("timing: {}", if cpu { "thread CPU time (1 thread)" } else { "wall time" });
    println!("{:<12} {:>7} {:>6} {:>5} {:>3}  {:>9} {:>9} {:>6} {:>5}", "shape", "m", "k", "n", "T", "gemm GF/s", "ours GF/s", "ratio", "used");
    for &(name, m, k, n, ta, tb, acc) in SHAPES {
        if !name.contains(&filter) {
            continue;
        }
        let a = vals(m * k, 1);
        let b = vals(k * n, 2);
        let av = if ta { Mat::new(&a, k, m).t() } else { Mat::new(&a, m, k) };
        let bv = if tb { Mat::new(&b, n, k).t() } else { Mat::new(&b, k, n) };
        let mut dst = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        type F = fn(&mut [f32], Mat, Mat, bool);
        fn ours(dst: &mut [f32], a: Mat, b: Mat, acc: bool) {
            assert!(sgemm::force(dst, a, b, acc, candle_core::utils::get_num_threads()), "no AVX2+FMA");
        }
        let imps: [F; 2] = [matmul_gemm_crate, ours];
        // Warm up and calibrate the iterations per sample (>= 2 ms).
        let mut iters = 1;
        for f in imps {
            for _ in 0..3 {
                f(&mut dst, av, bv, acc);
            }
        }
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                matmul_gemm_crate(&mut dst, av, bv, acc);
            }
            if t.elapsed().as_secs_f64() > 2e-3 {
                break;
            }
            iters *= 2;
        }
        let mut rates = [Vec::new(), Vec::new()];
        for _ in 0..samples {
            for (f, r) in imps.iter().zip(rates.iter_mut()) {
                dst.fill(0.0);
                let t = now();
                for _ in 0..iters {
                    f(&mut dst, av, bv, acc);
                }
                r.push(flops * iters as f64 / (now() - t) / 1e9);
            }
        }
        let g = median(&mut rates[0]);
        let o = median(&mut rates[1]);
        let t = format!("{}{}", if ta { "T" } else { "N" }, if tb { "T" } else { "N" });
        let used = if sgemm::wins(av, bv) { "ours" } else { "gemm" };
        println!("{name:<12} {m:>7} {k:>6} {n:>5} {t:>3}  {g:>9.1} {o:>9.1} {:>6.2} {used:>5}", o / g);
    }
}
