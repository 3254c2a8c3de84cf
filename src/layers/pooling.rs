//! Pooling layers: Max/AveragePooling1D/2D and their Global variants.

use super::conv::{expect_spatial, fit_2d, pair, read_window_padding, sliding_window, strided, to_2d};
use super::core::channels_last;
use super::{Ctx, Layer, LayerType, Shape, ShapeError};
use crate::kernels;
use crate::kernels::window::{Axis, Padding};
use crate::spec::args::Args;
use candle_core::{Tensor, Var};
type CResult<T> = candle_core::Result<T>;

// ---- MaxPooling / AveragePooling ------------------------------------------------------

pub static MAX_POOLING1D: LayerType = LayerType {
    name: "MaxPooling1D",
    family: "pooling",
    summary: "Maximum over windows of `pool_size` steps of a (steps, channels) input.",
    build: |a| Box::new(Pooling::read(a, 1, true)),
};

pub static MAX_POOLING2D: LayerType = LayerType {
    name: "MaxPooling2D",
    family: "pooling",
    summary: "Maximum over `pool_size` windows of a (height, width, channels) input.",
    build: |a| Box::new(Pooling::read(a, 2, true)),
};

pub static AVERAGE_POOLING1D: LayerType = LayerType {
    name: "AveragePooling1D",
    family: "pooling",
    summary: "Average over windows of `pool_size` steps of a (steps, channels) input.",
    build: |a| Box::new(Pooling::read(a, 1, false)),
};

pub static AVERAGE_POOLING2D: LayerType = LayerType {
    name: "AveragePooling2D",
    family: "pooling",
    summary: "Average over `pool_size` windows of a (height, width, channels) input.",
    build: |a| Box::new(Pooling::read(a, 2, false)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct Pooling {
    /// Spatial axes: 1 or 2.
    pub dims: usize,
    /// Max rather than average; shapes are the same either way.
    pub max: bool,
    pub pool_size: Vec<usize>,
    /// Keras's `strides=None` means `pool_size`, resolved here.
    pub strides: Vec<usize>,
    pub padding: Padding,
}

impl Pooling {
    fn read(a: &mut Args, dims: usize, max: bool) -> Self {
        let pool_size = super::sizes(a, "pool_size", dims, Some(2), 1);
        let strides = a.opt_ints("strides", dims, 1).unwrap_or_else(|| pool_size.clone());
        let padding = read_window_padding(a, &[Padding::Valid, Padding::Same]);
        channels_last(a);
        Pooling { dims, max, pool_size, strides, padding }
    }
}

impl Layer for Pooling {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, self.dims)?;
        let ones = vec![1; self.dims];
        let mut out = sliding_window(input, "pool_size", &self.pool_size, &ones, &self.strides, self.padding)?;
        out.push(input[self.dims]);
        Ok(out)
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        self.forward_with(&inputs[0], true)
    }

    fn as_pooling(&self) -> Option<&Pooling> {
        Some(self)
    }
}

impl Pooling {
    /// `fast`: nnrun's one-pass NHWC kernel on the CPU (f32/f64); otherwise,
    /// and always with `fast` false, plain candle ops (the reference the
    /// kernel is tested against, and the path for other devices).
    pub(crate) fn forward_with(&self, x: &Tensor, fast: bool) -> CResult<Tensor> {
        let x = to_2d(x, self.dims)?;
        let (k, s) = (pair(&self.pool_size, 1), pair(&self.strides, 1));
        let y = if fast && kernels::pool::supports(&x) { kernels::pool::pool2d(&x, k, s, self.padding, self.max)? } else { self.pool_plain(&x, k, s)? };
        if self.dims == 1 { y.squeeze(2) } else { Ok(y) }
    }

