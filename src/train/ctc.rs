//! Connectionist Temporal Classification: the loss (alpha recursion in log
//! space, hand-written backward from the beta recursion), greedy and beam
//! decoding, and the edit distance behind the error rate.
//!
//! Logits are (batch, time, classes); softmax is fused into the loss as
//! log-softmax. The loss per sequence is -log p(target | input), summed over
//! every alignment: the target extended with blanks, `b l1 b l2 ... b`,
//! where a path may skip a blank only between two different labels.

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Result, Shape, Tensor};

const NEG_INF: f64 = f64::NEG_INFINITY;

fn logsumexp2(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == NEG_INF { NEG_INF } else { m + ((a - m).exp() + (b - m).exp()).ln() }
}

fn log_softmax(row: &[f32], out: &mut [f64]) {
    let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let z = row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln() + m;
    out.iter_mut().zip(row).for_each(|(o, &x)| *o = x as f64 - z);
}

/// Time steps a target needs at least: one per label, plus a blank between
/// each pair of equal neighbours.
pub fn min_steps(target: &[usize]) -> usize {
    target.len() + target.windows(2).filter(|w| w[0] == w[1]).count()
}

/// -log p(target | logits) for one sequence of `t` steps over `c` classes,
/// and, if `grad` is given, its gradient w.r.t. the logits (written there).
/// Infinite when the target can't fit in `t` steps (the gradient is then 0).
pub fn nll(logits: &[f32], t: usize, c: usize, target: &[usize], blank: usize, grad: Option<&mut [f32]>) -> f64 {
    let mut lp = vec![0.0f64; t * c];
    for s in 0..t {
        log_softmax(&logits[s * c..(s + 1) * c], &mut lp[s * c..(s + 1) * c]);
    }
    // The extended label sequence: blanks around and between the labels.
    let ext: Vec<usize> = std::iter::once(blank).chain(target.iter().flat_map(|&l| [l, blank])).collect();
    let n = ext.len();
    let skip = |s: usize| s >= 2 && ext[s] != blank && ext[s] != ext[s - 2];
    let mut alpha = vec![NEG_INF; t * n];
    if t == 0 {
        return if target.is_empty() { 0.0 } else { f64::INFINITY };
    }
    alpha[0] = lp[ext[0]];
    if n > 1 {
        alpha[1] = lp[ext[1]];
    }
    for s in 1..t {
        for k in 0..n {
            let mut a = alpha[(s - 1) * n + k];
            if k >= 1 {
                a = logsumexp2(a, alpha[(s - 1) * n + k - 1]);
            }
            if skip(k) {
                a = logsumexp2(a, alpha[(s - 1) * n + k - 2]);
            }
            alpha[s * n + k] = a + lp[s * c + ext[k]];
        }
    }
    let last = (t - 1) * n;
    let log_p = if n > 1 { logsumexp2(alpha[last + n - 1], alpha[last + n - 2]) } else { alpha[last] };
    let Some(grad) = grad else { return -log_p };
    if log_p == NEG_INF {
        grad.iter_mut().for_each(|g| *g = 0.0);
        return f64::INFINITY;
    }
    // beta[s][k]: log-probability of finishing from state k at step s, emission at s included.
    let mut beta = vec![NEG_INF; t * n];
    beta[last + n - 1] = lp[(t - 1) * c + ext[n - 1]];
    if n > 1 {
        beta[last + n - 2] = lp[(t - 1) * c + ext[n - 2]];
    }
    for s in (0..t - 1).rev() {
        for k in 0..n {
            let mut b = beta[(s + 1) * n + k];
            if k + 1 < n {
                b = logsumexp2(b, beta[(s + 1) * n + k + 1]);
            }
            if k + 2 < n && skip(k + 2) {
                b = logsumexp2(b, beta[(s + 1) * n + k + 2]);
            }
            beta[s * n + k] = b + lp[s * c + ext[k]];
        }
    }
    // d(-log p)/dz[s][j] = softmax[s][j] - p(paths through class j at s) / p.
    let mut occupancy = vec![NEG_INF; c];
    for s in 0..t {
        occupancy.iter_mut().for_each(|o| *o = NEG_INF);
        for k in 0..n {
            let v = alpha[s * n + k] + beta[s * n + k] - lp[s * c + ext[k]];
            occupancy[ext[k]] = logsumexp2(occupancy[ext[k]], v);
        }
        for j in 0..c {
            grad[s * c + j] = (lp[s * c + j].exp() - (occupancy[j] - log_p).exp()) as f32;
        }
    }
    -log_p
}

