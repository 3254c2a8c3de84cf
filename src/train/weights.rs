//! Per-sample weights of the training split, as Keras's `fit(sample_weight=...,
//! class_weight=...)` turns them into one weight per sample: the sample's
//! `data.sample_weight` (1 when not given) times the `training.class_weight`
//! of its class (1 for a class the mapping leaves out).
//!
//! A sample's class is read from its target as Keras reads it: a one-value
//! target (sparse class index, one-unit binary 0/1) is its value rounded, a
//! wider one (one-hot) its first largest unit. `balanced` is sklearn's
//! `compute_class_weight("balanced")` over the training split, which Keras
//! users pass: n_samples / (n_classes * count of the class), counting the
//! classes present. Keras 3 refuses `class_weight` together with
//! `sample_weight`; tf.keras 2 multiplied them, as nnrun does.
//!
//! The weights are recomputed from the data on every run (a resumed one
//! too): nothing of them is saved.

use super::config::TrainConfig;
use crate::data::{Array, Split};
use crate::diag::{Pos, did_you_mean};
use crate::spec::training::{ClassKey, ClassWeightEntry, ClassWeightKind};
use crate::spec::yaml::shown;
use std::collections::BTreeMap;

/// A `class_weight` that does not fit the training data.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct WeightError {
    pub message: String,
    pub hint: Option<String>,
}

/// The weight of every training sample, in sample order (`train.n` of
/// them), or `None` when every sample weighs 1 (the unweighted fast path).
/// `classes` are output 0's class names (`PrepState.outputs[0].classes`,
/// sorted), `None` when its labels are numbers: then a string key must be a
/// number equal to a label of the training split.
pub fn resolve(cfg: &TrainConfig, classes: Option<&[String]>, train: &Split) -> Result<Option<Vec<f32>>, WeightError> {
    let sample = train.weights.as_deref();
    if let Some(s) = sample
        && s.len() != train.n
    {
        return Err(WeightError { message: format!("{} sample weights for {} training samples", s.len(), train.n), hint: None });
    }
    let Some(cw) = &cfg.class_weight else {
        return Ok(sample.filter(|s| !all_one(s)).map(<[f32]>::to_vec));
    };
    // config::read allows class_weight on a single output only.
    let Some(target) = train.targets.first() else { return Ok(None) };
    let labels = labels(target, train.n);
    let table = match &cw.kind {
        ClassWeightKind::Balanced => balanced(&labels),
        ClassWeightKind::Map(entries) => mapped(entries, classes, &labels)?,
    };
    let weights: Vec<f32> = labels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            // float32, as Keras's class_weight_to_sample_weights writes it.
            let class = table.get(c).map_or(1.0, |&w| w as f32);
            sample.map_or(class, |s| s[i] * class)
        })
        .collect();
    Ok((!all_one(&weights)).then_some(weights))
}

fn all_one(w: &[f32]) -> bool {
    w.iter().all(|&x| x == 1.0)
}

/// Each sample's class, as Keras's `class_weight_to_sample_weights` reads
/// it: a one-value target rounded, a wider one by its first largest value.
fn labels(t: &Array, n: usize) -> Vec<usize> {
    (0..n)
        .map(|i| match t.sample(i) {
            [v] => v.round().max(0.0) as usize,
            row => row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (k, &v)| if v > best.1 { (k, v) } else { best }).0,
        })
        .collect()
}

/// sklearn's `compute_class_weight("balanced")`: n / (classes present * count).
fn balanced(labels: &[usize]) -> BTreeMap<usize, f64> {
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    for &c in labels {
        *counts.entry(c).or_default() += 1;
    }
    let (n, present) = (labels.len() as f64, counts.len() as f64);
    counts.into_iter().map(|(c, k)| (c, n / (present * k as f64))).collect()
}

/// `training.class_weight` at `pos`, for messages: with its line when known.
fn at(pos: Pos) -> String {
    if pos.is_known() { format!("`training.class_weight` (line {} of the spec)", pos.line) } else { "`training.class_weight`".to_string() }
}