    /// Built from reshape/index_select and max/sum: candle's max_pool2d and
    /// avg_pool2d have wrong gradients.
    fn pool_plain(&self, x: &Tensor, k: [usize; 2], s: [usize; 2]) -> CResult<Tensor> {
        // Max pooling never picks padding; average pooling leaves it out of the count.
        let fill = if self.max { f64::NEG_INFINITY } else { 0.0 };
        let (x, fits) = fit_2d(x, k, s, self.padding, fill)?;
        let [oh, ow] = [fits[0].out, fits[1].out];
        // One view per window offset, each (B, oh, ow, C).
        let mut views = Vec::with_capacity(k[0] * k[1]);
        if k == s {
            // Windows tile the fitted input exactly: a reshape, no copies per offset.
            let (b, _, _, c) = x.dims4()?;
            let x = x.reshape((b, oh, k[0], ow, k[1], c))?;
            for i in 0..k[0] {
                for j in 0..k[1] {
                    views.push(x.narrow(2, i, 1)?.narrow(4, j, 1)?.squeeze(4)?.squeeze(2)?);
                }
            }
        } else {
            for i in 0..k[0] {
                let rows = strided(&x, 1, i, s[0], oh)?;
                for j in 0..k[1] {
                    views.push(strided(&rows, 2, j, s[1], ow)?);
                }
            }
        }
        // Pairwise `maximum`, not a max reduction: its backward splits ties, so
        // each window passes on a gradient of exactly 1 (a reduction gives every
        // tied cell the full gradient, e.g. windows of zeros after relu).
        let first = views[0].clone();
        let mut y = views[1..].iter().try_fold(first, |a, v| if self.max { a.maximum(v) } else { a + v })?;
        if !self.max {
            y = y.broadcast_mul(&inverse_counts(fits, &y)?)?;
        }
        Ok(y)
    }
}

/// 1 / (real cells in each window), shaped (1, oh, ow, 1): Keras's average
/// excludes 'same' padding.
fn inverse_counts(fits: [Axis; 2], like: &Tensor) -> CResult<Tensor> {
    let counts = |a: Axis| -> Vec<f64> { (0..a.out).map(|j| a.real_taps(j) as f64).collect() };
    let (ch, cw) = (counts(fits[0]), counts(fits[1]));
    let inv: Vec<f64> = ch.iter().flat_map(|h| cw.iter().map(move |w| 1.0 / (h * w))).collect();
    Tensor::from_vec(inv, (1, ch.len(), cw.len(), 1), like.device())?.to_dtype(like.dtype())
}

// ---- Global pooling -------------------------------------------------------------------

pub static GLOBAL_AVERAGE_POOLING1D: LayerType = LayerType {
    name: "GlobalAveragePooling1D",
    family: "pooling",
    summary: "Average over all steps: (steps, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 1, false)),
};

pub static GLOBAL_AVERAGE_POOLING2D: LayerType = LayerType {
    name: "GlobalAveragePooling2D",
    family: "pooling",
    summary: "Average over height and width: (height, width, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 2, false)),
};

pub static GLOBAL_MAX_POOLING1D: LayerType = LayerType {
    name: "GlobalMaxPooling1D",
    family: "pooling",
    summary: "Maximum over all steps: (steps, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 1, true)),
};

pub static GLOBAL_MAX_POOLING2D: LayerType = LayerType {
    name: "GlobalMaxPooling2D",
    family: "pooling",
    summary: "Maximum over height and width: (height, width, channels) -> (channels).",
    build: |a| Box::new(GlobalPooling::read(a, 2, true)),
};

#[derive(Clone, Debug, PartialEq)]
pub struct GlobalPooling {
    pub dims: usize,
    pub max: bool,
    /// Keep the pooled axes with size 1.
    pub keepdims: bool,
}

impl GlobalPooling {
    fn read(a: &mut Args, dims: usize, max: bool) -> Self {
        channels_last(a);
        GlobalPooling { dims, max, keepdims: a.bool("keepdims", false) }
    }
}

