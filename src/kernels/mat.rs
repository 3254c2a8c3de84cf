//! The one strided matrix view every kernel passes to a product, the checks
//! the raw-pointer products rely on, and the plain reference product (f64,
//! and what the f32 kernels are tested against). A leaf: it imports no
//! other kernel module.

use candle_core::WithDType;

/// A read-only matrix view: `data[r * rs + c * cs]`, `rows x cols`. f32
/// unless said otherwise (the gemm kernels' type).
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a, T = f32> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// Contiguous row-major `rows x cols`.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat { data, rows, cols, rs: cols, cs: 1 }
    }
    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        Mat { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }
    /// Whether every element `data[r * rs + c * cs]` lies inside `data`. The
    /// arithmetic is checked: a huge stride must not wrap back into range.
    pub fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1).checked_mul(self.rs).zip((self.cols - 1).checked_mul(self.cs)).and_then(|(r, c)| r.checked_add(c));
        last.is_some_and(|last| last < self.data.len())
    }
}

impl<T: Copy> Mat<'_, T> {
    /// Element (r, c); panics outside `data`.
    #[inline]
    pub fn at(&self, r: usize, c: usize) -> T {
        self.data[r * self.rs + c * self.cs]
    }
}

/// Panics unless `dst = a @ b` fits: inner dimensions equal, `dst` exactly
/// m x n, both views inside their slices. The raw-pointer kernels (ours and
/// the gemm crate's) rely on it; once per product, so it costs nothing.
pub(crate) fn check_views<T>(dst: &[T], a: Mat<T>, b: Mat<T>) {
    assert_eq!(b.rows, a.cols, "inner dimensions differ");
    assert_eq!(Some(dst.len()), a.rows.checked_mul(b.cols), "destination size");
    assert!(a.in_bounds() && b.in_bounds(), "matrix view out of bounds");
}

/// Flops of an m x k x n product, saturating (only compared with thresholds).
pub(crate) fn flops(m: usize, k: usize, n: usize) -> usize {
    2usize.saturating_mul(m).saturating_mul(n).saturating_mul(k)
}

/// `dst (a.rows x b.cols) = (accumulate ? dst : 0) + a @ b` in plain loops:
/// each element adds its products in order of the inner index, starting from
/// its old value (or 0). f64 runs this (the finite-difference tests: tiny
/// shapes); training runs f32 through `gemm::matmul`, tested against it.
pub fn reference_matmul<T: WithDType>(dst: &mut [T], a: Mat<T>, b: Mat<T>, accumulate: bool) {
    check_views(dst, a, b);
    if !accumulate {
        dst.fill(T::zero());
    }
    let n = b.cols;
    for i in 0..a.rows {
        let row = &mut dst[i * n..(i + 1) * n];
        for p in 0..a.cols {
            let av = a.at(i, p);
            for (j, d) in row.iter_mut().enumerate() {
                *d += av * b.at(p, j);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each element is its old value (or 0) plus its products in order of
    /// the inner index, whatever the loop order: bit for bit a dot product.
    #[test]
    fn reference_adds_in_inner_order() {
        let vals = |n: usize, seed: u64| -> Vec<f64> { (0..n as u64).map(|i| ((i * 7919 + seed * 104_729) % 1013) as f64 / 97.0 - 5.0).collect() };
        let (m, k, n) = (5, 7, 3);
        let (a, bt) = (vals(m * k, 1), vals(n * k, 2));
        let (a, b) = (Mat::new(&a, m, k), Mat::new(&bt, n, k).t());
        for accumulate in [false, true] {
            let init = vals(m * n, 3);
            let mut dst = init.clone();
            reference_matmul(&mut dst, a, b, accumulate);
            for i in 0..m {
                for j in 0..n {
                    let mut s = if accumulate { init[i * n + j] } else { 0.0 };
                    for p in 0..k {
                        s += a.at(i, p) * b.at(p, j);
                    }
                    assert_eq!(dst[i * n + j].to_bits(), s.to_bits(), "({i}, {j}) accumulate={accumulate}");
                }
            }
        }
    }

    #[test]
    fn views_know_their_bounds() {
        let data = [0f32; 12];
        assert!(Mat::new(&data, 3, 4).in_bounds() && Mat::new(&data, 3, 4).t().in_bounds());
        assert!(!Mat::new(&data, 4, 4).in_bounds());
        assert!(!Mat { data: &data[..], rows: 2, cols: 1, rs: usize::MAX, cs: 1 }.in_bounds());
        assert!(Mat::new(&data[..0], 0, 4).in_bounds());
        assert_eq!(Mat::new(&[1, 2, 3, 4, 5, 6], 2, 3).t().at(2, 1), 6);
    }
}