/// Per-sequence CTC losses of a (batch, time, classes) logits tensor, as a
/// (batch,) tensor, with a hand-written backward. Runs on the CPU; logits on
/// another device are copied over (and gradients back) around it.
/// With `zero_infinity` (PyTorch's option) a target too long for its output
/// adds 0 instead of an infinite loss; its gradient is 0 either way.
pub fn loss(logits: &Tensor, targets: &[Vec<usize>], blank: usize, zero_infinity: bool) -> Result<Tensor> {
    let (b, _, c) = logits.dims3()?;
    if targets.len() != b {
        candle_core::bail!("ctc: {} targets for a batch of {b}", targets.len());
    }
    if blank >= c {
        candle_core::bail!("ctc: blank index {blank} is outside the {c} classes");
    }
    if let Some(l) = targets.iter().flatten().find(|&&l| l >= c || l == blank) {
        candle_core::bail!("ctc: label {l} is the blank or outside the {c} classes");
    }
    let op = CtcLoss { targets: targets.to_vec(), blank, zero_infinity };
    if logits.device().is_cpu() {
        logits.contiguous()?.apply_op1(op)
    } else {
        logits.to_device(&Device::Cpu)?.contiguous()?.apply_op1(op)?.to_device(logits.device())
    }
}

struct CtcLoss {
    targets: Vec<Vec<usize>>,
    blank: usize,
    zero_infinity: bool,
}

impl CtcLoss {
    fn logits(storage: &CpuStorage, layout: &Layout) -> Result<(Vec<f32>, usize, usize, usize)> {
        let (b, t, c) = layout.shape().dims3()?;
        // `loss` makes the logits contiguous first.
        let Some((lo, hi)) = layout.contiguous_offsets() else { candle_core::bail!("ctc: logits must be contiguous") };
        let data = match storage {
            CpuStorage::F32(v) => v[lo..hi].to_vec(),
            CpuStorage::F64(v) => v[lo..hi].iter().map(|&x| x as f32).collect(),
            _ => candle_core::bail!("ctc: logits must be f32 or f64"),
        };
        Ok((data, b, t, c))
    }
}

impl CustomOp1 for CtcLoss {
    fn name(&self) -> &'static str {
        "ctc-loss"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, b, t, c) = Self::logits(storage, layout)?;
        let losses: Vec<f64> = (0..b)
            .map(|i| nll(&x[i * t * c..(i + 1) * t * c], t, c, &self.targets[i], self.blank, None))
            .map(|l| if self.zero_infinity && l.is_infinite() { 0.0 } else { l })
            .collect();
        let out = match storage {
            CpuStorage::F64(_) => CpuStorage::F64(losses),
            _ => CpuStorage::F32(losses.into_iter().map(|v| v as f32).collect()),
        };
        Ok((out, Shape::from(b)))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let (b, t, c) = arg.dims3()?;
        let x: Vec<f32> = arg.to_dtype(candle_core::DType::F32)?.flatten_all()?.to_vec1()?;
        let mut g = vec![0.0f32; b * t * c];
        for i in 0..b {
            let r = i * t * c..(i + 1) * t * c;
            nll(&x[r.clone()], t, c, &self.targets[i], self.blank, Some(&mut g[r]));
        }
        let g = Tensor::from_vec(g, (b, t, c), arg.device())?.to_dtype(arg.dtype())?;
        Ok(Some(g.broadcast_mul(&grad_res.reshape((b, 1, 1))?)?))
    }
}