impl Layer for GlobalPooling {
    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, ShapeError> {
        let input = &inputs[0];
        expect_spatial(input, self.dims)?;
        let mut out = if self.keepdims { vec![1; self.dims] } else { Vec::new() };
        out.push(input[self.dims]);
        Ok(out)
    }

    fn forward(&self, inputs: &[Tensor], _w: &[Var], _ctx: &mut Ctx) -> CResult<Tensor> {
        let x = inputs[0].flatten(1, self.dims)?; // (B, cells, C)
        let y = if self.max { max_split_ties(&x, 1)? } else { x.mean_keepdim(1)? };
        if !self.keepdims {
            return y.squeeze(1);
        }
        if self.dims == 2 { y.unsqueeze(1) } else { Ok(y) }
    }
}

/// max_keepdim whose gradient is shared equally by tied cells (candle's gives
/// each of them the full gradient): max + sum((x - max) * tied) / count.
fn max_split_ties(x: &Tensor, axis: usize) -> CResult<Tensor> {
    let m = x.max_keepdim(axis)?.detach();
    let tied = x.broadcast_eq(&m)?.to_dtype(x.dtype())?;
    let share = (x.broadcast_sub(&m)? * &tied)?.sum_keepdim(axis)?.div(&tied.sum_keepdim(axis)?)?;
    m + share
}

#[cfg(test)]
mod tests {
    use crate::layers::conv::tests::{apply, iota};
    use crate::layers::testutil::{arg_error, build, forward, grad_check, infer};

    #[test]
    fn pooling_forward_shapes_and_gradients() {
        for pool in ["MaxPooling2D", "AveragePooling2D"] {
            for (yaml, input) in [
                ("{}", &[7usize, 5, 3][..]),
                ("{padding: same}", &[7, 5, 2]),
                ("{pool_size: 3, strides: 2}", &[7, 6, 2]),
                ("{pool_size: 3, strides: 2, padding: same}", &[7, 8, 2]),
                ("{pool_size: [3, 2], strides: [2, 1]}", &[7, 5, 2]),
                ("{pool_size: 2, strides: 1, padding: same}", &[5, 4, 2]),
                ("{pool_size: [1, 3]}", &[4, 7, 2]),
            ] {
                forward(pool, yaml, &[input], true);
                grad_check(pool, yaml, &[input], true);
            }
        }
        for pool in ["MaxPooling1D", "AveragePooling1D"] {
            for yaml in ["{}", "{padding: same}", "{pool_size: 3, strides: 2, padding: same}", "{pool_size: 4, strides: 1}"] {
                forward(pool, yaml, &[&[9, 2]], true);
                grad_check(pool, yaml, &[&[9, 2]], true);
            }
        }
        for pool in ["GlobalAveragePooling1D", "GlobalMaxPooling1D"] {
            for yaml in ["{}", "{keepdims: true}"] {
                forward(pool, yaml, &[&[5, 3]], true);
                grad_check(pool, yaml, &[&[5, 3]], true);
            }
        }
        for pool in ["GlobalAveragePooling2D", "GlobalMaxPooling2D"] {
            for yaml in ["{}", "{keepdims: true}"] {
                forward(pool, yaml, &[&[3, 4, 2]], true);
                grad_check(pool, yaml, &[&[3, 4, 2]], true);
            }
        }
    }

