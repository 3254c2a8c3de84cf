//! Sigmoid and tanh over f32 slices, branch-free so that they vectorize,
//! compiled once per instruction-set level (`cpu::level`) and picked at run
//! time. libm's scalar exp was half of sunspots_lstm's training time (the
//! LSTM's gates: three sigmoids and two tanh per cell and step).
//!
//! exp is Cephes' expf: n = round(x log2 e), r = x - n ln 2 in two parts, a
//! degree-7 polynomial, times 2^n built in the exponent bits. Every level
//! runs the same operations (no fused multiply-adds: Rust never contracts),
//! so every level gives the same bits. Accuracy against f64 (tested): exp
//! within 3e-7 relative, sigmoid 3e-7, tanh 4e-7 relative or 1e-7 absolute.

use super::cpu::{self, Level};

/// e^x for x clamped to [-87.3, 88.3] (no overflow to inf, no denormals;
/// sigmoid and tanh only need the clamped range).
#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' coefficients as published
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    // Adding 1.5 * 2^23 rounds to an integer (to nearest), in plain SSE2.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = (x - n * C1) - n * C2;
    let p = ((((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 5.000_000_1e-1) * r) * r + r + 1.0;
    // n is in [-126, 127]: 2^n is a normal number.
    p * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
#[allow(clippy::excessive_precision)] // Cephes' coefficients as published
fn tanh(x: f32) -> f32 {
    // Small |x|: Cephes' odd polynomial (1 - 2 / (e^2x + 1) would cancel);
    // else from exp. Both are computed and one is selected: no branch.
    let z = x * x;
    let small = ((((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1) * z - 3.333_328_2e-1) * z * x + x;
    let large = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
    let y = if x.abs() < 0.625 { small } else { large };
    // NaN stays NaN (the clamp in exp would turn it into a number).
    if x.is_nan() { x } else { y }
}

macro_rules! multiversion {
    ($name:ident, $f:ident) => {
        /// Applies the function to every element, on this thread's level.
        pub fn $name(xs: &mut [f32]) {
            #[inline(always)]
            fn body(xs: &mut [f32]) {
                for x in xs {
                    *x = $f(*x);
                }
            }
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                fn avx512(xs: &mut [f32]) {
                    body(xs)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2(xs: &mut [f32]) {
                    body(xs)
                }
                match cpu::level() {
                    // SAFETY: cpu::level reports a level only where the CPU has its features.
                    Level::Avx512 => return unsafe { avx512(xs) },
                    // SAFETY: as above.
                    Level::Avx2 => return unsafe { avx2(xs) },
                    Level::Portable => {}
                }
            }
            body(xs)
        }
    };
}

multiversion!(sigmoid_inplace, sigmoid);
multiversion!(tanh_inplace, tanh);

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep of inputs: dense near 0, out to past the clamps, and the
    /// special values.
    fn inputs() -> Vec<f32> {
        let mut v: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 * 1e-3).collect();
        v.extend((-400..=400).map(|i| i as f32 * 0.25));
        v.extend([0.0, -0.0, 1e-30, -1e-30, 1e-8, f32::MIN_POSITIVE, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY]);
        v
    }

    #[test]
    fn accurate_against_f64() {
        for x in inputs() {
            let e = (x.clamp(-87.3, 88.3) as f64).exp();
            assert!(((exp(x) as f64 - e) / e).abs() < 3e-7, "exp({x}) = {} vs {e}", exp(x));
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - s).abs() <= 3e-7 * s + 1e-38, "sigmoid({x}) = {} vs {s}", sigmoid(x));
            let t = (x as f64).tanh();
            assert!((tanh(x) as f64 - t).abs() <= (4e-7 * t.abs()).max(1e-7), "tanh({x}) = {} vs {t}", tanh(x));
        }
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(-1e-30), -1e-30);
        assert_eq!((tanh(30.0), tanh(-30.0)), (1.0, -1.0));
        assert_eq!((sigmoid(-200.0) < 1e-37, sigmoid(200.0)), (true, 1.0));
    }

    /// Every level the CPU runs gives the same bits as the scalar code.
    #[test]
    fn same_bits_on_every_level() {
        let xs = inputs();
        let want_s: Vec<u32> = xs.iter().map(|&x| sigmoid(x).to_bits()).collect();
        let want_t: Vec<u32> = xs.iter().map(|&x| tanh(x).to_bits()).collect();
        for level in cpu::runnable() {
            let (mut s, mut t) = (xs.clone(), xs.clone());
            cpu::with_level(level, || {
                sigmoid_inplace(&mut s);
                tanh_inplace(&mut t);
            });
            assert!(s.iter().map(|x| x.to_bits()).eq(want_s.iter().copied()), "sigmoid on {level:?}");
            assert!(t.iter().map(|x| x.to_bits()).eq(want_t.iter().copied()), "tanh on {level:?}");
        }
    }
}
