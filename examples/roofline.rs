//! The machine's sgemm ceiling through nnrun's own product: C = A @ B, f32,
//! n x n x n (2048: 2 n^3 = 17.18 GFLOP), through `kernels::gemm::matmul`
//! (whichever kernel its run-time dispatch picks for the shape), 2 warm-ups,
//! then `--reps` timed products (wall time). The same measurement as
//! shared/peers/roofline.py for numpy and torch; bench/run.sh runs both at
//! the start of a full run and divides the workloads' GFLOP/s by the best.
//!
//! cargo run --release --example roofline [-- --n 2048 --reps 10 --threads 2]
//!
//! Threads: `--threads`, else RAYON_NUM_THREADS, else 2 (the peers' count);
//! the kernels read RAYON_NUM_THREADS once (`kernels::par::threads`), as
//! `nnrun train --threads` sets it.
//!
//! Prints one JSON line:
//! `{"kind":"roofline","lib":"nnrun","n":2048,"best_gflops":..,"median_gflops":..,...}`.

use nnrun::kernels::gemm::{Mat, matmul};
use nnrun::kernels::{par, sgemm};
use std::time::Instant;

fn vals(n: usize, seed: u32) -> Vec<f32> {
    (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 97) as f32 / 48.0 - 1.0).collect()
}

fn usage(msg: &str) -> ! {
    eprintln!("roofline: {msg}\nusage: roofline [--n N] [--reps R] [--threads T]");
    std::process::exit(2)
}

fn main() {
    let (mut n, mut reps, mut threads) = (2048usize, 10usize, None::<usize>);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |what: &str| -> usize {
            let v = args.next().unwrap_or_else(|| usage(&format!("{what} needs a value")));
            v.parse().ok().filter(|&v| v > 0).unwrap_or_else(|| usage(&format!("{what} {v}: not a positive integer")))
        };
        match flag.as_str() {
            "--n" => n = value("--n"),
            "--reps" => reps = value("--reps"),
            "--threads" => threads = Some(value("--threads")),
            "-h" | "--help" => usage("times nnrun's f32 matmul"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let threads = threads.or_else(|| std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse().ok())).unwrap_or(2);
    // SAFETY: at start-up, before any other thread exists (the kernels' pool
    // starts at the first product).
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };

    let (a, b) = (vals(n * n, 1), vals(n * n, 2));
    let (av, bv) = (Mat::new(&a, n, n), Mat::new(&b, n, n));
    let mut c = vec![0.0f32; n * n];
    for _ in 0..2 {
        matmul(&mut c, av, bv, false);
    }
    let mut secs = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        matmul(&mut c, av, bv, false);
        secs.push(t.elapsed().as_secs_f64());
    }
    // The first rows against a float64 product: a wrong result is no ceiling.
    let rows = n.min(8);
    let (mut err, mut scale) = (0.0f64, 0.0f64);
    for i in 0..rows {
        for j in 0..n {
            let want: f64 = (0..n).map(|k| a[i * n + k] as f64 * b[k * n + j] as f64).sum();
            err = err.max((c[i * n + j] as f64 - want).abs());
            scale = scale.max(want.abs());
        }
    }
    secs.sort_by(f64::total_cmp);
    let median = if reps % 2 == 1 { secs[reps / 2] } else { (secs[reps / 2 - 1] + secs[reps / 2]) / 2.0 };
    let flop = 2.0 * (n as f64).powi(3);
    let kernel = if sgemm::available() && sgemm::wins(av, bv) { "sgemm" } else { "gemm-crate" };
    println!(
        "{{\"kind\":\"roofline\",\"lib\":\"nnrun\",\"n\":{n},\"reps\":{reps},\"threads\":{},\"kernel\":\"{kernel}\",\"best_gflops\":{:.1},\"median_gflops\":{:.1},\"seconds_median\":{:.4},\"rel_err_vs_f64\":{:.3e}}}",
        par::threads(),
        flop / secs[0] / 1e9,
        flop / median / 1e9,
        median,
        if scale > 0.0 { err / scale } else { err },
    );
}