    #[test]
    fn pooling_values() {
        let x = iota(16); // 4x4, x[i][j] = 4i + j
        let pool = |ty: &str, yaml: &str, x: &[f64], dims: &[usize]| apply(ty, yaml, x, dims, &[]);
        assert_eq!(pool("MaxPooling2D", "{}", &x, &[1, 4, 4, 1]), (vec![1, 2, 2, 1], vec![5.0, 7.0, 13.0, 15.0]));
        assert_eq!(pool("AveragePooling2D", "{}", &x, &[1, 4, 4, 1]).1, vec![2.5, 4.5, 10.5, 12.5]);
        // Stride 1 < pool 2, and [2, 1] strides.
        assert_eq!(pool("MaxPooling2D", "{strides: 1}", &x, &[1, 4, 4, 1]).1, vec![5.0, 6.0, 7.0, 9.0, 10.0, 11.0, 13.0, 14.0, 15.0]);
        assert_eq!(pool("AveragePooling2D", "{strides: [2, 1]}", &x, &[1, 4, 4, 1]).1, vec![2.5, 3.5, 4.5, 10.5, 11.5, 12.5]);
        // 'same' on 3x3 pads one row and column after; the average counts only real cells.
        let x9 = iota(9);
        assert_eq!(pool("AveragePooling2D", "{padding: same}", &x9, &[1, 3, 3, 1]).1, vec![2.0, 3.5, 6.5, 8.0]);
        // Max never picks the padding, even when every real cell is negative.
        let neg: Vec<f64> = x9.iter().map(|v| -v - 1.0).collect();
        assert_eq!(pool("MaxPooling2D", "{padding: same}", &neg, &[1, 3, 3, 1]).1, vec![-1.0, -3.0, -7.0, -9.0]);
        // 'valid' floors: the last row and column of a 5x5 input are dropped.
        assert_eq!(pool("MaxPooling2D", "{}", &iota(25), &[1, 5, 5, 1]).1, vec![6.0, 8.0, 16.0, 18.0]);
        // Channels pool separately.
        assert_eq!(pool("MaxPooling2D", "{}", &[1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0], &[1, 2, 2, 2]).1, vec![4.0, 8.0]);

        let seq = [1.0, 3.0, 2.0, 5.0, 4.0];
        assert_eq!(pool("MaxPooling1D", "{pool_size: 3, strides: 1}", &seq, &[1, 5, 1]), (vec![1, 3, 1], vec![3.0, 5.0, 5.0]));
        // 'same', pool 3 stride 2 on 5 steps pads one before and one after.
        let avg = pool("AveragePooling1D", "{pool_size: 3, strides: 2, padding: same}", &seq, &[1, 5, 1]).1;
        assert!(avg.iter().zip([2.0, 10.0 / 3.0, 4.5]).all(|(a, b)| (a - b).abs() < 1e-12), "{avg:?}");

        assert_eq!(pool("GlobalAveragePooling2D", "{}", &x, &[1, 4, 4, 1]), (vec![1, 1], vec![7.5]));
        assert_eq!(pool("GlobalMaxPooling2D", "{keepdims: true}", &x, &[1, 4, 4, 1]), (vec![1, 1, 1, 1], vec![15.0]));
        assert_eq!(pool("GlobalMaxPooling1D", "{}", &seq, &[1, 5, 1]).1, vec![5.0]);
        assert_eq!(pool("GlobalAveragePooling1D", "{keepdims: true}", &[1.0, 2.0, 3.0, 6.0], &[1, 2, 2]), (vec![1, 1, 2], vec![2.0, 4.0]));
    }