/// The mapping's entries by class index; a name or label the training
/// split doesn't have is an error, and so is a class given twice.
fn mapped(entries: &[ClassWeightEntry], classes: Option<&[String]>, labels: &[usize]) -> Result<BTreeMap<usize, f64>, WeightError> {
    let mut table: BTreeMap<usize, (f64, &ClassKey)> = BTreeMap::new();
    for e in entries {
        let index = match (&e.class, classes) {
            (ClassKey::Index(i), _) => *i,
            (ClassKey::Name(name), Some(names)) => match names.iter().position(|c| c == name) {
                Some(i) => i,
                None => {
                    let hint = match did_you_mean(name, names.iter().map(String::as_str)) {
                        Some(m) => format!("did you mean '{m}'?"),
                        None => format!("key the weights by these names, or by class index (0 = '{}')", names.first().map_or("", |s| s.as_str())),
                    };
                    return Err(WeightError {
                        message: format!(
                            "{}: class '{}' does not occur in the training data (classes: {})",
                            at(e.pos),
                            shown(name),
                            crate::data::prep::list(names)
                        ),
                        hint: Some(hint),
                    });
                }
            },
            (ClassKey::Name(name), None) => {
                let mut present: Vec<usize> = labels.to_vec();
                present.sort_unstable();
                present.dedup();
                let label = name.trim().parse::<f64>().ok().filter(|v| v.fract() == 0.0 && *v >= 0.0).map(|v| v as usize);
                match label.filter(|l| present.binary_search(l).is_ok()) {
                    Some(l) => l,
                    None => {
                        let list = crate::data::prep::list(&present.iter().map(|l| l.to_string()).collect::<Vec<_>>());
                        let why = if label.is_some() { "is not a label of the training data" } else { "is not a class: the training labels are numbers" };
                        return Err(WeightError {
                            message: format!("{}: class '{}' {why} (labels: {list})", at(e.pos), shown(name)),
                            hint: Some("key the weights by label, such as `{0: 1.0, 1: 2.0}`".into()),
                        });
                    }
                }
            }
        };
        if let Some((_, first)) = table.get(&index) {
            let name = |k: &ClassKey| match (k, classes) {
                (ClassKey::Index(i), Some(names)) => names.get(*i).map_or(i.to_string(), |n| format!("'{}'", shown(n))),
                (k, _) => k.to_string(),
            };
            return Err(WeightError {
                message: format!("{}: class {} is given twice (as {first} and as {})", at(e.pos), name(&e.class), e.class),
                hint: Some("keep one of the two".into()),
            });
        }
        table.insert(index, (e.weight, &e.class));
    }
    Ok(table.into_iter().map(|(c, (w, _))| (c, w)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Net;
    use crate::spec::Source;
    use crate::train::fit::{self, FitOptions, NoHooks, Resume};
    use crate::train::log::EpochLog;
    use candle_core::{Device, Tensor};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// The training config of a one-output model with `units` units, `loss`
    /// and a `training` section that adds `extra`.
    fn config(units: usize, activation: &str, loss: &str, extra: &str) -> (crate::graph::Model, TrainConfig) {
        let yaml = format!(
            "model:\n  input_shape: [4]\n  layers:\n    - {{type: Dense, units: {units}, activation: {activation}}}\ntraining:\n  loss: {loss}\n  optimizer: {{type: sgd, learning_rate: 0.1}}\n{extra}"
        );
        let source = Source { path: "t.yaml".into(), text: yaml };
        let mut diags = Vec::new();
        let (spec, model) = crate::graph::from_source(&source, &mut diags).expect("builds");
        let cfg = crate::train::config::read(&spec, &model, &mut diags).expect("config");
        assert!(diags.is_empty(), "{diags:?}");
        (model, cfg)
    }

    fn split(targets: Array, weights: Option<Vec<f32>>) -> Split {
        let n = targets.data.len() / targets.width();
        Split { n, inputs: vec![Array { shape: vec![4], data: vec![0.0; n * 4] }], targets: vec![targets], weights }
    }

    fn sparse(labels: &[f32]) -> Array {
        Array { shape: vec![1], data: labels.to_vec() }
    }

    fn one_hot(labels: &[usize], classes: usize) -> Array {
        let mut data = vec![0.0; labels.len() * classes];
        labels.iter().enumerate().for_each(|(i, &c)| data[i * classes + c] = 1.0);
        Array { shape: vec![classes], data }
    }

    const SPARSE: (usize, &str, &str) = (3, "softmax", "sparse_categorical_crossentropy");

    fn resolved(extra: &str, classes: Option<&[String]>, s: &Split) -> Result<Option<Vec<f32>>, WeightError> {
        let (_, cfg) = config(SPARSE.0, SPARSE.1, SPARSE.2, extra);
        resolve(&cfg, classes, s)
    }

    #[test]
    fn balanced_is_sklearns_formula_over_the_classes_present() {
        // Counts 2, 3, 1 of 6: 6 / (3 * count).
        let s = split(sparse(&[0.0, 1.0, 1.0, 2.0, 1.0, 0.0]), None);
        let w = resolved("  class_weight: balanced\n", None, &s).unwrap().unwrap();
        let want = [1.0, 2.0 / 3.0, 2.0 / 3.0, 2.0, 2.0 / 3.0, 1.0];
        assert!(w.iter().zip(want).all(|(a, b)| (*a as f64 - b).abs() < 1e-7), "{w:?}");
        // Class 1 never occurs: two classes present, 4 / (2 * 2) = 1 each.
        let s = split(sparse(&[0.0, 2.0, 2.0, 0.0]), None);
        assert_eq!(resolved("  class_weight: balanced\n", None, &s).unwrap(), None, "all 1: the unweighted path");
        // One-hot targets (argmax), 3 + 1 of 4: 4 / (2 * 3) and 4 / (2 * 1).
        let (_, cfg) = config(3, "softmax", "categorical_crossentropy", "  class_weight: balanced\n");
        let w = resolve(&cfg, None, &split(one_hot(&[2, 0, 2, 2], 3), None)).unwrap().unwrap();
        assert_eq!(w, [(4.0f64 / 6.0) as f32, 2.0, (4.0f64 / 6.0) as f32, (4.0f64 / 6.0) as f32]);
    }

    #[test]
    fn keys_by_name_index_or_numeric_label_and_unlisted_classes_weigh_one() {
        let names: Vec<String> = ["Adelie", "Chinstrap", "Gentoo"].iter().map(|s| s.to_string()).collect();
        let s = split(sparse(&[0.0, 1.0, 2.0, 1.0]), None);
        let by_name = resolved("  class_weight: {Adelie: 1.0, Chinstrap: 2.0, Gentoo: 0.5}\n", Some(&names), &s).unwrap();
        assert_eq!(by_name, Some(vec![1.0, 2.0, 0.5, 2.0]));
        let by_index = resolved("  class_weight: {0: 1.0, 1: 2.0, 2: 0.5}\n", Some(&names), &s).unwrap();
        assert_eq!(by_index, by_name);
        // Mixed, Gentoo left out: it weighs 1.
        let mixed = resolved("  class_weight: {1: 2.0, Adelie: 3}\n", Some(&names), &s).unwrap();
        assert_eq!(mixed, Some(vec![3.0, 2.0, 1.0, 2.0]));
        // Numeric labels: an index, or a label written as a string.
        let numeric = resolved("  class_weight: {'1': 2.0, 2: 0.5}\n", None, &s).unwrap();
        assert_eq!(numeric, Some(vec![1.0, 2.0, 0.5, 2.0]));
    }

    #[test]
    fn sample_weights_multiply_class_weights() {
        let s = split(sparse(&[0.0, 1.0, 2.0, 1.0]), Some(vec![0.5, 2.0, 1.0, 0.0]));
        assert_eq!(resolved("  class_weight: {0: 1, 1: 3, 2: 0.5}\n", None, &s).unwrap(), Some(vec![0.5, 6.0, 0.5, 0.0]));
        // Without class_weight the sample weights pass as they are; all 1 is none.
        assert_eq!(resolved("", None, &s).unwrap(), Some(vec![0.5, 2.0, 1.0, 0.0]));
        assert_eq!(resolved("", None, &split(sparse(&[0.0, 1.0]), Some(vec![1.0, 1.0]))).unwrap(), None);
        assert_eq!(resolved("", None, &split(sparse(&[0.0, 1.0]), None)).unwrap(), None);
    }

    #[test]
    fn a_one_unit_binary_output_weighs_its_labels() {
        let (_, cfg) = config(1, "sigmoid", "binary_crossentropy", "  class_weight: {0: 0.25, 1: 2.0}\n");
        let w = resolve(&cfg, None, &split(sparse(&[1.0, 0.0, 0.0, 1.0]), None)).unwrap();
        assert_eq!(w, Some(vec![2.0, 0.25, 0.25, 2.0]));
    }

    #[test]
    fn a_class_the_training_data_lacks_is_an_error_naming_it() {
        let names: Vec<String> = ["Adelie", "Chinstrap", "Gentoo"].iter().map(|s| s.to_string()).collect();
        let s = split(sparse(&[0.0, 1.0, 2.0]), None);
        let e = resolved("  class_weight: {Adelie: 1.0, Chinstrap: 2.0, Gentu: 1.0}\n", Some(&names), &s).unwrap_err();
        assert_eq!(
            e.message,
            "`training.class_weight` (line 8 of the spec): class 'Gentu' does not occur in the training data (classes: Adelie, Chinstrap, Gentoo)"
        );
        assert_eq!(e.hint.as_deref(), Some("did you mean 'Gentoo'?"));
        let e = resolved("  class_weight: {Emperor: 1.0}\n", Some(&names), &s).unwrap_err();
        assert!(e.message.contains("class 'Emperor' does not occur"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("key the weights by these names, or by class index (0 = 'Adelie')"));
        // Numeric labels: a name, or a label no sample has.
        let e = resolved("  class_weight: {Adelie: 2.0}\n", None, &s).unwrap_err();
        assert_eq!(e.message, "`training.class_weight` (line 8 of the spec): class 'Adelie' is not a class: the training labels are numbers (labels: 0, 1, 2)");
        let e = resolved("  class_weight: {'7': 2.0}\n", None, &s).unwrap_err();
        assert!(e.message.ends_with("class '7' is not a label of the training data (labels: 0, 1, 2)"), "{e}");
        // One class twice, by index and by name.
        let e = resolved("  class_weight: {0: 2.0, Adelie: 3.0}\n", Some(&names), &s).unwrap_err();
        assert_eq!(e.message, "`training.class_weight` (line 8 of the spec): class 'Adelie' is given twice (as 0 and as 'Adelie')");
    }

    fn train_loss(log: &[EpochLog], key: &str) -> Vec<f64> {
        log.iter().map(|l| l.get(key).unwrap()).collect()
    }

    /// The sum of w_i * loss_i over the batch, divided by the batch's size
    /// (Keras's sum_over_batch_size), not by the sum of the weights.
    #[test]
    fn the_weighted_loss_is_the_weighted_sum_over_the_batch_size() {
        let (model, cfg) = config(3, "softmax", "sparse_categorical_crossentropy", "  class_weight: {0: 1, 1: 3, 2: 0.5}\n  batch_size: 4\n");
        let net = Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut StdRng::seed_from_u64(1)).unwrap();
        let x: Vec<f32> = (0..16).map(|i| ((i * 5) % 7) as f32 / 3.0 - 1.0).collect();
        let labels = [0usize, 1, 2, 1];
        let mut s = Split { n: 4, inputs: vec![Array { shape: vec![4], data: x.clone() }], targets: vec![sparse(&[0.0, 1.0, 2.0, 1.0])], weights: None };
        s.weights = resolve(&cfg, None, &s).unwrap();
        // By hand, before the step: softmax crossentropy of each row.
        let p = net
            .forward(
                &[Tensor::from_vec(x, (4, 4), &Device::Cpu).unwrap()],
                &mut crate::layers::Ctx { train: false, rng: &mut StdRng::seed_from_u64(0), logits: false, grads: None, part: None },
                &[],
            )
            .unwrap();
        let p = p[0].to_vec2::<f32>().unwrap();
        let w = [1.0, 3.0, 0.5, 3.0];
        let want: f64 = labels.iter().zip(w).enumerate().map(|(i, (&c, w))| -w * (p[i][c] as f64).ln()).sum::<f64>() / 4.0;
        let opts = || FitOptions { max_steps: Some(1), ..Default::default() };
        let out = fit::fit(&net, &cfg, &s, None, opts(), Resume::default(), &mut NoHooks, &mut crate::train::progress::JsonLines).unwrap();
        let got = train_loss(&out.history, "loss")[0];
        assert!((got - want).abs() < 1e-5, "nnrun {got}, by hand {want}");
        let unweighted: f64 = labels.iter().enumerate().map(|(i, &c)| -(p[i][c] as f64).ln()).sum::<f64>() / 4.0;
        assert!((got - unweighted).abs() > 1e-3, "the weights changed nothing");
    }

    /// Weights follow their samples through the shuffle: one batch of the
    /// whole split gives the same loss in any order.
    #[test]
    fn shuffling_keeps_the_weights_with_their_samples() {
        let mut runs = Vec::new();
        for shuffle in [false, true] {
            let extra = format!("  class_weight: {{0: 1, 1: 3, 2: 0.5}}\n  batch_size: 8\n  epochs: 3\n  shuffle: {shuffle}\n");
            let (model, cfg) = config(3, "softmax", "sparse_categorical_crossentropy", &extra);
            let net = Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut StdRng::seed_from_u64(1)).unwrap();
            let x: Vec<f32> = (0..32).map(|i| ((i * 5) % 7) as f32 / 3.0 - 1.0).collect();
            let t = sparse(&[0.0, 1.0, 2.0, 1.0, 0.0, 0.0, 2.0, 1.0]);
            let mut s =
                Split { n: 8, inputs: vec![Array { shape: vec![4], data: x }], targets: vec![t], weights: Some(vec![1.0, 0.0, 2.0, 1.0, 0.5, 1.0, 0.0, 3.0]) };
            s.weights = resolve(&cfg, None, &s).unwrap();
            let opts = || FitOptions { max_steps: None, ..Default::default() };
            let out = fit::fit(&net, &cfg, &s, None, opts(), Resume::default(), &mut NoHooks, &mut crate::train::progress::JsonLines).unwrap();
            runs.push(train_loss(&out.history, "loss"));
        }
        assert!(runs[0].iter().zip(&runs[1]).all(|(a, b)| (a - b).abs() < 1e-5), "{runs:?}");
    }

    /// nnrun's fit against Keras 3.15.1 (TensorFlow 2.21.0) on the same cases:
    /// the constants are what bench/keras_checks/class_weight.py prints.
    #[test]
    fn weighted_training_matches_keras() {
        // keras 3.15.1, backend tensorflow
        const CLASS_LOSS: [f64; 3] = [2.9676291942596436, 2.536365270614624, 2.166898488998413];
        const CLASS_VAL_LOSS: [f64; 3] = [1.33176589012146, 1.1993646621704102, 1.0895880460739136];
        const CLASS_ACCURACY: [f64; 3] = [0.3333333432674408, 0.3333333432674408, 0.3333333432674408];
        const CLASS_WEIGHTS: [f64; 15] = [
            0.14794482290744781,
            -0.15243446826934814,
            0.4044896364212036,
            -0.3226552903652191,
            0.6519293785095215,
            0.07072585076093674,
            0.4402253329753876,
            -0.09918633103370667,
            -0.3410390019416809,
            0.13449601829051971,
            -0.6431980729103088,
            0.20870208740234375,
            0.01159846130758524,
            0.16461282968521118,
            -0.026211291551589966,
        ];
        const SAMPLE_LOSS: [f64; 3] = [1.6022323369979858, 1.3080601692199707, 1.072006344795227];
        const SAMPLE_VAL_LOSS: [f64; 3] = [1.292915940284729, 1.1363118886947632, 1.0150972604751587];
        const SAMPLE_ACCURACY: [f64; 3] = [0.3333333432674408, 0.3333333432674408, 0.3333333432674408];
        const SAMPLE_WEIGHTS: [f64; 15] = [
            0.09754178673028946,
            -0.07495422661304474,
            0.37741246819496155,
            -0.23354405164718628,
            0.5816349983215332,
            0.05190907418727875,
            0.4844803512096405,
            -0.16695886850357056,
            -0.31752145290374756,
            0.18041133880615234,
            -0.6613094806671143,
            0.18089818954467773,
            0.08572422713041306,
            0.17607000470161438,
            -0.11179422587156296,
        ];
        const BOTH_LOSS: [f64; 3] = [4.046065807342529, 2.016366481781006, 1.2126573324203491];
        const BOTH_VAL_LOSS: [f64; 3] = [1.017018437385559, 0.8233857154846191, 0.7498161792755127];
        const BOTH_ACCURACY: [f64; 3] = [0.3333333432674408, 0.5, 0.6666666865348816];
        const BOTH_WEIGHTS: [f64; 15] = [
            -0.006526540964841843,
            0.29582318663597107,
            0.11070339381694794,
            -0.3036573827266693,
            0.7571930885314941,
            -0.05353579670190811,
            0.5619850754737854,
            -0.46042564511299133,
            -0.10155948996543884,
            0.15386806428432465,
            -0.5686391592025757,
            0.11477118730545044,
            -0.043419793248176575,
            0.5815004110336304,
            -0.38808053731918335,
        ];
        const BALANCED_LOSS: [f64; 3] = [1.588595986366272, 1.503350853919983, 1.4229735136032104];
        const BALANCED_VAL_LOSS: [f64; 3] = [1.4184789657592773, 1.3541733026504517, 1.293717861175537];
        const BALANCED_ACCURACY: [f64; 3] = [0.3333333432674408, 0.3333333432674408, 0.3333333432674408];
        const BALANCED_WEIGHTS: [f64; 15] = [
            0.1826513260602951,
            -0.33956438302993774,
            0.5569130182266235,
            -0.26306015253067017,
            0.5480838418006897,
            0.11497632414102554,
            0.38110077381134033,
            -0.008627310395240784,
            -0.37247347831726074,
            0.18338683247566223,
            -0.6479290127754211,
            0.16454216837882996,
            0.03809351101517677,
            -0.09526437520980835,
            0.20717085897922516,
        ];
        const BINARY_LOSS: [f64; 3] = [0.33676815032958984, 0.3187417984008789, 0.30268022418022156];
        const BINARY_VAL_LOSS: [f64; 3] = [0.4917316734790802, 0.4797135293483734, 0.46864643692970276];
        const BINARY_ACCURACY: [f64; 3] = [0.8333333134651184, 0.8333333134651184, 0.8333333134651184];
        const BINARY_WEIGHTS: [f64; 5] = [0.3041055500507355, -0.25749361515045166, 0.5895043611526489, 0.051217131316661835, -0.06529545783996582];

        let x = [0.5, -1.0, 2.0, 0.1, 1.5, 0.25, -0.5, -0.3, -1.0, 2.0, 0.75, 0.4, 0.0, -0.5, 1.25, -1.2, 0.8, 0.3, -1.1, 0.6, -0.4, 1.1, 0.2, 0.9];
        let y = [0usize, 1, 1, 2, 1, 0];
        let kernel = [0.2, -0.4, 0.6, -0.3, 0.5, 0.2, 0.4, 0.1, -0.5, 0.1, -0.7, 0.3];
        let bias = [0.05, -0.1, 0.2];
        let sample_weight = vec![0.5, 2.0, 1.0, 0.0, 1.5, 1.0];
        let class_weight = "{0: 1, 1: 3, 2: 0.5}";
        struct Case<'a> {
            name: &'a str,
            loss: &'a str,
            batch: usize,
            class_weight: &'a str,
            sample_weight: Option<Vec<f32>>,
            want: [&'a [f64]; 4],
        }
        let cases = [
            Case {
                name: "class_weight",
                loss: "sparse_categorical_crossentropy",
                batch: 6,
                class_weight,
                sample_weight: None,
                want: [&CLASS_LOSS, &CLASS_VAL_LOSS, &CLASS_ACCURACY, &CLASS_WEIGHTS],
            },
            Case {
                name: "sample_weight",
                loss: "categorical_crossentropy",
                batch: 4,
                class_weight: "null",
                sample_weight: Some(sample_weight.clone()),
                want: [&SAMPLE_LOSS, &SAMPLE_VAL_LOSS, &SAMPLE_ACCURACY, &SAMPLE_WEIGHTS],
            },
            Case {
                name: "both",
                loss: "sparse_categorical_crossentropy",
                batch: 4,
                class_weight,
                sample_weight: Some(sample_weight),
                want: [&BOTH_LOSS, &BOTH_VAL_LOSS, &BOTH_ACCURACY, &BOTH_WEIGHTS],
            },
            Case {
                name: "balanced",
                loss: "sparse_categorical_crossentropy",
                batch: 6,
                class_weight: "balanced",
                sample_weight: None,
                want: [&BALANCED_LOSS, &BALANCED_VAL_LOSS, &BALANCED_ACCURACY, &BALANCED_WEIGHTS],
            },
            Case {
                name: "binary",
                loss: "binary_crossentropy",
                batch: 6,
                class_weight: "{0: 0.25, 1: 2.0}",
                sample_weight: None,
                want: [&BINARY_LOSS, &BINARY_VAL_LOSS, &BINARY_ACCURACY, &BINARY_WEIGHTS],
            },
        ];
        for case in cases {
            let binary = case.loss == "binary_crossentropy";
            let (units, activation) = if binary { (1, "sigmoid") } else { (3, "softmax") };
            let extra = format!("  metrics: [accuracy]\n  class_weight: {}\n  batch_size: {}\n  epochs: 3\n  shuffle: false\n", case.class_weight, case.batch);
            let (model, cfg) = config(units, activation, case.loss, &extra);
            let net = Net::new(model, &Device::Cpu, candle_core::DType::F32, &mut StdRng::seed_from_u64(0)).unwrap();
            let (k, b): (Vec<f32>, Vec<f32>) = if binary {
                (vec![0.3, -0.2, 0.5, 0.1], vec![-0.1])
            } else {
                (kernel.iter().map(|&v| v as f32).collect(), bias.iter().map(|&v| v as f32).collect())
            };
            for (v, w) in net.vars[0].iter().zip([k, b]) {
                v.set(&Tensor::from_vec(w, v.dims(), &Device::Cpu).unwrap()).unwrap();
            }
            let targets = match case.loss {
                "categorical_crossentropy" => one_hot(&y, 3),
                "binary_crossentropy" => sparse(&[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
                _ => sparse(&y.map(|c| c as f32)),
            };
            let mut s = Split { n: 6, inputs: vec![Array { shape: vec![4], data: x.to_vec() }], targets: vec![targets], weights: case.sample_weight };
            s.weights = resolve(&cfg, None, &s).unwrap();
            // Keras validates on the same rows, unweighted.
            let validation = Split { weights: None, ..s.clone() };
            let opts = || FitOptions { max_steps: None, ..Default::default() };
            let out = fit::fit(&net, &cfg, &s, Some(&validation), opts(), Resume::default(), &mut NoHooks, &mut crate::train::progress::JsonLines).unwrap();
            let weights: Vec<f64> = net.vars[0].iter().flat_map(|v| v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).map(f64::from).collect();
            let got = [train_loss(&out.history, "loss"), train_loss(&out.history, "val_loss"), train_loss(&out.history, "accuracy"), weights];
            for ((what, got), want) in ["loss", "val_loss", "accuracy", "weights"].iter().zip(&got).zip(case.want) {
                assert!(
                    got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5),
                    "{} {what}: nnrun {got:?}, Keras {want:?}",
                    case.name
                );
            }
        }
    }
}
