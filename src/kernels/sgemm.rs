//! nnrun's own f32 matrix multiply for x86-64, AVX-512 or AVX2+FMA (picked at
//! run time, `cpu::level`): a BLIS-style loop nest (kc/mc/nc cache blocks,
//! 12x32 register tiles on AVX-512, 6x16 on AVX2) written for the shapes
//! training produces, which are far from square (conv1 has k = 9, the conv
//! weight gradients have k = batch * H * W and m, n <= 288, the MLP's second
//! layer has n = 10).
//!
//! What differs from the general-purpose `gemm` crate:
//! - A is read in place when it is row- or column-major and packing would not
//!   pay (k = 9 forward convolutions: packing A would cost as much as the
//!   products); B is read in place for small m (weight gradients);
//! - columns left over past the last full panel run a half-width kernel
//!   (n = 10: 16 lanes, not 32);
//! - two threads split C into fixed halves (rows or columns, whichever has
//!   more panels), so every element is summed in the same order on every
//!   run, whatever the timing, and on one thread as on two;
//! - every element of C is the same chain of FMAs over k (in KC blocks) on
//!   both instruction sets, so AVX-512 and AVX2 give the same bits;
//! - the pack buffers are per thread and kept, so the hot path allocates
//!   nothing after the first call.
//!
//! `gemm.rs` routes f32 products here where they measured faster and falls
//! back to the `gemm` crate otherwise (and on other architectures).

use super::cpu::Level;
use super::mat::{Mat, check_views, flops};

/// Register tile of a level: MR rows of C times NR columns (two vectors).
pub fn tile(level: Level) -> (usize, usize) {
    match level {
        Level::Avx512 => (MR512, NR512),
        _ => (MR, NR),
    }
}
const MR: usize = 6;
const NR: usize = 16;
const MR512: usize = 12;
const NR512: usize = 32;
/// Most depth of one pass: a KC x 16 panel of B (24 KiB) stays in Zen 3's
/// 32 KiB L1d. Passes are equal (k = 784: 3 x 262); 384 rather than 256 keeps
/// conv2's k = 288 in one pass (C read and written once: 7744 x 64 floats
/// do not fit in L2).
const KC: usize = 384;
/// Rows of A per L2 block (MC x KC = 180 KiB of the 512 KiB L2).
const MC: usize = 120;
/// Columns of B per packed block (KC x NC = 1 MiB, in L2/L3).
const NC: usize = 1024;

/// Products under this many flops run on the calling thread: waking the
/// helper costs a few microseconds.
const PARALLEL_FLOPS: usize = 1 << 20;

/// Products under this many flops stay on the gemm crate (`wins`): on a
/// loaded machine waking our helper costs more than it saves there, and
/// single-threaded the two kernels are on a par.
const MIN_FLOPS: usize = 1 << 22;

/// The level our kernel runs on this thread (None: the CPU, or NNRUN_ISA,
/// leaves only the portable path).
fn level() -> Option<Level> {
    Some(super::cpu::level()).filter(|&l| l >= Level::Avx2)
}

/// Whether this CPU runs our kernel (AVX2+FMA or AVX-512).
pub fn available() -> bool {
    level().is_some()
}

/// `dst (m x n, row-major contiguous) = (accumulate ? dst : 0) + a @ b` on up
/// to `threads` threads. Returns false (and leaves dst alone) when the kernel
/// is not available on this CPU.
///
/// # Panics
/// When the views do not fit (as `gemm::matmul`): `b.rows != a.cols`,
/// `dst.len() != m * n`, or a view reaching past its slice. The check runs
/// once per product, before the kernel's unchecked reads and writes.
pub fn sgemm(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) -> bool {
    force(dst, a, b, accumulate, threads)
}

/// Whether `sgemm` beats the `gemm` crate on this product, by shape class
/// (measured with examples/gemm_bench.rs on a 2-core Zen 3 (AVX2), see
/// bench/results/2026-11-27-sgemm.md). Ours wins where its layout handling
/// differs: A stored transposed with a moderate k or m >= 64 (weight
/// gradients of dense layers: 1.1-1.7x; mnist_cnn's second conv, 288 x 7744
/// x 64 on two threads: 1.25x, 2026-11-28), B stored transposed (input gradients: 1.0-1.5x), tiny
/// k (conv1's im2col product, k = 9: 1.1-1.5x). The microkernels are on a
/// par, so plain row-major products with a long k (forward passes: 0.8-1.0x),
/// thin conv weight gradients (m = 9, k = batch * H * W: 0.6-1.0x) and small products
/// (LSTM steps, the n = 10 dense layer, under 2^22 flops: 0.3-1.07x, very
/// load-dependent) stay on the gemm crate.
pub fn wins(a: Mat, b: Mat) -> bool {
    match choice() {
        Choice::Auto => {}
        Choice::Ours => return true,
        Choice::Crate => return false,
    }
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if flops(m, k, n) < MIN_FLOPS {
        return false;
    }
    let a_transposed = a.rs == 1 && a.cs != 1;
    let b_transposed = b.cs != 1;
    // With AVX-512 the gemm crate runs its x86-v4 microkernels. Inside
    // training steps on a 2-core Zen 4 (NNRUN_PROFILE=gemm, NNRUN_GEMM A/B,
    // 2026-12-02) they beat our AVX-512 kernel on the transposed-A weight
    // gradients (mnist_cnn's 288 x 7744 x 64: 182-193 against 141 GFLOP/s;
    // ocr_crnn's 288 x 25088 x 64: 200 against 143) and mnist_mlp's 784 x
    // 128 x 512 (160-175 against 127-153), and match it on plain row-major
    // products. Ours keeps the transposed-B input gradients (ocr_crnn's
    // 3136 x 64 x 288: 171 against 151; mnist_cnn's: a tie) and the k = 9
    // first convolutions (ocr_crnn: 39 against 28), and the bf16 products.
    if super::cpu::level() >= Level::Avx512 {
        return (b_transposed && !a_transposed) || k <= 16;
    }
    (a_transposed && (k <= 2048 || m >= 64)) || (b_transposed && !a_transposed) || k <= 16
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Choice {
    Auto,
    Ours,
    Crate,
}

/// `NNRUN_GEMM=ours|gemm` overrides `wins` for every product (A/B runs of
/// whole trainings, where the products run with cold caches).
fn choice() -> Choice {
    static C: std::sync::OnceLock<Choice> = std::sync::OnceLock::new();
    *C.get_or_init(|| match std::env::var("NNRUN_GEMM").as_deref() {
        Ok("ours") => Choice::Ours,
        Ok("gemm") => Choice::Crate,
        _ => Choice::Auto,
    })
}

/// `sgemm` whatever `wins` says (tests and benchmarks). Panics as `sgemm`.
#[doc(hidden)]
pub fn force(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) -> bool {
    let Some(level) = level() else {
        return false;
    };
    run(dst, a, b, accumulate, threads, Path::F32(level))
}

/// `dst (m x n) = (accumulate ? dst : 0) + bf16(a) @ bf16(b)`: both operands
/// rounded to bf16 (to nearest even) as they are packed, products summed in
/// f32 by AVX512_BF16's `vdpbf16ps` (two depths per instruction, twice the
/// f32 kernel's FLOPs per cycle). Returns false (dst untouched) when this
/// thread's kernels have no bf16 (`cpu::bf16`). Panics as `sgemm`.
pub fn bf16(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) -> bool {
    if !super::cpu::bf16() {
        return false;
    }
    run(dst, a, b, accumulate, threads, Path::Bf16)
}

/// Whether the bf16 kernel beats f32 on this product (gemm_bench, one Zen 4
/// core: 1.2-1.9x where the depth and the width are both past a few
/// vectors; 0.5-0.7x on conv1's depth 9 and the n = 10 layers, where packing
/// and padding outweigh the products). The rest stay f32 under
/// mixed_bfloat16, which only makes them more exact.
pub fn bf16_wins(a: Mat, b: Mat) -> bool {
    a.cols >= 32 && b.cols > 16 && a.rows > 16
}

/// Which kernel a product runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    F32(Level),
    Bf16,
}