/// Token indices (a data row: tokens, then -1 padding) as class indices:
/// the blank's class is skipped, so tokens fill the other classes in order.
pub fn classes_of(row: &[f32], blank: usize) -> Vec<usize> {
    row.iter().take_while(|&&v| v >= 0.0).map(|&v| v as usize).map(|k| if k >= blank { k + 1 } else { k }).collect()
}

/// The token index of a (non-blank) class: the inverse of `classes_of`.
pub fn token_of(class: usize, blank: usize) -> usize {
    if class > blank { class - 1 } else { class }
}

/// Decodes one sample's (time, classes) outputs to token indices: greedy
/// for `beam` <= 1, else prefix beam search of that width. `probs`: the
/// values are softmax probabilities (else logits).
pub fn decode(y: &[f32], c: usize, blank: usize, beam: usize, probs: bool) -> Vec<usize> {
    let t = y.len() / c.max(1);
    let classes = if beam <= 1 {
        greedy(y, t, c, blank)
    } else if probs {
        let logp: Vec<f32> = y.iter().map(|&p| p.max(1e-30).ln()).collect();
        self::beam(&logp, t, c, blank, beam)
    } else {
        self::beam(y, t, c, blank, beam)
    };
    classes.into_iter().map(|k| token_of(k, blank)).collect()
}

/// For each ctc output whose time axis is too short for some training
/// target: (output, targets too long, steps the longest needs, steps there are).
pub fn too_long(io: &crate::data::ModelIo, train: &crate::data::Split) -> Vec<(String, usize, usize, usize)> {
    let mut out = Vec::new();
    for (o, io) in io.outputs.iter().enumerate() {
        let (Some(&steps), "ctc") = (io.shape.first(), crate::spec::training::canonical_loss(&io.loss)) else { continue };
        let a = &train.targets[o];
        let need: Vec<usize> = (0..train.n).map(|i| min_steps(&classes_of(a.sample(i), usize::MAX))).collect();
        let over = need.iter().filter(|&&n| n > steps).count();
        if over > 0 {
            out.push((io.name.clone(), over, need.iter().copied().max().unwrap_or(0), steps));
        }
    }
    out
}

/// Best-path decoding: the most likely class per step, repeats merged,
/// blanks dropped.
pub fn greedy(scores: &[f32], t: usize, c: usize, blank: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut prev = None;
    for s in 0..t {
        let row = &scores[s * c..(s + 1) * c];
        let k = (0..c).fold(0, |best, j| if row[j] > row[best] { j } else { best });
        if Some(k) != prev && k != blank {
            out.push(k);
        }
        prev = Some(k);
    }
    out
}

/// Prefix beam search over logits (or log-probabilities): keeps the `width`
/// most likely label prefixes, each summed over all of its alignments.
pub fn beam(logits: &[f32], t: usize, c: usize, blank: usize, width: usize) -> Vec<usize> {
    use std::collections::HashMap;
    let width = width.max(1);
    let mut lp = vec![0.0f64; c];
    // prefix -> (log p ending in blank, log p ending in its last label)
    let mut beams: Vec<(Vec<usize>, (f64, f64))> = vec![(Vec::new(), (0.0, NEG_INF))];
    for s in 0..t {
        log_softmax(&logits[s * c..(s + 1) * c], &mut lp);
        let mut next: HashMap<Vec<usize>, (f64, f64)> = HashMap::new();
        for (prefix, (pb, pnb)) in &beams {
            let total = logsumexp2(*pb, *pnb);
            for (j, &p) in lp.iter().enumerate() {
                if j == blank {
                    let e = next.entry(prefix.clone()).or_insert((NEG_INF, NEG_INF));
                    e.0 = logsumexp2(e.0, total + p);
                    continue;
                }
                let last = prefix.last().copied();
                let mut extended = prefix.clone();
                extended.push(j);
                let e = next.entry(extended).or_insert((NEG_INF, NEG_INF));
                // A repeat only extends the prefix after a blank in between.
                e.1 = logsumexp2(e.1, if last == Some(j) { pb + p } else { total + p });
                if last == Some(j) {
                    let e = next.entry(prefix.clone()).or_insert((NEG_INF, NEG_INF));
                    e.1 = logsumexp2(e.1, pnb + p);
                }
            }
        }
        let mut all: Vec<_> = next.into_iter().collect();
        // Ties broken by the prefix itself, so the result is deterministic.
        all.sort_by(|a, b| logsumexp2(b.1.0, b.1.1).total_cmp(&logsumexp2(a.1.0, a.1.1)).then_with(|| a.0.cmp(&b.0)));
        all.truncate(width);
        beams = all;
    }
    beams.into_iter().next().map(|(p, _)| p).unwrap_or_default()
}

