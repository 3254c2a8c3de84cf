//! Keras 3 initializers, drawn from nnrun's own seeded generator so that the
//! same seed gives the same weights bit for bit.

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    /// A Keras initializer by name: `glorot_uniform`, `orthogonal`, `zeros`, ...
    Named(&'static str),
    /// LSTM bias with `unit_forget_bias`: zeros, with ones for the forget gate
    /// (the second block of `units`).
    ForgetBias { units: usize },
}

/// Keras's `compute_fans`: the last axis is fan-out, the one before fan-in,
/// and leading axes (a conv kernel's window) multiply both.
pub fn fans(shape: &[usize]) -> (f64, f64) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f64, shape[0] as f64),
        n => {
            let receptive: usize = shape[..n - 2].iter().product();
            ((shape[n - 2] * receptive) as f64, (shape[n - 1] * receptive) as f64)
        }
    }
}

/// Keras's truncated normal: values beyond two standard deviations are redrawn.
fn truncated(rng: &mut StdRng, std: f64) -> f32 {
    loop {
        let z: f64 = StandardNormal.sample(rng);
        if z.abs() <= 2.0 {
            return (z * std) as f32;
        }
    }
}

/// Draws the initial values of a weight of `shape`.
pub fn sample(init: &Init, shape: &[usize], rng: &mut StdRng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let (fan_in, fan_out) = fans(shape);
    // Variance-scaling initializers: the truncated normal's stddev is corrected
    // by Keras's constant .87962566103423978.
    let uniform = |rng: &mut StdRng, limit: f64| -> Vec<f32> { (0..n).map(|_| rng.random_range(-limit..=limit) as f32).collect() };
    let normal_t = |rng: &mut StdRng, var: f64| -> Vec<f32> {
        let std = var.sqrt() / 0.879_625_661_034_239_8;
        (0..n).map(|_| truncated(rng, std)).collect()
    };
    match init {
        Init::ForgetBias { units } => (0..n).map(|i| if i >= *units && i < 2 * units { 1.0 } else { 0.0 }).collect(),
        Init::Named(name) => match *name {
            "zeros" => vec![0.0; n],
            "ones" => vec![1.0; n],
            "glorot_uniform" => uniform(rng, (6.0 / (fan_in + fan_out)).sqrt()),
            "glorot_normal" => normal_t(rng, 2.0 / (fan_in + fan_out)),
            "he_uniform" => uniform(rng, (6.0 / fan_in).sqrt()),
            "he_normal" => normal_t(rng, 2.0 / fan_in),
            "lecun_uniform" => uniform(rng, (3.0 / fan_in).sqrt()),
            "lecun_normal" => normal_t(rng, 1.0 / fan_in),
            "random_uniform" | "uniform" => uniform(rng, 0.05),
            "random_normal" => (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    (z * 0.05) as f32
                })
                .collect(),
            "truncated_normal" => (0..n).map(|_| truncated(rng, 0.05)).collect(),
            "orthogonal" => orthogonal(shape, rng),
            other => panic!("initializer {other} is validated by the spec reader"),
        },
    }
}

/// Keras's Orthogonal (gain 1): QR of a normal (rows, cols) matrix, signs
/// fixed by R's diagonal, transposed when rows < cols.
fn orthogonal(shape: &[usize], rng: &mut StdRng) -> Vec<f32> {
    let cols = *shape.last().unwrap_or(&1);
    let rows: usize = shape.iter().product::<usize>() / cols.max(1);
    let (r, c) = if rows < cols { (cols, rows) } else { (rows, cols) };
    // Gram-Schmidt on the columns of an r x c normal matrix (r >= c).
    let mut q: Vec<Vec<f64>> = (0..c).map(|_| (0..r).map(|_| StandardNormal.sample(rng)).collect()).collect();
    for j in 0..c {
        for k in 0..j {
            let dot: f64 = (0..r).map(|i| q[j][i] * q[k][i]).sum();
            let (done, rest) = q.split_at_mut(j);
            rest[0].iter_mut().zip(&done[k]).for_each(|(v, u)| *v -= dot * u);
        }
        let norm = (0..r).map(|i| q[j][i] * q[j][i]).sum::<f64>().sqrt().max(1e-12);
        q[j].iter_mut().for_each(|v| *v /= norm);
    }
    let mut out = vec![0f32; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            // q[col][row] is the (row, col) entry of the r x c matrix.
            out[i * cols + j] = if rows < cols { q[i][j] } else { q[j][i] } as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn fans_follow_keras() {
        assert_eq!(fans(&[784, 512]), (784.0, 512.0));
        assert_eq!(fans(&[3, 3, 1, 32]), (9.0, 288.0));
        assert_eq!(fans(&[10]), (10.0, 10.0));
    }

    #[test]
    fn glorot_uniform_stays_in_its_limit_and_is_seeded() {
        let mut a = StdRng::seed_from_u64(7);
        let mut b = StdRng::seed_from_u64(7);
        let x = sample(&Init::Named("glorot_uniform"), &[784, 512], &mut a);
        let y = sample(&Init::Named("glorot_uniform"), &[784, 512], &mut b);
        assert_eq!(x, y);
        let limit = (6.0f64 / (784.0 + 512.0)).sqrt() as f32;
        assert!(x.iter().all(|v| v.abs() <= limit));
        let mean = x.iter().sum::<f32>() / x.len() as f32;
        assert!(mean.abs() < 1e-3);
    }

    #[test]
    fn orthogonal_is_orthonormal() {
        let mut rng = StdRng::seed_from_u64(1);
        for (rows, cols) in [(8, 8), (4, 16), (16, 4)] {
            let w = sample(&Init::Named("orthogonal"), &[rows, cols], &mut rng);
            // Rows are orthonormal when rows <= cols, columns otherwise.
            type Get<'a> = Box<dyn Fn(usize, usize) -> f32 + 'a>;
            let (outer, inner, get): (usize, usize, Get) =
                if rows <= cols { (rows, cols, Box::new(|a, k| w[a * cols + k])) } else { (cols, rows, Box::new(|a, k| w[k * cols + a])) };
            for a in 0..outer {
                for b in 0..outer {
                    let dot: f32 = (0..inner).map(|k| get(a, k) * get(b, k)).sum();
                    let want = if a == b { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-4, "{rows}x{cols}: <{a},{b}> = {dot}");
                }
            }
        }
    }

    #[test]
    fn forget_bias_sets_the_second_block() {
        let mut rng = StdRng::seed_from_u64(0);
        let b = sample(&Init::ForgetBias { units: 2 }, &[8], &mut rng);
        assert_eq!(b, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }
}