    /// The gradient of `sum(ty(x))` with respect to `x`.
    fn input_grad(ty: &str, yaml: &str, x: Vec<f64>, dims: &[usize]) -> Vec<f64> {
        use crate::layers::{Ctx, testutil::build};
        use candle_core::{Device, Var};
        use rand::SeedableRng;
        let x = Var::from_vec(x, dims, &Device::Cpu).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let y = build(ty, yaml)
            .unwrap()
            .forward(&[x.as_tensor().clone()], &[], &mut Ctx { train: true, rng: &mut rng, logits: false, grads: None, part: None })
            .unwrap();
        let g = y.sum_all().unwrap().backward().unwrap();
        g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn max_pooling_gradient_goes_to_the_max() {
        // Each 2x2 window passes 1 to its max (candle's max_pool2d gives 0.25);
        // the 5th column is never read.
        let x = vec![1., 9., 2., 3., 4., 5., 8., 6., 7., 0., 1., 1., 2., 3., 4., 5., 6., 7., 8., 9.];
        let want = [0., 1., 0., 0., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0., 0., 0., 1., 0., 1., 0.];
        assert_eq!(input_grad("MaxPooling2D", "{}", x.clone(), &[1, 4, 5, 1]), want);
        assert_eq!(input_grad("MaxPooling2D", "{strides: [2, 1]}", x, &[1, 4, 5, 1]).iter().sum::<f64>(), 8.0);
        // Ties (a window of zeros after relu) share a total gradient of 1.
        for yaml in ["{}", "{strides: 1}"] {
            let g = input_grad("MaxPooling2D", yaml, vec![0.0; 4], &[1, 2, 2, 1]);
            assert_eq!(g.iter().sum::<f64>(), 1.0, "{yaml}: {g:?}");
        }
        assert_eq!(input_grad("GlobalMaxPooling1D", "{}", vec![1., 3., 3., 0.], &[1, 4, 1]), vec![0.0, 0.5, 0.5, 0.0]);
        assert_eq!(input_grad("GlobalMaxPooling2D", "{}", vec![2., 0., 1., 2.], &[1, 2, 1, 2]), vec![1.0, 0.0, 0.0, 1.0]);
    }

    /// The Pooling layer itself (not boxed), to call `forward_with`.
    fn pooling_layer(ty: &str, yaml: &str) -> super::Pooling {
        let node = crate::spec::yaml::parse(yaml).unwrap();
        let mut args = crate::spec::args::Args::new(&node, "layer", format!("layer 'x' ({ty})"), &[]);
        let p = super::Pooling::read(&mut args, if ty.ends_with("1D") { 1 } else { 2 }, ty.starts_with("Max"));
        args.finish();
        assert!(!args.has_errors(), "{ty} {yaml}");
        p
    }

    /// (output, input gradient of sum(output * r)) in f32 by either path.
    fn pool_run(p: &super::Pooling, dims: &[usize], fast: bool) -> (Vec<f32>, Vec<f32>) {
        use crate::layers::Layer;
        use candle_core::{Device, Tensor, Var};
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut uniform = |dims: &[usize]| -> Vec<f32> { (0..dims.iter().product()).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let x = Var::from_vec(uniform(dims), dims, &Device::Cpu).unwrap();
        let mut out = vec![dims[0]];
        out.extend(p.output_shape(&[dims[1..].to_vec()]).unwrap());
        let r = Tensor::from_vec(uniform(&out), &out[..], &Device::Cpu).unwrap();
        let y = p.forward_with(x.as_tensor(), fast).unwrap();
        assert_eq!(y.dims(), &out[..]);
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        (flat(&y), flat(g.get(x.as_tensor()).unwrap()))
    }

    /// nnrun's NHWC pooling kernel against the plain candle-op path it
    /// replaces (random inputs: no ties, where the two differ).
    #[test]
    fn pooling_kernel_matches_plain_ops() {
        for ty in ["MaxPooling2D", "AveragePooling2D"] {
            for (yaml, input) in [
                ("{}", &[3usize, 8, 6, 4][..]),
                ("{}", &[3, 7, 9, 3]),
                ("{padding: same}", &[3, 7, 5, 2]),
                ("{pool_size: 3, strides: 2}", &[3, 9, 8, 2]),
                ("{pool_size: 3, strides: 2, padding: same}", &[3, 8, 7, 3]),
                ("{pool_size: [3, 2], strides: [2, 1]}", &[3, 7, 5, 2]),
                ("{pool_size: 2, strides: 3, padding: same}", &[3, 8, 7, 2]),
                ("{pool_size: 2, strides: 1, padding: same}", &[3, 5, 4, 2]),
                ("{}", &[12, 40, 40, 16]),
            ] {
                let p = pooling_layer(ty, yaml);
                let (new, old) = (pool_run(&p, input, true), pool_run(&p, input, false));
                let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
                assert!(close(&new.0, &old.0), "{ty} {yaml}: forward differs");
                assert!(close(&new.1, &old.1), "{ty} {yaml}: gradient differs");
            }
        }
        for ty in ["MaxPooling1D", "AveragePooling1D"] {
            let p = pooling_layer(ty, "{pool_size: 3, strides: 2, padding: same}");
            assert_eq!(pool_run(&p, &[3, 9, 2], true), pool_run(&p, &[3, 9, 2], false), "{ty}");
        }
    }

    /// `cargo test --release --lib pooling_timing -- --ignored --nocapture`:
    /// old vs new, interleaved, medians of 9.
    #[test]
    #[ignore]
    fn pooling_timing() {
        use crate::layers::Layer;
        use candle_core::{Device, Tensor, Var};
        let p = pooling_layer("MaxPooling2D", "{}");
        for dims in [[64, 26, 26, 32], [64, 11, 11, 64]] {
            let x = Var::randn(0f32, 1.0, &dims[..], &Device::Cpu).unwrap();
            let out: usize = p.output_shape(&[dims[1..].to_vec()]).unwrap().iter().product();
            let r = Tensor::randn(0f32, 1.0, (dims[0] * out, 1), &Device::Cpu).unwrap();
            let mut times = [Vec::new(), Vec::new()];
            for i in 0..10 {
                for (j, fast) in [false, true].into_iter().enumerate() {
                    let t = std::time::Instant::now();
                    let y: Tensor = p.forward_with(x.as_tensor(), fast).unwrap();
                    crate::layers::conv::tests::dot_loss(&y, &r).backward().unwrap();
                    if i > 0 {
                        times[j].push(t.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            let [old, new] = times.map(crate::layers::conv::tests::median);
            println!("MaxPooling2D(2) on {dims:?}: forward+backward old {old:.2} ms new {new:.2} ms ({:.1}x)", old / new);
        }
    }

    #[test]
    fn pooling2d_shapes() {
        assert_eq!(infer("MaxPooling2D", "{pool_size: 2}", &[&[26, 26, 32]]).unwrap(), (vec![13, 13, 32], 0, 0));
        assert_eq!(infer("MaxPooling2D", "{}", &[&[11, 11, 64]]).unwrap().0, vec![5, 5, 64]);
        assert_eq!(infer("AveragePooling2D", "{pool_size: 2, padding: same}", &[&[11, 11, 64]]).unwrap().0, vec![6, 6, 64]);
        assert_eq!(infer("MaxPooling2D", "{pool_size: 3, strides: 1}", &[&[10, 10, 3]]).unwrap().0, vec![8, 8, 3]);
        assert_eq!(infer("MaxPooling2D", "{pool_size: [3, 2], strides: [2, 1]}", &[&[10, 10, 3]]).unwrap().0, vec![4, 9, 3]);
        assert_eq!(infer("AveragePooling2D", "{pool_size: 3, strides: 2, padding: same}", &[&[7, 8, 3]]).unwrap().0, vec![4, 4, 3]);
        assert_eq!(infer("MaxPooling2D", "{pool_size: 1}", &[&[2, 2, 6]]).unwrap().0, vec![2, 2, 6]);
        // strides: null is Keras's None, i.e. pool_size.
        assert_eq!(infer("MaxPooling2D", "{pool_size: 3, strides: null}", &[&[9, 9, 1]]).unwrap().0, vec![3, 3, 1]);
    }

    #[test]
    fn pooling1d_shapes() {
        assert_eq!(infer("MaxPooling1D", "{}", &[&[100, 16]]).unwrap(), (vec![50, 16], 0, 0));
        assert_eq!(infer("AveragePooling1D", "{pool_size: 2}", &[&[47, 16]]).unwrap().0, vec![23, 16]);
        assert_eq!(infer("AveragePooling1D", "{pool_size: 2, padding: same}", &[&[47, 16]]).unwrap().0, vec![24, 16]);
        assert_eq!(infer("MaxPooling1D", "{pool_size: [4], strides: 1}", &[&[10, 2]]).unwrap().0, vec![7, 2]);
    }

    #[test]
    fn pooling_errors() {
        let e = infer("MaxPooling2D", "{pool_size: 2}", &[&[1, 1, 3]]).unwrap_err();
        assert_eq!(e.message, "pool_size (2, 2) leaves an output size of (0, 0) with padding 'valid': it is larger than the input (batch, 1, 1, 3)");
        assert_eq!(e.hint.as_deref(), Some("use padding: same, a smaller pool_size, or remove a pooling layer before '{name}'"));
        assert_eq!(e.arg, Some("pool_size"));
        assert_eq!(infer("MaxPooling2D", "{pool_size: 2, padding: same}", &[&[1, 1, 3]]).unwrap().0, vec![1, 1, 3]);
        let e = infer("AveragePooling1D", "{pool_size: 5}", &[&[3, 4]]).unwrap_err();
        assert!(e.message.ends_with("it is larger than the input (batch, 3, 4)"), "{}", e.message);

        let e = infer("MaxPooling2D", "{}", &[&[28, 28]]).unwrap_err();
        assert_eq!(e.message, "expects a 4-D input (batch, height, width, channels), received (batch, 28, 28)");
        assert_eq!(e.hint.as_deref(), Some("add a channel axis before '{name}': {type: Reshape, target_shape: [28, 28, 1]}"));
        let e = infer("MaxPooling1D", "{}", &[&[28, 28, 1]]).unwrap_err();
        assert_eq!(e.message, "expects a 3-D input (batch, steps, channels), received (batch, 28, 28, 1)");

        assert_eq!(arg_error("MaxPooling2D", "{pool_size: 0}"), "layer 'x' (MaxPooling2D): `pool_size` must be a positive integer or a list of 2, received 0");
        assert_eq!(arg_error("MaxPooling1D", "{strides: 0}"), "layer 'x' (MaxPooling1D): `strides` must be a positive integer or a list of 1, received 0");
        assert_eq!(
            arg_error("AveragePooling2D", "{padding: causal}"),
            "layer 'x' (AveragePooling2D): `padding` must be one of valid, same, received \"causal\""
        );
        let d = build("MaxPooling2D", "{padding: sme}").unwrap_err();
        assert_eq!(d[0].hint.as_deref(), Some("did you mean 'same'?"));
        assert!(arg_error("MaxPooling2D", "{data_format: channels_first}").contains("channels_last"));
    }

    #[test]
    fn global_pooling() {
        assert_eq!(infer("GlobalAveragePooling2D", "{}", &[&[5, 5, 64]]).unwrap(), (vec![64], 0, 0));
        assert_eq!(infer("GlobalMaxPooling2D", "{keepdims: true}", &[&[5, 5, 64]]).unwrap().0, vec![1, 1, 64]);
        assert_eq!(infer("GlobalMaxPooling1D", "{}", &[&[10, 6]]).unwrap().0, vec![6]);
        assert_eq!(infer("GlobalAveragePooling1D", "{keepdims: true}", &[&[10, 6]]).unwrap().0, vec![1, 6]);
        let e = infer("GlobalAveragePooling2D", "{}", &[&[64]]).unwrap_err();
        assert_eq!(e.message, "expects a 4-D input (batch, height, width, channels), received (batch, 64)");
        let e = infer("GlobalMaxPooling1D", "{}", &[&[5, 5, 3]]).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("insert {type: Reshape, target_shape: [5, 15]} before '{name}' to turn rows into time steps"));
        assert_eq!(arg_error("GlobalMaxPooling1D", "{keepdims: yes}"), "layer 'x' (GlobalMaxPooling1D): `keepdims` must be true or false, received \"yes\"");
    }
}