/// Levenshtein distance: insertions, deletions and substitutions.
pub fn edit_distance(a: &[usize], b: &[usize]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (up + 1).min(row[j] + 1).min(diag + (x != y) as usize);
            diag = up;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// log of a probability table (t rows of c), as logits.
    fn logits_of(p: &[&[f64]]) -> Vec<f32> {
        p.iter().flat_map(|r| r.iter().map(|v| v.ln() as f32)).collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn hand_worked_small_cases() {
        // 2 steps, classes {0: 'a', 1: blank}. Target 'a': paths a-a, a-b, b-a.
        let p = [[0.6, 0.4], [0.3, 0.7]];
        let x = logits_of(&[&p[0], &p[1]]);
        let want = -(0.6f64 * 0.3 + 0.6 * 0.7 + 0.4 * 0.3).ln();
        assert!(close(nll(&x, 2, 2, &[0], 1, None), want, 1e-6));
        // Empty target: only the all-blank path.
        assert!(close(nll(&x, 2, 2, &[], 1, None), -(0.4f64 * 0.7).ln(), 1e-6));
        // 'aa' needs a blank between: a-b-a is the only path in 3 steps.
        let q = [[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]];
        let x3 = logits_of(&[&q[0], &q[1], &q[2]]);
        assert!(close(nll(&x3, 3, 2, &[0, 0], 1, None), -(0.5f64 * 0.8 * 0.9).ln(), 1e-6));
        assert_eq!(min_steps(&[0, 0]), 3);
        // ... and can't fit in 2 steps: infinite loss, zero gradient.
        let mut g = vec![1.0f32; 4];
        assert_eq!(nll(&x, 2, 2, &[0, 0], 1, Some(&mut g)), f64::INFINITY);
        assert!(g.iter().all(|&v| v == 0.0));
        // Two different labels in 2 steps: exactly a-b (here classes a, b, blank).
        let r = [[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]];
        let x2 = logits_of(&[&r[0], &r[1]]);
        assert!(close(nll(&x2, 2, 3, &[0, 1], 2, None), -(0.7f64 * 0.6).ln(), 1e-6));
    }

    /// Brute force: sum over all c^t paths that collapse to the target.
    fn brute(x: &[f32], t: usize, c: usize, target: &[usize], blank: usize) -> f64 {
        let mut lp = vec![0.0; t * c];
        for s in 0..t {
            log_softmax(&x[s * c..(s + 1) * c], &mut lp[s * c..(s + 1) * c]);
        }
        let mut total = 0.0f64;
        for code in 0..c.pow(t as u32) {
            let path: Vec<usize> = (0..t).map(|s| code / c.pow(s as u32) % c).collect();
            if greedy_path(&path, blank) == target {
                total += path.iter().enumerate().map(|(s, &k)| lp[s * c + k]).sum::<f64>().exp();
            }
        }
        -total.ln()
    }

    fn greedy_path(path: &[usize], blank: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut prev = None;
        for &k in path {
            if Some(k) != prev && k != blank {
                out.push(k);
            }
            prev = Some(k);
        }
        out
    }

    fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 33) as f32 / (1u64 << 31) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn agrees_with_brute_force_including_repeats() {
        let (t, c, blank) = (5, 3, 2);
        let x = pseudo_random(t * c, 3);
        for target in [&[][..], &[0], &[1, 1], &[0, 1, 0], &[0, 0, 1], &[1, 1, 1]] {
            let (got, want) = (nll(&x, t, c, target, blank, None), brute(&x, t, c, target, blank));
            assert!(close(got, want, 1e-5), "{target:?}: {got} vs {want}");
        }
        // Blank other than the last class.
        let target = [2, 1];
        assert!(close(nll(&x, t, c, &target, 0, None), brute(&x, t, c, &target, 0), 1e-5));
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (t, c, blank) = (6, 4, 3);
        for (seed, target) in [(1, vec![0, 1]), (2, vec![2, 2]), (3, vec![0, 1, 1, 2]), (4, vec![])] {
            let x = pseudo_random(t * c, seed);
            let mut g = vec![0.0f32; t * c];
            nll(&x, t, c, &target, blank, Some(&mut g));
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            for (i, &gi) in g.iter().enumerate() {
                let h = 1e-3;
                let at = |d: f64| {
                    let v: Vec<f32> = x64.iter().enumerate().map(|(j, &w)| (if j == i { w + d } else { w }) as f32).collect();
                    nll(&v, t, c, &target, blank, None)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                assert!((fd - gi as f64).abs() < 2e-3, "{target:?} [{i}]: analytic {gi} vs numeric {fd}");
            }
            // Each step's gradient sums to zero (softmax minus a distribution).
            for s in 0..t {
                assert!(g[s * c..(s + 1) * c].iter().sum::<f32>().abs() < 1e-5);
            }
        }
    }

    #[test]
    fn long_sequences_do_not_underflow() {
        // 2000 steps: the probability of any path is far below f64's range.
        let (t, c) = (2000, 11);
        let x = pseudo_random(t * c, 9);
        let target: Vec<usize> = (0..300).map(|i| i % 10).collect();
        let mut g = vec![0.0f32; t * c];
        let v = nll(&x, t, c, &target, 10, Some(&mut g));
        assert!(v.is_finite() && v > 1000.0, "{v}");
        assert!(g.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn op_forward_and_backward_match_the_scalar_version() {
        let (b, t, c) = (3, 5, 4);
        let x = pseudo_random(b * t * c, 11);
        let targets = vec![vec![0, 1], vec![2, 2], vec![1]];
        let var = candle_core::Var::from_vec(x.clone(), (b, t, c), &Device::Cpu).unwrap();
        let losses = loss(var.as_tensor(), &targets, 3, false).unwrap();
        let l: Vec<f32> = losses.to_vec1().unwrap();
        // Weighted sum, so each sample's gradient is scaled by its weight.
        let w = Tensor::new(&[1.0f32, 2.0, 0.5], &Device::Cpu).unwrap();
        let grads = (losses * w).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        for (i, (target, weight)) in targets.iter().zip([1.0f32, 2.0, 0.5]).enumerate() {
            let r = i * t * c..(i + 1) * t * c;
            let mut want = vec![0.0f32; t * c];
            let v = nll(&x[r.clone()], t, c, target, 3, Some(&mut want));
            assert!((l[i] as f64 - v).abs() < 1e-4);
            for (a, b) in g[r].iter().zip(&want) {
                assert!((a - b * weight).abs() < 1e-5);
            }
        }
        assert!(loss(var.as_tensor(), &targets, 4, false).is_err(), "blank outside the classes");
        assert!(loss(var.as_tensor(), &[vec![3], vec![], vec![]], 3, false).is_err(), "label equal to the blank");
    }

    #[test]
    fn greedy_merges_repeats_and_drops_blanks() {
        // Per step argmax: 0 0 b 0 1 1 b -> "0 0 1".
        let steps = [0, 0, 2, 0, 1, 1, 2];
        let x: Vec<f32> = steps.iter().flat_map(|&k| (0..3).map(move |j| if j == k { 1.0 } else { 0.0 })).collect();
        assert_eq!(greedy(&x, 7, 3, 2), vec![0, 0, 1]);
        assert_eq!(greedy(&x, 0, 3, 2), Vec::<usize>::new());
    }

    #[test]
    fn beam_search_finds_what_best_path_misses() {
        // Best path is blank-blank (0.6 * 0.6 = 0.36), but 'a' over all of
        // its alignments has 0.4*0.4 + 0.4*0.6 + 0.6*0.4 = 0.64.
        let p = [[0.4, 0.6], [0.4, 0.6]];
        let x = logits_of(&[&p[0], &p[1]]);
        assert_eq!(greedy(&x, 2, 2, 1), Vec::<usize>::new());
        assert_eq!(beam(&x, 2, 2, 1, 4), vec![0]);
        // Width 1 is still a prefix search, and agrees on a clear input.
        let q = [[0.9, 0.05, 0.05], [0.05, 0.05, 0.9], [0.9, 0.05, 0.05], [0.05, 0.9, 0.05]];
        let xq = logits_of(&[&q[0], &q[1], &q[2], &q[3]]);
        assert_eq!(beam(&xq, 4, 3, 2, 1), vec![0, 0, 1]);
        assert_eq!(beam(&xq, 4, 3, 2, 8), greedy(&xq, 4, 3, 2));
    }

    #[test]
    fn zero_infinity_zeroes_only_infeasible_targets() {
        // 2 steps: 'aa' needs 3, so it is infeasible; 'a' is not.
        let x = pseudo_random(2 * 2 * 2, 5);
        let var = candle_core::Var::from_vec(x, (2, 2, 2), &Device::Cpu).unwrap();
        let targets = vec![vec![0, 0], vec![0]];
        let plain: Vec<f32> = loss(var.as_tensor(), &targets, 1, false).unwrap().to_vec1().unwrap();
        assert!(plain[0].is_infinite() && plain[1].is_finite());
        let zeroed = loss(var.as_tensor(), &targets, 1, true).unwrap();
        let z: Vec<f32> = zeroed.to_vec1().unwrap();
        assert_eq!((z[0], z[1]), (0.0, plain[1]));
        let g = zeroed.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = g.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert!(g[..4].iter().all(|&v| v == 0.0) && g[4..].iter().any(|&v| v != 0.0));
    }

    #[test]
    fn tokens_skip_the_blank_class() {
        // Padded row "2 0 3" with the blank in the middle (class 2 of 5).
        assert_eq!(classes_of(&[2.0, 0.0, 3.0, -1.0, -1.0], 2), vec![3, 0, 4]);
        assert_eq!(classes_of(&[2.0, 0.0, 3.0, -1.0], 4), vec![2, 0, 3]);
        assert_eq!([3, 0, 4].map(|k| token_of(k, 2)), [2, 0, 3]);
        // decode: per-step one-hot "3 b 0 0", blank 2 -> classes [3, 0] -> tokens [2, 0].
        let steps = [3, 2, 0, 0];
        let y: Vec<f32> = steps.iter().flat_map(|&k| (0..5).map(move |j| if j == k { 0.96 } else { 0.01 })).collect();
        assert_eq!(decode(&y, 5, 2, 1, true), vec![2, 0]);
        assert_eq!(decode(&y, 5, 2, 4, true), vec![2, 0]);
        let logits: Vec<f32> = y.iter().map(|p| p.ln()).collect();
        assert_eq!(decode(&logits, 5, 2, 4, false), vec![2, 0]);
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 2, 3]), 0);
        assert_eq!(edit_distance(&[], &[1, 2]), 2);
        assert_eq!(edit_distance(&[1, 2, 3], &[1, 3]), 1);
        assert_eq!(edit_distance(&[3, 1, 4], &[1, 4, 1]), 2);
        assert_eq!(edit_distance(&[1, 2], &[2, 1]), 2);
    }
}