fn run(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize, path: Path) -> bool {
    // Everything the unsafe code below relies on about the views: with these,
    // every offset it forms is at most the last element of a view.
    check_views(dst, a, b);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 || k == 0 {
        if k == 0 && !accumulate {
            dst.fill(0.0);
        }
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let p =
            Problem { a: a.data.as_ptr(), ars: a.rs, acs: a.cs, b: b.data.as_ptr(), brs: b.rs, bcs: b.cs, c: dst.as_mut_ptr(), crs: n, ccs: 1, k, accumulate };
        // Few columns (n = 10) pad the 16-wide tiles more than few rows pad
        // the 6-high ones: compute C^T = B^T A^T instead, when A is stored
        // transposed (else packing B' = A^T would gather every element).
        let (mr, nr) = match path {
            Path::F32(level) => tile(level),
            Path::Bf16 => (MR512, NR512),
        };
        let (m, n, p) = if padded(n, m, mr, nr) * 4 < padded(m, n, mr, nr) * 3 && a.rs == 1 {
            let t = Problem { a: p.b, ars: p.bcs, acs: p.brs, b: p.a, brs: p.acs, bcs: p.ars, crs: 1, ccs: n, ..p };
            (n, m, t)
        } else {
            (m, n, p)
        };
        let (mp, np) = (m.div_ceil(mr), n.div_ceil(nr));
        // Twice as many parts as threads: a helper that wakes late still gets
        // work, and the caller never waits long for one.
        let flops = flops(m, k, n);
        let parts = if threads > 1 && flops >= PARALLEL_FLOPS { threads.saturating_mul(2).min(mp.max(np)) } else { 1 };
        if parts <= 1 {
            // SAFETY: cpu::level (and cpu::bf16 for Path::Bf16) detected the
            // path's features at run time (block's target features);
            // check_views put every element of the m x k, k x n and m x n
            // views of p inside their slices, which dst's exclusive borrow
            // keeps alive and unaliased for this call.
            unsafe { x86::block(path, &p, 0, m, 0, n) };
            return true;
        }
        // Fixed split in whole panels: deterministic, and no two parts write
        // the same element of C.
        // Splitting rows makes every part read all of B, splitting columns
        // all of A: duplicate the smaller one (k huge and m, n small in the
        // conv weight gradients: a third of the traffic either way).
        let by_rows = if mp < parts {
            false
        } else if np < parts {
            true
        } else {
            m >= n
        };
        let panels = if by_rows { mp } else { np };
        let (unit, len) = if by_rows { (mr, m) } else { (nr, n) };
        let range = |i: usize| {
            let lo = (panels * i / parts * unit).min(len);
            let hi = (panels * (i + 1) / parts * unit).min(len);
            (lo, hi)
        };
        let job = |i: usize| {
            let (lo, hi) = range(i);
            if lo < hi {
                // SAFETY: as for the single block above (features detected,
                // views checked); lo < hi <= m (n), and the parts cover
                // disjoint rows (columns) of C, so no two threads write the
                // same element; par::run returns only once every part is done.
                unsafe { if by_rows { x86::block(path, &p, lo, hi, 0, n) } else { x86::block(path, &p, 0, m, lo, hi) } }
            }
        };
        super::par::run(parts, threads, &job);
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (dst, a, b, accumulate, threads, path);
        unreachable!()
    }
}

/// C elements computed for an m x n product with mr x nr tiles, padding
/// included (a last panel up to nr / 2 wide runs the half-width kernel).
fn padded(m: usize, n: usize, mr: usize, nr: usize) -> usize {
    let rest = match n % nr {
        0 => 0,
        r if r <= nr / 2 => nr / 2,
        _ => nr,
    };
    m.div_ceil(mr) * mr * (n / nr * nr + rest)
}

/// The operands as raw strided pointers (shared read-only between threads;
/// each thread writes its own part of C).
#[derive(Clone, Copy)]
struct Problem {
    a: *const f32,
    ars: usize,
    acs: usize,
    b: *const f32,
    brs: usize,
    bcs: usize,
    c: *mut f32,
    crs: usize,
    ccs: usize,
    k: usize,
    accumulate: bool,
}

