//! Row-major f32 matrix multiply on slices: nnrun's own AVX2+FMA kernel
//! (`sgemm.rs`) where the CPU has it, else the `gemm` crate candle itself
//! uses (no BLAS to download or link).

use gemm::Parallelism;

// The view and the product checks live in `mat`; re-exported here, where
// sgemm.rs and examples/gemm_bench.rs find them.
pub use super::mat::Mat;
pub(crate) use super::mat::{check_views, flops};

/// Checks the shapes and handles empty products; false: nothing is left to do.
fn prepare(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) -> bool {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    check_views(dst, a, b);
    if k == 0 && !accumulate {
        dst.fill(0.0);
    }
    m > 0 && n > 0 && k > 0
}

/// `dst (m x n, row-major contiguous) = (accumulate ? dst : 0) + a @ b`.
pub fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    if !prepare(dst, a, b, accumulate) {
        return;
    }
    let timer = super::stats::start();
    // training.mixed_precision: mixed_bfloat16 takes the products where bf16
    // pays; else our
    // kernel where it measured faster, else the gemm crate.
    let bf16 = super::cpu::mixed_bf16() && super::sgemm::bf16_wins(a, b) && super::sgemm::bf16(dst, a, b, accumulate, super::par::threads());
    let ours = bf16 || (super::sgemm::wins(a, b) && super::sgemm::sgemm(dst, a, b, accumulate, super::par::threads()));
    if !ours {
        matmul_gemm_crate(dst, a, b, accumulate);
    }
    if let Some(t) = timer {
        t.stop(
            (a.rows, a.cols, b.cols),
            a.rs == 1 && a.cs != 1,
            b.cs != 1,
            if bf16 {
                "bf16"
            } else if ours {
                "ours"
            } else {
                "gemm"
            },
        );
    }
}

/// `matmul` through the `gemm` crate: the fallback, and the baseline of
/// examples/gemm_bench.rs.
#[doc(hidden)]
pub fn matmul_gemm_crate(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    if !prepare(dst, a, b, accumulate) {
        return;
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    // One part of C (rows or columns) per thread, each the crate's
    // single-thread product, on the kernels' pool. Small products cost more
    // to fan out than to compute (LSTM steps, 32 x 128 x 32: waking the
    // helper dozens of times a step).
    let threads = super::par::threads();
    let by_rows = m >= n;
    let len = if by_rows { m } else { n };
    let parts = if flops(m, k, n) >= 1 << 20 { threads.clamp(1, len) } else { 1 };
    let dst_ptr = super::par::SendPtr(dst.as_mut_ptr());
    let job = |i: usize| {
        let (lo, hi) = (len * i / parts, len * (i + 1) / parts);
        if lo == hi {
            return;
        }
        let c = dst_ptr.get();
        // SAFETY: prepare checked both views and that dst is exactly m x n,
        // so rows lo..hi (or columns lo..hi) of A, B and dst are in bounds;
        // the parts write disjoint rows (columns) of dst, which is borrowed
        // mutably for this call (so it overlaps neither A nor B), and
        // par::run returns only after every part has finished.
        unsafe {
            if by_rows {
                raw(c.add(lo * n), n, (hi - lo, k, n), (a.data.as_ptr().add(lo * a.rs), a.rs, a.cs), (b.data.as_ptr(), b.rs, b.cs), accumulate);
            } else {
                raw(c.add(lo), n, (m, k, hi - lo), (a.data.as_ptr(), a.rs, a.cs), (b.data.as_ptr().add(lo * b.cs), b.rs, b.cs), accumulate);
            }
        }
    };
    super::par::run(parts, threads, &job);
}

/// The gemm crate, one thread: C (row stride `crs`) = (acc ? C : 0) + A B;
/// A and B as (pointer, row stride, column stride).
///
/// # Safety
/// `a[i * rs + p * cs]` (i < m, p < k) and `b[p * rs + j * cs]` (p < k, j < n)
/// must be readable, `c[i * crs + j]` (i < m, j < n) writable and written by
/// no one else during the call, and C must not overlap A or B.
unsafe fn raw(c: *mut f32, crs: usize, (m, k, n): (usize, usize, usize), a: (*const f32, usize, usize), b: (*const f32, usize, usize), accumulate: bool) {
    // SAFETY: the caller guarantees the three views (see # Safety); the gemm
    // crate reads and writes nothing else, and picks its SIMD path by runtime
    // feature detection itself.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            crs as isize,
            accumulate,
            a.0,
            a.2 as isize,
            a.1 as isize,
            b.0,
            b.2 as isize,
            b.1 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference product in f64, rounded to f32.
    fn naive(a: Mat, b: Mat) -> Vec<f32> {
        let wide = |v: Mat| -> Vec<f64> { v.data.iter().map(|&x| x as f64).collect() };
        let (ad, bd) = (wide(a), wide(b));
        let (a64, b64) =
            (Mat { data: &ad[..], rows: a.rows, cols: a.cols, rs: a.rs, cs: a.cs }, Mat { data: &bd[..], rows: b.rows, cols: b.cols, rs: b.rs, cs: b.cs });
        let mut out = vec![0.0; a.rows * b.cols];
        crate::kernels::mat::reference_matmul(&mut out, a64, b64, false);
        out.into_iter().map(|x| x as f32).collect()
    }

    fn vals(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 97) as f32 / 48.0 - 1.0).collect()
    }

    #[test]
    fn matches_naive_for_all_transposes_and_accumulates() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (64, 33, 17), (130, 200, 90)] {
            let a = vals(m * k, 1);
            let b = vals(k * n, 2);
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // (k, m)
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // (n, k)
            let want = naive(Mat::new(&a, m, k), Mat::new(&b, k, n));
            for (av, bv) in [
                (Mat::new(&a, m, k), Mat::new(&b, k, n)),
                (Mat::new(&at, k, m).t(), Mat::new(&b, k, n)),
                (Mat::new(&a, m, k), Mat::new(&bt, n, k).t()),
                (Mat::new(&at, k, m).t(), Mat::new(&bt, n, k).t()),
            ] {
                let mut dst = vec![f32::NAN; m * n];
                matmul(&mut dst, av, bv, false);
                for (x, y) in dst.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-3, "{m}x{k}x{n}: {x} vs {y}");
                }
                matmul(&mut dst, av, bv, true);
                for (x, y) in dst.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 2e-3);
                }
            }
        }
    }
}
