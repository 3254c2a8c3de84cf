//! Shared by the kernels' tests (and the layers' tests of them): random
//! values and a comparison of a kernel against its plain-op reference,
//! values and gradients.

use candle_core::{DType, Device, Tensor, Var};
use rand::{Rng, SeedableRng, rngs::StdRng};

pub fn random(dims: &[usize], seed: u64, dtype: DType) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = dims.iter().product();
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

pub fn var(dims: &[usize], seed: u64, dtype: DType) -> Var {
    Var::from_tensor(&random(dims, seed, dtype)).unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
}

/// Element-wise `|a - b| <= tol * max(1, |b|)`, with the worst index in the message.
pub fn assert_close(a: &[f64], b: &[f64], tol: f64, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol * y.abs().max(1.0), "{what}[{i}]: {x} vs {y}");
    }
}

/// Runs `f` (kernel) and `g` (reference) on the same variables, compares
/// the outputs and the gradients of `sum(out * r)` for every variable.
pub fn compare(vars: &[Var], f: impl Fn(&[Tensor]) -> Tensor, g: impl Fn(&[Tensor]) -> Tensor, tol: f64, what: &str) {
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let (a, b) = (f(&ts), g(&ts));
    assert_eq!(a.dims(), b.dims(), "{what}: output shape");
    assert_close(&flat(&a), &flat(&b), tol, &format!("{what}: output"));
    let r = random(a.dims(), 77, a.dtype());
    let ga = (a * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gb = (b * &r).unwrap().sum_all().unwrap().backward().unwrap();
    for (i, v) in vars.iter().enumerate() {
        match (ga.get(v.as_tensor()), gb.get(v.as_tensor())) {
            (Some(x), Some(y)) => assert_close(&flat(x), &flat(y), tol, &format!("{what}: gradient of argument {i}")),
            (x, y) => panic!("{what}: argument {i} has gradient {} (kernel) vs {} (reference)", x.is_some(), y.is_some()),
        }
    }
}