// SAFETY: a and b are only read; c is written only through x86::block, whose
// callers give each thread a disjoint part of it (see force).
unsafe impl Sync for Problem {}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{KC, Level, MC, MR, MR512, NC, NR, NR512, Path, Problem};
    use std::arch::x86_64::*;
    use std::cell::RefCell;

    /// A grow-only f32 buffer whose start is 64-byte aligned.
    #[derive(Default)]
    struct Buf(Vec<f32>);

    impl Buf {
        fn get(&mut self, n: usize) -> *mut f32 {
            if self.0.len() < n + 16 {
                self.0 = vec![0.0; n + 16];
            }
            let p = self.0.as_mut_ptr();
            let off = p.align_offset(64).min(15);
            // SAFETY: off <= 15 and len >= n + 16, so p + off and the n
            // elements after it lie inside the vector.
            unsafe { p.add(off) }
        }
    }

    #[derive(Default)]
    struct Bufs {
        /// Packed A block: ceil(MC / mr) panels of mr x KC (column-major, cs = mr).
        a: Buf,
        /// Packed B block: ceil(NC / nr) panels of KC x nr (row-major, rs = nr).
        b: Buf,
        /// The partial last row panel of A when A is read in place.
        a_edge: Buf,
        /// The partial last column panel of B when B is read in place.
        b_edge: Buf,
        /// The bf16 kernel's packed pairs.
        bf16: bf16::Bufs,
    }

    thread_local! {
        static BUFS: RefCell<Bufs> = RefCell::new(Bufs::default());
    }

    /// One instruction set's register tile: the loop nest below is written
    /// once, generic over it, and compiled once per level inside that
    /// level's `#[target_feature]` entry point.
    trait Tile {
        /// Rows of C per tile.
        const MR: usize;
        /// Columns of C per tile (two vectors); a last panel of at most
        /// NR / 2 columns runs the one-vector kernel.
        const NR: usize;
        /// An MR x NR (`wide`) or MR x NR/2 tile of C (+)= A panel @ B panel
        /// over kc. A: `ap[r * a_stride + q]` when `a_rows`, else
        /// `ap[r + q * a_stride]`; B: `bp[q * brs + j]`, NR (NR / 2) readable
        /// columns. Only the mr x nr corner of C is written, at
        /// `c[r * crs + j * ccs]`.
        ///
        /// # Safety
        /// The CPU has the level's features; those A elements (r < MR, q <
        /// kc) and B elements are readable, those C elements (r < mr <= MR,
        /// j < nr <= the tile's width) readable and writable, and C
        /// overlaps neither.
        #[allow(clippy::too_many_arguments)]
        unsafe fn tile(
            wide: bool,
            a_rows: bool,
            kc: usize,
            ap: *const f32,
            a_stride: usize,
            bp: *const f32,
            brs: usize,
            c: *mut f32,
            crs: usize,
            ccs: usize,
            mr: usize,
            nr: usize,
            acc: bool,
        );
    }

    struct Avx2;
    struct Avx512;

    impl Tile for Avx2 {
        const MR: usize = MR;
        const NR: usize = NR;
        #[inline(always)]
        unsafe fn tile(
            wide: bool,
            a_rows: bool,
            kc: usize,
            ap: *const f32,
            a_stride: usize,
            bp: *const f32,
            brs: usize,
            c: *mut f32,
            crs: usize,
            ccs: usize,
            mr: usize,
            nr: usize,
            acc: bool,
        ) {
            // SAFETY: the trait's contract is kernel256's, with NV = 2 (wide) or 1.
            unsafe {
                match (wide, a_rows) {
                    (true, true) => kernel256::<2, true>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                    (true, false) => kernel256::<2, false>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                    (false, true) => kernel256::<1, true>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                    (false, false) => kernel256::<1, false>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                }
            }
        }
    }

    impl Tile for Avx512 {
        const MR: usize = MR512;
        const NR: usize = NR512;
        #[inline(always)]
        unsafe fn tile(
            wide: bool,
            a_rows: bool,
            kc: usize,
            ap: *const f32,
            a_stride: usize,
            bp: *const f32,
            brs: usize,
            c: *mut f32,
            crs: usize,
            ccs: usize,
            mr: usize,
            nr: usize,
            acc: bool,
        ) {
            // SAFETY: the trait's contract is kernel512's, with NV = 2 (wide) or 1.
            unsafe {
                match (wide, a_rows) {
                    (true, true) => kernel512::<2, true>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                    (true, false) => kernel512::<2, false>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                    (false, true) => kernel512::<1, true>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                    (false, false) => kernel512::<1, false>(kc, ap, a_stride, bp, brs, c, crs, ccs, mr, nr, acc),
                }
            }
        }
    }

    /// Packs rows i0..i0+mr (mr <= t), depths p0..p0+kc of A into one
    /// column-major t x kc panel (zero rows past mr).
    ///
    /// # Safety
    /// Rows i0..i0+mr and depths p0..p0+kc lie inside p's A view; dst has
    /// t * kc writable elements that alias nothing p points to.
    #[inline(always)]
    unsafe fn pack_a_panel(p: &Problem, t: usize, i0: usize, mr: usize, p0: usize, kc: usize, dst: *mut f32) {
        // SAFETY: every read is element (i0 + r, p0 + q) of A with r < mr,
        // q < kc, at (i0 + r) * ars + (p0 + q) * acs (the copy: ars == 1,
        // t consecutive rows); every write is dst[q * t + r] < t * kc.
        unsafe {
            if p.ars == 1 && mr == t {
                for q in 0..kc {
                    let s = p.a.add(i0 + (p0 + q) * p.acs);
                    std::ptr::copy_nonoverlapping(s, dst.add(q * t), t);
                }
                return;
            }
            for r in 0..t {
                if r < mr {
                    let s = p.a.add((i0 + r) * p.ars + p0 * p.acs);
                    for q in 0..kc {
                        *dst.add(q * t + r) = *s.add(q * p.acs);
                    }
                } else {
                    for q in 0..kc {
                        *dst.add(q * t + r) = 0.0;
                    }
                }
            }
        }
    }

    /// Packs columns j0..j0+nr (nr <= w), depths p0..p0+kc of B into one
    /// row-major kc x w panel (zero columns past nr).
    ///
    /// # Safety
    /// Columns j0..j0+nr and depths p0..p0+kc lie inside p's B view; dst has
    /// w * kc writable elements that alias nothing p points to.
    #[inline(always)]
    unsafe fn pack_b_panel(p: &Problem, j0: usize, nr: usize, w: usize, p0: usize, kc: usize, dst: *mut f32) {
        // SAFETY: every read is element (p0 + q, j0 + j) of B with q < kc,
        // j < nr, at (p0 + q) * brs + (j0 + j) * bcs (the copy: bcs == 1, nr
        // consecutive columns); every write is dst[q * w + j] < w * kc.
        unsafe {
            if p.bcs == 1 {
                for q in 0..kc {
                    let s = p.b.add((p0 + q) * p.brs + j0);
                    let d = dst.add(q * w);
                    std::ptr::copy_nonoverlapping(s, d, nr);
                    for j in nr..w {
                        *d.add(j) = 0.0;
                    }
                }
            } else {
                for j in 0..w {
                    if j < nr {
                        let s = p.b.add(p0 * p.brs + (j0 + j) * p.bcs);
                        for q in 0..kc {
                            *dst.add(q * w + j) = *s.add(q * p.brs);
                        }
                    } else {
                        for q in 0..kc {
                            *dst.add(q * w + j) = 0.0;
                        }
                    }
                }
            }
        }
    }

    /// C[i0..i1, j0..j1] (+)= A[i0..i1, :] @ B[:, j0..j1], single-threaded,
    /// on `path`'s kernel (AVX2, AVX-512 or bf16).
    ///
    /// # Safety
    /// The CPU has the path's features (detected at run time). Every
    /// element of p's A (m x k), B (k x n) and C (m x n) views is in bounds,
    /// where m and n are the sizes the caller checked, i0 < i1 <= m and j0 <
    /// j1 <= n, k > 0; C overlaps neither A nor B, and no other thread
    /// touches C[i0..i1, j0..j1] during the call.
    pub(super) unsafe fn block(path: Path, p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize) {
        BUFS.with(|bufs| {
            let mut bufs = bufs.borrow_mut();
            // SAFETY: the caller's guarantees, forwarded unchanged (the path
            // names the features detected); the buffers are this thread's
            // own, borrowed once (no reentrancy).
            unsafe {
                match path {
                    Path::F32(Level::Avx512) => block_avx512(p, i0, i1, j0, j1, &mut bufs),
                    Path::F32(_) => block_avx2(p, i0, i1, j0, j1, &mut bufs),
                    Path::Bf16 => bf16::block(p, i0, i1, j0, j1, &mut bufs.bf16),
                }
            }
        })
    }

    /// `block_with` compiled for AVX2 + FMA.
    ///
    /// # Safety
    /// As `block`, with AVX2 and FMA detected.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_avx2(p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize, bufs: &mut Bufs) {
        // SAFETY: forwarded; the features are this function's.
        unsafe { block_with::<Avx2>(p, i0, i1, j0, j1, bufs) }
    }

    /// `block_with` compiled for AVX-512.
    ///
    /// # Safety
    /// As `block`, with AVX-512F/VL/BW/DQ, AVX2 and FMA detected.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    unsafe fn block_avx512(p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize, bufs: &mut Bufs) {
        // SAFETY: forwarded; the features are this function's.
        unsafe { block_with::<Avx512>(p, i0, i1, j0, j1, bufs) }
    }

    /// The loop nest, generic over the register tile.
    ///
    /// # Safety
    /// As `block`, with T's features detected.
    #[inline(always)]
    unsafe fn block_with<T: Tile>(p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize, bufs: &mut Bufs) {
        let (mr_t, nr_t, half) = (T::MR, T::NR, T::NR / 2);
        let (m, n, k) = (i1 - i0, j1 - j0, p.k);
        // B is packed when it is not row-major or when each panel serves many
        // row panels; A when it is neither row- nor column-major, or when it is
        // column-major (transposed) and serves many column panels.
        let pack_b = p.bcs != 1 || m > 4 * mr_t;
        let pack_a = p.acs != 1 && (p.ars != 1 || n > 2 * nr_t);
        let a_row = p.acs == 1; // in-place A: row-major (else column-major)
        // Equal depth blocks (k = 288: 144 + 144, not 256 + 32).
        let kcb = k.div_ceil(k.div_ceil(KC));
        let abuf = if pack_a { bufs.a.get(MC.div_ceil(mr_t) * mr_t * kcb) } else { std::ptr::null_mut() };
        let bbuf = if pack_b { bufs.b.get(NC.div_ceil(nr_t) * nr_t * kcb) } else { std::ptr::null_mut() };
        let aedge = bufs.a_edge.get(mr_t * kcb);
        let bedge = bufs.b_edge.get(nr_t * kcb);
        // Panel pointers are formed with wrapping_add (safe, and in bounds by
        // the loop bounds); the SAFETY comments below are about their use.
        // The loops keep jc + jr < n, ic + ir < m, pc < k, nr <= NR, mr <= MR
        // and kc <= kcb; the buffers hold MC/MR (NC/NR) panels of MR (NR) x kcb.

        let mut jc = 0;
        while jc < n {
            let nc = NC.min(n - jc);
            let mut pc = 0;
            while pc < k {
                let kc = kcb.min(k - pc);
                let acc = p.accumulate || pc > 0;
                if pack_b {
                    let mut jr = 0;
                    while jr < nc {
                        let nr = nr_t.min(nc - jr);
                        let w = if nr <= half { half } else { nr_t };
                        // SAFETY: columns j0+jc+jr.. +nr <= j1 and depths pc..pc+kc <= k
                        // are in B's view (block's contract); panel jr / NR of the
                        // packed B buffer holds kcb * NR >= kc * w elements.
                        unsafe { pack_b_panel(p, j0 + jc + jr, nr, w, pc, kc, bbuf.wrapping_add(jr * kcb)) };
                        jr += nr_t;
                    }
                }
                let mut ic = 0;
                while ic < m {
                    let mc = MC.min(m - ic);
                    if pack_a {
                        let mut ir = 0;
                        while ir < mc {
                            // SAFETY: rows i0+ic+ir.. (at most MR, all < i1) and depths
                            // pc..pc+kc are in A's view; panel ir / MR of the packed A
                            // buffer holds MR * kcb >= MR * kc elements.
                            unsafe { pack_a_panel(p, mr_t, i0 + ic + ir, mr_t.min(mc - ir), pc, kc, abuf.wrapping_add(ir * kcb)) };
                            ir += mr_t;
                        }
                    } else if mc % mr_t != 0 {
                        let ir = mc - mc % mr_t;
                        // SAFETY: the last mc - ir < MR rows (all < i1) and depths
                        // pc..pc+kc are in A's view; aedge holds MR * kcb elements.
                        unsafe { pack_a_panel(p, mr_t, i0 + ic + ir, mc - ir, pc, kc, aedge) };
                    }
                    let mut jr = 0;
                    while jr < nc {
                        let nr = nr_t.min(nc - jr);
                        let col = j0 + jc + jr;
                        let (bp, brs) = if pack_b {
                            (bbuf.wrapping_add(jr * kcb) as *const f32, if nr <= half { half } else { nr_t })
                        } else if nr < nr_t {
                            let w = if nr <= half { half } else { nr_t };
                            // SAFETY: columns col..col+nr <= j1 and depths pc..pc+kc are
                            // in B's view; bedge holds NR * kcb >= w * kc elements.
                            unsafe { pack_b_panel(p, col, nr, w, pc, kc, bedge) };
                            (bedge as *const f32, w)
                        } else {
                            // In place: B is row-major here (pack_b is false), all
                            // NR columns of this panel exist.
                            (p.b.wrapping_add(pc * p.brs + col), p.brs)
                        };
                        let mut ir = 0;
                        while ir < mc {
                            let mr = mr_t.min(mc - ir);
                            let row = i0 + ic + ir;
                            let c = p.c.wrapping_add(row * p.crs + col * p.ccs);
                            // In place: A is row-major (a_row) or column-major (pack_a
                            // false and acs != 1 means ars == 1), all MR rows exist.
                            let (ap, a_stride, in_rows) = if pack_a {
                                (abuf.wrapping_add(ir * kcb) as *const f32, mr_t, false)
                            } else if mr < mr_t {
                                (aedge as *const f32, mr_t, false)
                            } else if a_row {
                                (p.a.wrapping_add(row * p.ars + pc), p.ars, true)
                            } else {
                                (p.a.wrapping_add(row + pc * p.acs), p.acs, false)
                            };
                            // SAFETY: T's features were detected (block's contract). A:
                            // an MR x kc panel, packed (zero-padded) or in place with
                            // MR real rows at the strides above; B: kc rows of NR (or
                            // NR / 2 when nr <= NR / 2) readable columns (packed that
                            // wide, or in place with nr = NR columns); C: only the mr x
                            // nr corner at row, col is touched, inside block's part of C.
                            unsafe { T::tile(nr > half, in_rows, kc, ap, a_stride, bp, brs, c, p.crs, p.ccs, mr, nr, acc) };
                            ir += mr_t;
                        }
                        jr += nr_t;
                    }
                    ic += MC;
                }
                pc += kcb;
            }
            jc += NC;
        }
    }

    /// One MR x (8 NV) tile on AVX2 (see `Tile::tile`).
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; those A elements (r < MR, q < kc) and B
    /// elements (q < kc, j < 8 NV) are readable, those C elements (r < mr <=
    /// MR, j < nr <= 8 NV) readable and writable, and C overlaps neither.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel256<const NV: usize, const A_ROWS: bool>(
        kc: usize,
        ap: *const f32,
        a_stride: usize,
        bp: *const f32,
        brs: usize,
        c: *mut f32,
        crs: usize,
        ccs: usize,
        mr: usize,
        nr: usize,
        accumulate: bool,
    ) {
        // SAFETY: every pointer formed and dereferenced below is one of the
        // elements the contract above makes readable (A, B) or writable (the
        // mr x nr corner of C; the full-tile store only when mr = MR and
        // nr = 8 NV); the tile buffer is MR x NR >= MR x 8 NV; loadu/storeu
        // need no alignment; the intrinsics need AVX2 and FMA, detected.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NV]; MR];
            if A_ROWS {
                // One pointer per row, one index: no dependent address adds.
                let rows: [*const f32; MR] = std::array::from_fn(|r| ap.add(r * a_stride));
                let mut b = bp;
                for q in 0..kc {
                    let mut bv = [_mm256_setzero_ps(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = _mm256_loadu_ps(b.add(8 * v));
                    }
                    for (row, ar) in acc.iter_mut().zip(rows) {
                        let av = _mm256_broadcast_ss(&*ar.add(q));
                        for v in 0..NV {
                            row[v] = _mm256_fmadd_ps(av, bv[v], row[v]);
                        }
                    }
                    b = b.add(brs);
                }
            } else {
                let (mut a, mut b) = (ap, bp);
                for _ in 0..kc {
                    let mut bv = [_mm256_setzero_ps(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = _mm256_loadu_ps(b.add(8 * v));
                    }
                    for (r, row) in acc.iter_mut().enumerate() {
                        let av = _mm256_broadcast_ss(&*a.add(r));
                        for v in 0..NV {
                            row[v] = _mm256_fmadd_ps(av, bv[v], row[v]);
                        }
                    }
                    a = a.add(a_stride);
                    b = b.add(brs);
                }
            }
            if mr == MR && nr == 8 * NV && ccs == 1 {
                for (r, row) in acc.iter().enumerate() {
                    let cr = c.add(r * crs);
                    for (v, x) in row.iter().enumerate() {
                        let y = if accumulate { _mm256_add_ps(*x, _mm256_loadu_ps(cr.add(8 * v))) } else { *x };
                        _mm256_storeu_ps(cr.add(8 * v), y);
                    }
                }
            } else {
                let mut tile = [0.0f32; MR * NR];
                for (r, row) in acc.iter().enumerate() {
                    for (v, x) in row.iter().enumerate() {
                        _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR + 8 * v), *x);
                    }
                }
                for r in 0..mr {
                    let cr = c.add(r * crs);
                    for j in 0..nr {
                        let x = tile[r * NR + j];
                        let cj = cr.add(j * ccs);
                        *cj = if accumulate { *cj + x } else { x };
                    }
                }
            }
        }
    }

    /// One MR512 x (16 NV) tile on AVX-512 (see `Tile::tile`). Partial
    /// tiles of a row-major C are written with masked stores.
    ///
    /// # Safety
    /// The CPU has AVX-512F; those A elements (r < MR512, q < kc) and B
    /// elements (q < kc, j < 16 NV) are readable, those C elements (r < mr
    /// <= MR512, j < nr <= 16 NV) readable and writable, and C overlaps
    /// neither.
    #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel512<const NV: usize, const A_ROWS: bool>(
        kc: usize,
        ap: *const f32,
        a_stride: usize,
        bp: *const f32,
        brs: usize,
        c: *mut f32,
        crs: usize,
        ccs: usize,
        mr: usize,
        nr: usize,
        accumulate: bool,
    ) {
        // SAFETY: every pointer formed and dereferenced below is one of the
        // elements the contract above makes readable (A, B) or writable (the
        // mr x nr corner of C: rows r < mr, and per vector only the lanes
        // j < nr the mask enables; masked loads and stores touch no
        // disabled lane); the tile buffer is MR512 x NR512 >= MR512 x 16 NV;
        // loadu/storeu need no alignment; the intrinsics need AVX-512F,
        // detected.
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NV]; MR512];
            if A_ROWS {
                let rows: [*const f32; MR512] = std::array::from_fn(|r| ap.add(r * a_stride));
                let mut b = bp;
                for q in 0..kc {
                    let mut bv = [_mm512_setzero_ps(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = _mm512_loadu_ps(b.add(16 * v));
                    }
                    for (row, ar) in acc.iter_mut().zip(rows) {
                        let av = _mm512_set1_ps(*ar.add(q));
                        for v in 0..NV {
                            row[v] = _mm512_fmadd_ps(av, bv[v], row[v]);
                        }
                    }
                    b = b.add(brs);
                }
            } else {
                let (mut a, mut b) = (ap, bp);
                for _ in 0..kc {
                    let mut bv = [_mm512_setzero_ps(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = _mm512_loadu_ps(b.add(16 * v));
                    }
                    for (r, row) in acc.iter_mut().enumerate() {
                        let av = _mm512_set1_ps(*a.add(r));
                        for v in 0..NV {
                            row[v] = _mm512_fmadd_ps(av, bv[v], row[v]);
                        }
                    }
                    a = a.add(a_stride);
                    b = b.add(brs);
                }
            }
            store512(&acc, c, crs, ccs, mr, nr, accumulate);
        }
    }

    /// Writes the mr x nr corner of an accumulated MR512 x 16 NV tile to C
    /// (row-major C: masked stores; else through a stack tile).
    ///
    /// # Safety
    /// The CPU has AVX-512F; the C elements c[r * crs + j * ccs] (r < mr <=
    /// MR512, j < nr <= 16 NV) are readable and writable.
    #[inline(always)]
    unsafe fn store512<const NV: usize>(acc: &[[__m512; NV]; MR512], c: *mut f32, crs: usize, ccs: usize, mr: usize, nr: usize, accumulate: bool) {
        // SAFETY: only the mr x nr corner of C is read and written: rows r <
        // mr, and per vector only the lanes j < nr the mask enables (masked
        // loads and stores touch no disabled lane); the stack tile is MR512 x
        // NR512 >= MR512 x 16 NV; AVX-512F is the caller's contract.
        unsafe {
            if ccs == 1 {
                for (r, row) in acc.iter().enumerate().take(mr) {
                    let cr = c.add(r * crs);
                    for (v, x) in row.iter().enumerate() {
                        let lanes = nr.saturating_sub(16 * v).min(16);
                        if lanes == 16 {
                            let y = if accumulate { _mm512_add_ps(*x, _mm512_loadu_ps(cr.add(16 * v))) } else { *x };
                            _mm512_storeu_ps(cr.add(16 * v), y);
                        } else if lanes > 0 {
                            let mask: __mmask16 = (1u16 << lanes) - 1;
                            let y = if accumulate { _mm512_add_ps(*x, _mm512_maskz_loadu_ps(mask, cr.add(16 * v))) } else { *x };
                            _mm512_mask_storeu_ps(cr.add(16 * v), mask, y);
                        }
                    }
                }
            } else {
                let mut tile = [0.0f32; MR512 * NR512];
                for (r, row) in acc.iter().enumerate() {
                    for (v, x) in row.iter().enumerate() {
                        _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR512 + 16 * v), *x);
                    }
                }
                for r in 0..mr {
                    let cr = c.add(r * crs);
                    for j in 0..nr {
                        let x = tile[r * NR512 + j];
                        let cj = cr.add(j * ccs);
                        *cj = if accumulate { *cj + x } else { x };
                    }
                }
            }
        }
    }

    /// The bf16 path: both operands rounded to bf16 as they are packed, in
    /// pairs of consecutive depths (one 32-bit lane holds A[i][2q], A[i][2q+1]
    /// or B[2q][j], B[2q+1][j]), so that `vdpbf16ps` adds two products per
    /// lane into an f32 accumulator. Always packs both operands (they must be
    /// converted anyway); an odd depth is padded with a zero pair.
    pub(super) mod bf16 {
        use super::super::{KC, MC, MR512, NC, NR512, Problem};
        use super::{Buf, store512};
        use std::arch::x86_64::*;

        #[derive(Default)]
        pub(in super::super) struct Bufs {
            a: Buf,
            b: Buf,
        }

        /// f32 -> bf16, round to nearest even (as `vcvtneps2bf16`); NaN stays
        /// a (quiet) NaN.
        #[inline(always)]
        pub(in super::super) fn round(x: f32) -> u16 {
            let b = x.to_bits();
            if x.is_nan() {
                return ((b >> 16) | 0x40) as u16;
            }
            (b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16) as u16
        }

        #[inline(always)]
        fn pair(lo: f32, hi: f32) -> u32 {
            round(lo) as u32 | (round(hi) as u32) << 16
        }

        /// Packs a panel of `w` (12 or 32) lines by kc depths of an operand
        /// into ceil(kc / 2) x w depth pairs: `dst[q * w + l] = (x(l, 2q),
        /// x(l, 2q + 1))` for lines l < len (zero lines past len, a zero
        /// depth past kc), where `x(l, d) = src[(l0 + l) * ls + (p0 + d) *
        /// ds]`: A's panels are rows (ls = ars, ds = acs), B's columns (ls =
        /// bcs, ds = brs). Vectorized where the lines (ls == 1) or the
        /// depths (ds == 1) are contiguous, which covers every layout
        /// training issues; element by element otherwise.
        ///
        /// # Safety
        /// AVX512_BF16 and AVX-512F/BW; those elements (l < len <= w, d < kc)
        /// readable; dst has ceil(kc / 2) * w writable pairs.
        #[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw,avx512dq,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn pack(src: *const f32, ls: usize, ds: usize, l0: usize, len: usize, w: usize, p0: usize, kc: usize, dst: *mut u32) {
            let kp = kc.div_ceil(2);
            // SAFETY: every read is x(l, d) with l < len and d < kc (masked
            // loads leave the other lanes unread); every write is dst[q * w +
            // l] with q < kp and l < w (masked stores, scatters with masks of
            // lanes < kp - q); the features are this function's.
            unsafe {
                // Lane pairs (lo_i, hi_i) of cvtne2ps's [lo0..lo15, hi0..hi15].
                let zip =
                    _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
                if ls == 1 {
                    // Lines contiguous: per depth pair, two vectors of lines.
                    let base = src.add(l0 + p0 * ds);
                    for q in 0..kp {
                        let (d0, d1) = (2 * q, 2 * q + 1);
                        let mut v = 0;
                        while v < w {
                            let lanes = len.saturating_sub(v).min(16);
                            let m: __mmask16 = if lanes == 16 { 0xffff } else { (1u16 << lanes) - 1 };
                            let lo = _mm512_maskz_loadu_ps(m, base.add(d0 * ds + v));
                            let hi = if d1 < kc { _mm512_maskz_loadu_ps(m, base.add(d1 * ds + v)) } else { _mm512_setzero_ps() };
                            let bf = _mm512_cvtne2ps_pbh(hi, lo);
                            let pairs = _mm512_permutexvar_epi16(zip, std::mem::transmute::<__m512bh, __m512i>(bf));
                            let sm: __mmask16 = if w - v >= 16 { 0xffff } else { (1u16 << (w - v)) - 1 };
                            _mm512_mask_storeu_epi32(dst.add(q * w + v) as *mut i32, sm, pairs);
                            v += 16;
                        }
                    }
                } else if ds == 1 {
                    // Depths contiguous: per line, 32 depths (16 pairs) at a time,
                    // scattered to their depth rows of the panel.
                    let idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(w as i32));
                    for l in 0..w {
                        let line = src.add((l0 + l.min(len.saturating_sub(1))) * ls + p0);
                        let mut q = 0;
                        while q < kp {
                            let pairs = if l < len {
                                let d = 2 * q;
                                let n0 = kc.saturating_sub(d).min(16);
                                let n1 = kc.saturating_sub(d + 16).min(16);
                                let m0: __mmask16 = if n0 == 16 { 0xffff } else { (1u16 << n0) - 1 };
                                let m1: __mmask16 = if n1 == 16 { 0xffff } else { (1u16 << n1) - 1 };
                                let lo = _mm512_maskz_loadu_ps(m0, line.add(d));
                                let hi = if n1 > 0 { _mm512_maskz_loadu_ps(m1, line.add(d + 16)) } else { _mm512_setzero_ps() };
                                std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo))
                            } else {
                                _mm512_setzero_si512()
                            };
                            let n = (kp - q).min(16);
                            let m: __mmask16 = if n == 16 { 0xffff } else { (1u16 << n) - 1 };
                            _mm512_mask_i32scatter_epi32::<4>(dst.add(q * w + l) as *mut i32, m, idx, pairs);
                            q += 16;
                        }
                    }
                } else {
                    for q in 0..kp {
                        for l in 0..w {
                            let x = |d: usize| if d < kc { *src.add((l0 + l) * ls + (p0 + d) * ds) } else { 0.0 };
                            *dst.add(q * w + l) = if l < len { pair(x(2 * q), x(2 * q + 1)) } else { 0 };
                        }
                    }
                }
            }
        }

        /// # Safety
        /// As `super::block`, with AVX512_BF16 and AVX-512F detected; `bufs`
        /// is this thread's.
        #[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw,avx512dq,avx2,fma")]
        pub(in super::super) unsafe fn block(p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize, bufs: &mut Bufs) {
            let (m, n, k) = (i1 - i0, j1 - j0, p.k);
            // Depth blocks of an even size (pairs), as equal as the f32 path's.
            let kcb = k.div_ceil(k.div_ceil(KC)).next_multiple_of(2);
            let kpb = kcb / 2;
            // Buf holds f32; a u32 pair is the same size.
            let abuf = bufs.a.get(MC.div_ceil(MR512) * MR512 * kpb) as *mut u32;
            let bbuf = bufs.b.get(NC.div_ceil(NR512) * NR512 * kpb) as *mut u32;
            let mut jc = 0;
            while jc < n {
                let nc = NC.min(n - jc);
                let mut pc = 0;
                while pc < k {
                    let kc = kcb.min(k - pc);
                    let kp = kc.div_ceil(2);
                    let acc = p.accumulate || pc > 0;
                    // B: panels of kp x NR512 pairs (zero columns past n).
                    let mut jr = 0;
                    while jr < nc {
                        let nr = NR512.min(nc - jr);
                        // SAFETY: columns j0+jc+jr.. +nr <= j1 and depths pc..pc+kc <= k
                        // are in B's view; panel jr / NR512 of the buffer (NC / NR512
                        // panels of kpb * NR512 pairs) holds kp * NR512.
                        unsafe { pack(p.b, p.bcs, p.brs, j0 + jc + jr, nr, NR512, pc, kc, bbuf.wrapping_add(jr * kpb)) };
                        jr += NR512;
                    }
                    let mut ic = 0;
                    while ic < m {
                        let mc = MC.min(m - ic);
                        // A: panels of kp x MR512 pairs (zero rows past m).
                        let mut ir = 0;
                        while ir < mc {
                            let mr = MR512.min(mc - ir);
                            // SAFETY: rows i0+ic+ir.. +mr <= i1 and depths pc..pc+kc are
                            // in A's view; panel ir / MR512 holds kpb * MR512 pairs.
                            unsafe { pack(p.a, p.ars, p.acs, i0 + ic + ir, mr, MR512, pc, kc, abuf.wrapping_add(ir * kpb)) };
                            ir += MR512;
                        }
                        let mut jr = 0;
                        while jr < nc {
                            let nr = NR512.min(nc - jr);
                            let col = j0 + jc + jr;
                            let mut ir = 0;
                            while ir < mc {
                                let mr = MR512.min(mc - ir);
                                let row = i0 + ic + ir;
                                let c = p.c.wrapping_add(row * p.crs + col * p.ccs);
                                let (ap, bp) = (abuf.wrapping_add(ir * kpb) as *const u32, bbuf.wrapping_add(jr * kpb) as *const u32);
                                // SAFETY: the packed panels hold kp rows of MR512 (NR512)
                                // pairs; C: the mr x nr corner at row, col, inside block's
                                // part; the features are this function's.
                                unsafe {
                                    if nr > NR512 / 2 {
                                        kernel::<2>(kp, ap, bp, c, p.crs, p.ccs, mr, nr, acc)
                                    } else {
                                        kernel::<1>(kp, ap, bp, c, p.crs, p.ccs, mr, nr, acc)
                                    }
                                }
                                ir += MR512;
                            }
                            jr += NR512;
                        }
                        ic += MC;
                    }
                    pc += kcb;
                }
                jc += NC;
            }
        }

        /// One MR512 x 16 NV tile over kp depth pairs: A pairs `ap[q * MR512
        /// + r]`, B pairs `bp[q * NR512 + j]` (j < 16 NV).
        ///
        /// # Safety
        /// AVX512_BF16 and AVX-512F; those pairs readable; the mr x nr corner
        /// of C readable and writable, overlapping neither.
        #[target_feature(enable = "avx512f,avx512bf16,avx512vl,avx512bw,avx512dq,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn kernel<const NV: usize>(
            kp: usize,
            ap: *const u32,
            bp: *const u32,
            c: *mut f32,
            crs: usize,
            ccs: usize,
            mr: usize,
            nr: usize,
            accumulate: bool,
        ) {
            // SAFETY: reads only the pairs the contract makes readable (loadu
            // needs no alignment); __m512i and __m512bh are both 64 plain
            // bytes, so the transmutes reinterpret lanes; store512 touches
            // only C's mr x nr corner.
            unsafe {
                let mut acc = [[_mm512_setzero_ps(); NV]; MR512];
                let (mut a, mut b) = (ap, bp);
                for _ in 0..kp {
                    let mut bv = [_mm512_setzero_si512(); NV];
                    for (v, x) in bv.iter_mut().enumerate() {
                        *x = _mm512_loadu_si512(b.add(16 * v) as *const __m512i);
                    }
                    for (r, row) in acc.iter_mut().enumerate() {
                        let av: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(r) as i32));
                        for v in 0..NV {
                            row[v] = _mm512_dpbf16_ps(row[v], av, std::mem::transmute::<__m512i, __m512bh>(bv[v]));
                        }
                    }
                    a = a.add(MR512);
                    b = b.add(NR512);
                }
                store512(&acc, c, crs, ccs, mr, nr, accumulate);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::with_level;
    use super::*;

    fn vals(n: usize, seed: u32) -> Vec<f32> {
        (0..n).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 16) % 97) as f32 / 48.0 - 1.0).collect()
    }

    /// f64 reference of `init + a @ b`.
    fn reference(a: Mat, b: Mat, init: &[f32]) -> Vec<f64> {
        let mut out: Vec<f64> = init.iter().map(|&x| x as f64).collect();
        for i in 0..a.rows {
            for j in 0..b.cols {
                for p in 0..a.cols {
                    out[i * b.cols + j] += a.data[i * a.rs + p * a.cs] as f64 * b.data[p * b.rs + j * b.cs] as f64;
                }
            }
        }
        out
    }

    /// The levels our kernel runs on this CPU (AVX2 and, where present,
    /// AVX-512): every test runs each in turn.
    fn levels() -> Vec<Level> {
        super::super::cpu::runnable().into_iter().filter(|&l| l >= Level::Avx2).collect()
    }

    /// Every layout of A and B (row-major, transposed view, and a strided
    /// sub-matrix view), with and without accumulate, on 1, 2 and 3 threads
    /// and every level: the same bits on each.
    fn check(m: usize, k: usize, n: usize) {
        let a = vals(m * k, 1);
        let b = vals(k * n, 2);
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect(); // (k, m)
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect(); // (n, k)
        // A inside a wider buffer: row stride k + 3.
        let aw: Vec<f32> = (0..m * (k + 3)).map(|i| if i % (k + 3) < k { a[i / (k + 3) * k + i % (k + 3)] } else { f32::NAN }).collect();
        let init = vals(m * n, 3);
        let zeros = vec![0.0; m * n];
        let tol = 1e-4 * (k as f64).max(1.0);
        for (ai, av) in [Mat::new(&a, m, k), Mat::new(&at, k, m).t(), Mat { data: &aw, rows: m, cols: k, rs: k + 3, cs: 1 }].into_iter().enumerate() {
            for (bi, bv) in [Mat::new(&b, k, n), Mat::new(&bt, n, k).t()].into_iter().enumerate() {
                for accumulate in [false, true] {
                    let want = reference(av, bv, if accumulate { &init } else { &zeros });
                    let mut first: Option<Vec<f32>> = None;
                    for level in levels() {
                        for threads in [1, 2, 3] {
                            let mut dst = if accumulate { init.clone() } else { vec![f32::NAN; m * n] };
                            assert!(with_level(level, || force(&mut dst, av, bv, accumulate, threads)));
                            for (idx, (x, y)) in dst.iter().zip(&want).enumerate() {
                                assert!(
                                    (*x as f64 - y).abs() <= tol,
                                    "{m}x{k}x{n} a{ai} b{bi} acc={accumulate} {level:?} threads={threads} at {idx}: {x} vs {y}"
                                );
                            }
                            // Same bits whatever the number of threads or the level.
                            match &first {
                                None => first = Some(dst),
                                Some(f) => assert!(f.iter().zip(&dst).all(|(x, y)| x.to_bits() == y.to_bits()), "{m}x{k}x{n} {level:?} threads={threads}"),
                            }
                        }
                    }
                }
            }
        }
    }

    /// The bf16 path against an f64 reference of the bf16-rounded operands,
    /// every layout, accumulate or not, on 1-3 threads (same bits on each).
    fn check_bf16(m: usize, k: usize, n: usize) {
        if !super::super::cpu::bf16() {
            return;
        }
        let r = |v: Vec<f32>| -> Vec<f32> { v.into_iter().map(|x| f32::from_bits((x86::bf16::round(x) as u32) << 16)).collect() };
        let a = vals(m * k, 11).into_iter().map(|x| x * 1.37).collect::<Vec<_>>();
        let b = vals(k * n, 12).into_iter().map(|x| x * 0.71).collect::<Vec<_>>();
        let (ar, br) = (r(a.clone()), r(b.clone()));
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let init = vals(m * n, 13);
        let zeros = vec![0.0; m * n];
        let tol = 2e-6 * (k as f64).max(1.0);
        for (av, bv) in [
            (Mat::new(&a, m, k), Mat::new(&b, k, n)),
            (Mat::new(&at, k, m).t(), Mat::new(&b, k, n)),
            (Mat::new(&a, m, k), Mat::new(&bt, n, k).t()),
            (Mat::new(&at, k, m).t(), Mat::new(&bt, n, k).t()),
        ] {
            for accumulate in [false, true] {
                let want = reference(Mat::new(&ar, m, k), Mat::new(&br, k, n), if accumulate { &init } else { &zeros });
                let mut first: Option<Vec<f32>> = None;
                for threads in [1, 2, 3] {
                    let mut dst = if accumulate { init.clone() } else { vec![f32::NAN; m * n] };
                    assert!(bf16(&mut dst, av, bv, accumulate, threads));
                    for (idx, (x, y)) in dst.iter().zip(&want).enumerate() {
                        assert!((*x as f64 - y).abs() <= tol * (1.0 + y.abs()), "bf16 {m}x{k}x{n} acc={accumulate} threads={threads} at {idx}: {x} vs {y}");
                    }
                    match &first {
                        None => first = Some(dst),
                        Some(f) => assert!(f.iter().zip(&dst).all(|(x, y)| x.to_bits() == y.to_bits())),
                    }
                }
            }
        }
    }

    #[test]
    fn bf16_products() {
        for &(m, k, n) in &[(1, 1, 1), (5, 3, 7), (12, 2, 32), (13, 9, 33), (31, 17, 10), (130, 385, 90), (9, 1000, 32), (200, 33, 10), (121, 800, 1030)] {
            check_bf16(m, k, n);
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        let r = |bits: u32| x86::bf16::round(f32::from_bits(bits));
        assert_eq!(r(0x3f80_0000), 0x3f80); // 1.0
        assert_eq!(r(0x3f80_8000), 0x3f80); // tie, even stays
        assert_eq!(r(0x3f81_8000), 0x3f82); // tie, odd rounds up
        assert_eq!(r(0x3f80_8001), 0x3f81); // above the tie
        assert_eq!(r(0x7f7f_ffff), 0x7f80); // f32::MAX rounds to inf
        assert_eq!(r(0xff80_0000), 0xff80); // -inf
        assert!(f32::from_bits((r(0x7fc0_0001) as u32) << 16).is_nan());
        assert!(f32::from_bits((r(0x7f80_0001) as u32) << 16).is_nan()); // a NaN whose payload is all low bits
        // Against the instruction, where the CPU has it (normal numbers:
        // vcvtneps2bf16 flushes denormals).
        #[cfg(target_arch = "x86_64")]
        if super::super::cpu::bf16() {
            #[target_feature(enable = "avx512f,avx512bf16,avx512vl")]
            fn hw(x: &[f32; 16]) -> [u16; 16] {
                use std::arch::x86_64::*;
                // SAFETY: reads 16 floats of x, writes 16 u16 of out; the
                // features are this function's, detected by the caller.
                unsafe {
                    let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr()));
                    let mut out = [0u16; 16];
                    _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, std::mem::transmute::<__m256bh, __m256i>(v));
                    out
                }
            }
            let mut seed = 0x9e37_79b9u32;
            for _ in 0..4096 {
                let x: [f32; 16] = std::array::from_fn(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    let v = f32::from_bits(seed);
                    if v.is_normal() { v } else { 1.5 }
                });
                // SAFETY: cpu::bf16() detected AVX512_BF16 and AVX-512F.
                let h = unsafe { hw(&x) };
                for (x, h) in x.iter().zip(h) {
                    assert_eq!(x86::bf16::round(*x), h, "{x:e}");
                }
            }
        }
    }

    #[test]
    fn portable_level_declines() {
        let data = vec![1.0f32; 4];
        let mut dst = vec![7.0; 4];
        assert!(!with_level(Level::Portable, || force(&mut dst, Mat::new(&data, 2, 2), Mat::new(&data, 2, 2), false, 1)));
        assert!(dst.iter().all(|&x| x == 7.0));
    }

    #[test]
    fn odd_and_edge_sizes() {
        for &m in &[1, 5, 6, 7, 12, 13, 17, 31] {
            for &n in &[1, 5, 8, 10, 16, 17, 31, 32, 33, 47] {
                for &k in &[1, 2, 9, 17] {
                    check(m, k, n);
                }
            }
        }
    }

    #[test]
    fn blocked_sizes() {
        // Past one depth block, one row block and several column panels.
        for &(m, k, n) in &[(130, 300, 90), (9, 1000, 32), (200, 33, 10), (10, 129, 130), (121, 257, 1030), (37, 513, 50)] {
            check(m, k, n);
        }
    }

    #[test]
    fn training_shapes() {
        // The exact products of mnist_mlp, mnist_cnn and sunspots_lstm,
        // scaled down where the reference would be slow.
        for &(m, k, n) in &[
            (128, 784, 10),
            (128, 10, 512),
            (512, 128, 10),
            (64, 1600, 10),
            (1000, 9, 32),
            (9, 3000, 32),
            (300, 288, 64),
            (288, 500, 64),
            (500, 64, 288),
            (32, 32, 128),
            (32, 128, 32),
            (32, 384, 128),
        ] {
            check(m, k, n);
        }
    }

    /// A view past its slice, a wrong destination or mismatched inner sizes
    /// panic before the kernel touches memory; empty products are fine.
    #[test]
    fn bad_views_panic_before_any_access() {
        if !available() {
            return;
        }
        let data = vec![1.0f32; 64];
        let ok = Mat::new(&data, 8, 8);
        let past_end = Mat { data: &data, rows: 8, cols: 8, rs: 9, cs: 1 };
        // (rows - 1) * rs wraps to a small number without checked arithmetic.
        let wrapping = Mat { data: &data, rows: 3, cols: 1, rs: usize::MAX / 2 + 1, cs: 1 };
        let long = Mat { data: &data, rows: 3, cols: 8, rs: 8, cs: 1 };
        let cases: [(usize, Mat, Mat, &str); 5] = [
            (64, past_end, ok, "out of bounds"),
            (64, ok, past_end, "out of bounds"),
            (8, wrapping.t(), long, "out of bounds"),
            (63, ok, ok, "destination size"),
            (64, ok, long, "inner dimensions"),
        ];
        for (i, (len, a, b, why)) in cases.into_iter().enumerate() {
            let mut dst = vec![0.0; len];
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| force(&mut dst, a, b, false, 2)));
            let msg = r.err().and_then(|e| e.downcast_ref::<String>().cloned().or(e.downcast_ref::<&str>().map(|s| s.to_string())));
            assert!(msg.as_deref().is_some_and(|m| m.contains(why)), "case {i}: {msg:?}, expected a panic about {why}");
        }
        // Empty products: nothing to read; k = 0 clears dst unless accumulating.
        let mut dst = vec![5.0; 8];
        assert!(force(&mut dst, Mat::new(&[], 8, 0), Mat::new(&[], 0, 1), false, 2));
        assert!(dst.iter().all(|&x| x == 0.0));
        let mut dst = vec![5.0; 8];
        assert!(force(&mut dst, Mat::new(&[], 8, 0), Mat::new(&[], 0, 1), true, 2));
        assert!(dst.iter().all(|&x| x == 5.0));
        assert!(force(&mut [], Mat::new(&data, 0, 8), ok, false, usize::MAX));
    }

    #[test]
    fn same_bits_every_run() {
        if !available() {
            return;
        }
        let (m, k, n) = (300, 700, 200);
        let a = vals(m * k, 5);
        let b = vals(k * n, 6);
        let mut first = vec![0.0; m * n];
        assert!(force(&mut first, Mat::new(&a, m, k), Mat::new(&b, k, n), false, 2));
        for _ in 0..5 {
            let mut dst = vec![0.0; m * n];
            assert!(force(&mut dst, Mat::new(&a, m, k), Mat::new(&b, k, n), false, 2));
            assert!(first.iter().zip(&dst).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
