//! Times nnrun's own f32 kernel (`kernels::sgemm`, forced on every shape)
//! against the `gemm` crate on the exact products that
//! mnist_mlp, mnist_cnn and sunspots_lstm training issue (shapes and layouts
//! logged from the training runs).
//!
//! cargo run --release --example gemm_bench [-- SAMPLES [FILTER]]
//! Threads: RAYON_NUM_THREADS (default: all cores), as in training.
//! Each sample runs a shape for >= 2 ms; the implementations (the gemm
//! crate, ours on AVX2, ours on AVX-512 where the CPU has it) alternate
//! sample by sample; the median GFLOP/s of each is printed, and which one
//! `kernels::gemm::matmul` uses for that shape (`sgemm::wins`).

#![deny(clippy::undocumented_unsafe_blocks)]

use nnrun::kernels::cpu::{self, Level};
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
    let levels: Vec<Level> = cpu::runnable().into_iter().filter(|&l| l >= Level::Avx2).collect();
    print!("{:<12} {:>7} {:>6} {:>5} {:>3}  {:>9}", "shape", "m", "k", "n", "T", "gemm GF/s");
    for l in &levels {
        print!(" {:>11}", format!("{} GF/s", l.name()));
    }
    let bf16 = cpu::bf16();
    if bf16 {
        print!(" {:>9}", "bf16 GF/s");
    }
    println!(" {:>6} {:>5}", "best", "used");
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
        let threads = candle_core::utils::get_num_threads();
        // Implementation 0 is the gemm crate, i > 0 ours at levels[i - 1].
        let run = |i: usize, dst: &mut [f32]| {
            if i == 0 {
                matmul_gemm_crate(dst, av, bv, acc);
            } else if i > levels.len() {
                assert!(sgemm::bf16(dst, av, bv, acc, threads));
            } else {
                assert!(cpu::with_level(levels[i - 1], || sgemm::force(dst, av, bv, acc, threads)), "no AVX2+FMA");
            }
        };
        let imps = levels.len() + 1 + bf16 as usize;
        // Warm up and calibrate the iterations per sample (>= 2 ms).
        let mut iters = 1;
        for i in 0..imps {
            for _ in 0..3 {
                run(i, &mut dst);
            }
        }
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                run(0, &mut dst);
            }
            if t.elapsed().as_secs_f64() > 2e-3 {
                break;
            }
            iters *= 2;
        }
        let mut rates = vec![Vec::new(); imps];
        for _ in 0..samples {
            for (i, r) in rates.iter_mut().enumerate() {
                dst.fill(0.0);
                let t = now();
                for _ in 0..iters {
                    run(i, &mut dst);
                }
                r.push(flops * iters as f64 / (now() - t) / 1e9);
            }
        }
        let med: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
        let t = format!("{}{}", if ta { "T" } else { "N" }, if tb { "T" } else { "N" });
        let used = if sgemm::wins(av, bv) { "ours" } else { "gemm" };
        print!("{name:<12} {m:>7} {k:>6} {n:>5} {t:>3}  {:>9.1}", med[0]);
        for x in &med[1..=levels.len()] {
            print!(" {x:>11.1}");
        }
        if bf16 {
            print!(" {:>9.1}", med[levels.len() + 1]);
        }
        let best = med[1..=levels.len()].iter().cloned().fold(0.0, f64::max);
        println!(" {:>6.2} {used:>5}", best / med[0]);
    }
}
