//! `nnrun evaluate`: loss, metrics and confusion matrices of a trained model
//! on labelled data: the test data of its spec, or a file of the same kind.

use super::{CliError, print_out, warn_text};
use crate::artifact::{self, Restored};
use crate::data::{self, DataError, Split};
use crate::layers::Ctx;
use crate::spec::Named;
use crate::spec::data::{SourceSpec, resolve};
use crate::train::config::{self, TrainConfig};
use crate::train::losses::Loss;
use crate::train::{fit, memory};
use candle_core::{DType, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trained model file (runs/<name>/model.safetensors)
    #[arg(value_name = "MODEL")]
    pub model: PathBuf,
    /// Labelled data in the training data's form: a CSV file, or IDX images
    /// with --labels (default: the test data of the model's spec)
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// The labels for --data images: an IDX file, or a CSV (text labels,
    /// such as the token sequences of a ctc model)
    #[arg(long, value_name = "FILE", requires = "data")]
    pub labels: Option<PathBuf>,
    /// ctc outputs: decode with a prefix beam search of this width
    /// (default 1: greedy best path)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub beam_width: usize,
    /// Samples per forward pass (default: the spec's training.batch_size, at least 256)
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Where to compute: cpu, or cuda (a build with `--features cuda`)
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
}

pub fn run(args: &Args) -> Result<(), CliError> {
    evaluate(args)
}

/// One classifier output's counts: `matrix[true][predicted]`.
struct Confusion {
    output: String,
    classes: Vec<String>,
    matrix: Vec<Vec<u64>>,
}

fn evaluate(args: &Args) -> Result<(), CliError> {
    let device = args.device.open()?;
    let r = artifact::restore(&args.model, &device)?;
    // The forward pass (and the drop of its graph) recurses along the model's depth.
    let stack = super::model_stack(&r.net.graph, &format!("the model in {}", r.file.file))?;
    super::on_stack(stack, || evaluate_with(args, &r))
}

fn evaluate_with(args: &Args, r: &Restored) -> Result<(), CliError> {
    let mut diags = Vec::new();
    let mut cfg = config::read(&r.spec, &r.net.graph, &mut diags).ok_or_else(|| {
        let msgs: Vec<String> = diags.iter().filter(|d| d.is_error()).map(|d| format!("  {}", d.message)).collect();
        CliError::invalid(format!("{}: the embedded training section is invalid:\n{}", r.file.file, msgs.join("\n")))
    })?;
    // ctc outputs: decoded with --beam-width, and always scored as sequences.
    for (loss, metrics) in cfg.losses.iter_mut().zip(&mut cfg.metrics) {
        if let Loss::Ctc { beam, .. } = loss {
            *beam = args.beam_width;
            for m in ["sequence_accuracy", "cer"] {
                let have = |n: &String| n == m || (m == "sequence_accuracy" && (n == "accuracy" || n == "acc"));
                if !metrics.iter().any(have) {
                    metrics.push(m.to_string());
                }
            }
        }
    }
    let (split, described) = load(args, r, &cfg)?;
    let batch = args.batch_size.unwrap_or(memory::eval_batch(cfg.batch_size));
    // The data is loaded (and counted out of what is available) by now.
    super::check_inference_memory(&r.net, batch.min(split.n.max(1)), "evaluating")?;
    let seed = cfg.seed;
    let values = fit::evaluate(&r.net, &cfg, &split, "", batch, &mut StdRng::seed_from_u64(seed)).map_err(|e| CliError::invalid(format!("evaluating: {e}")))?;
    let confusions = confusions(r, &cfg, &split, batch).map_err(|e| CliError::invalid(format!("evaluating: {e}")))?;
    match args.format {
        Format::Text => {
            let mut text = format!("{}: {} samples from {described}\n", r.file.file, split.n);
            for (k, v) in &values {
                text.push_str(&format!("{k}: {v:.4}\n"));
            }
            for c in &confusions {
                text.push_str(&format!("\n{}", matrix_text(c)));
            }
            print_out(&text)?;
        }
        Format::Json => {
            let mut obj: serde_json::Map<String, serde_json::Value> = values.iter().map(|(k, v)| (k.clone(), (*v).into())).collect();
            obj.insert("samples".into(), split.n.into());
            let cm = confusions.iter().map(|c| (c.output.clone(), serde_json::json!({"classes": c.classes, "matrix": c.matrix}))).collect();
            obj.insert("confusion_matrix".into(), serde_json::Value::Object(cm));
            print_out(&format!("{}\n", serde_json::Value::Object(obj)))?;
        }
    }
    Ok(())
}

/// The split to evaluate on, and what it is in words.
fn load(args: &Args, r: &Restored, cfg: &TrainConfig) -> Result<(Split, String), CliError> {
    let Some(spec) = &r.spec.data else {
        return Err(CliError::invalid(format!("{}: the embedded spec has no `data` section, so nnrun cannot read data for it", r.file.file)));
    };
    let io = cfg.io(&r.net.graph);
    let invalid = CliError::from;
    if let Some(file) = &args.data {
        let named = |p: &Path| -> Result<Named, CliError> {
            // Regular files only: a FIFO would block, a device never end.
            crate::io::open_regular(p)?;
            Ok(Named { name: p.display().to_string(), pos: Default::default() })
        };
        let path = named(file)?;
        let src = match (spec.train.is_csv(), &args.labels) {
            (true, None) => SourceSpec::Csv { path },
            (false, Some(labels)) => SourceSpec::Idx { images: path, labels: named(labels)? },
            (true, Some(_)) => return Err(CliError::usage("--labels is for IDX images; this model was trained on CSV data, whose file holds the labels")),
            (false, None) => return Err(CliError::usage("this model was trained on IDX images: give their labels file with --labels FILE")),
        };
        // Statistics and classes come from training, not from this file.
        let (split, unseen) = data::load_with(spec, &src, Path::new(""), &io, &r.prep).map_err(invalid)?;
        super::report_unseen(&file.display().to_string(), &unseen);
        return Ok((split, file.display().to_string()));
    }
    let spec_dir = PathBuf::from(&r.file.meta.spec_dir);
    let files = |s: &SourceSpec| s.paths().iter().map(|p| resolve(&spec_dir, &p.name).display().to_string()).collect::<Vec<_>>().join(" and ");
    // Training's paths are relative to where it ran.
    let located = |e: DataError| match e {
        DataError::Open { .. } => CliError::from(e).with_hint(format!(
            "the model's data paths are relative to '{}' as seen from where it was trained; run from there, or pass --data FILE",
            spec_dir.display()
        )),
        e => invalid(e),
    };
    warn_changed(r, spec, &spec_dir);
    if let Some(test) = &spec.test {
        let (split, unseen) = data::load_with(spec, test, &spec_dir, &io, &r.prep).map_err(located)?;
        super::report_unseen(&files(test), &unseen);
        return Ok((split, format!("the test data {}", files(test))));
    }
    if spec.test_split > 0.0 {
        // The seed and the limit training used give the same test rows.
        let (seed, limit) = (r.file.meta.seed, r.file.meta.limit);
        let p = data::load(spec, &spec_dir, &io, seed, limit).map_err(located)?;
        if p.prep != r.prep {
            warn_text(
                "the training data differs from when the model was trained (other statistics or classes); the test split may not be the one training held out",
                None,
            );
        }
        let limited = limit.map_or(String::new(), |n: usize| format!(" (first {n} samples)"));
        let what = format!("the test split (test_split {} of {}{limited}, seed {seed})", spec.test_split, files(&spec.train));
        return Ok((p.test.expect("test_split > 0 gives a test split"), what));
    }
    Err(CliError::usage(format!("{}: the model's spec has no test data (`data.test` or `data.test_split`); pass --data FILE", r.file.file)))
}

/// Warns about data files whose contents changed since training: the
/// metrics then describe other data than the saved ones did.
fn warn_changed(r: &Restored, spec: &crate::spec::data::DataSpec, spec_dir: &Path) {
    let saved = &r.file.meta.data_sha256;
    for (file, sha) in data::file_digests(spec, spec_dir) {
        if saved.get(&file).is_some_and(|s| *s != sha) {
            warn_text(format!("{file} changed since the model was trained (its sha256 differs from the one in the model file)"), None);
        }
    }
}

/// Index of the first maximum, as the accuracy metric takes it.
fn argmax(row: &[f32]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// Confusion matrices of the classifier outputs (crossentropy losses; binary
/// with one unit), predictions thresholded as the accuracy metric does.
fn confusions(r: &Restored, cfg: &TrainConfig, split: &Split, batch: usize) -> candle_core::Result<Vec<Confusion>> {
    let net = &r.net;
    let g = &net.graph;
    let classes: Vec<Option<usize>> = g
        .outputs
        .iter()
        .zip(&cfg.losses)
        .map(|(&o, loss)| match (loss, g.layers[o].output_shape.as_deref()) {
            (Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy, Some(&[k])) => Some(k),
            (Loss::BinaryCrossentropy, Some(&[1])) => Some(2),
            _ => None,
        })
        .collect();
    let mut out: Vec<Confusion> = Vec::new();
    for (k, n) in classes.iter().enumerate() {
        if let Some(n) = *n {
            let names = r.prep.class_names(k, n);
            out.push(Confusion { output: g.layers[g.outputs[k]].name.clone(), classes: names, matrix: vec![vec![0; n]; n] });
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    let mut rng = StdRng::seed_from_u64(0);
    let probabilities = vec![false; g.outputs.len()];
    for start in (0..split.n).step_by(batch.max(1)) {
        let end = (start + batch).min(split.n);
        let xs = split
            .inputs
            .iter()
            .map(|a| {
                let dims: Vec<usize> = std::iter::once(end - start).chain(a.shape.iter().copied()).collect();
                Tensor::from_slice(&a.data[start * a.width()..end * a.width()], dims, &net.device)
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        let outs = net.forward(&xs, &mut Ctx { train: false, rng: &mut rng, logits: false, grads: None, part: None }, &probabilities)?;
        let mut cms = out.iter_mut();
        for (k, y) in outs.iter().enumerate() {
            if classes[k].is_none() {
                continue;
            }
            let cm = cms.next().expect("one matrix per classifier");
            let p = y.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            let w = p.len() / (end - start);
            for i in start..end {
                let (row, truth) = (&p[(i - start) * w..(i - start + 1) * w], split.targets[k].sample(i));
                let (t, pred) = match (cfg.losses[k], truth) {
                    (Loss::BinaryCrossentropy, _) => (truth[0] as usize, usize::from(row[0] > 0.5)),
                    (_, [t]) => (*t as usize, argmax(row)),
                    _ => (argmax(truth), argmax(row)),
                };
                cm.matrix[t][pred] += 1;
            }
        }
    }
    Ok(out)
}

fn matrix_text(c: &Confusion) -> String {
    let corner = "true \\ predicted";
    let first = c.classes.iter().map(|s| s.chars().count()).chain([corner.len()]).max().unwrap_or(0);
    let widths: Vec<usize> = c
        .classes
        .iter()
        .enumerate()
        .map(|(j, name)| c.matrix.iter().map(|row| row[j].to_string().len()).chain([name.chars().count()]).max().unwrap_or(1))
        .collect();
    let mut s = format!("Confusion matrix of '{}' (rows: true class, columns: predicted):\n{corner:<first$}", c.output);
    for (name, w) in c.classes.iter().zip(&widths) {
        s.push_str(&format!("  {name:>w$}"));
    }
    s.push('\n');
    for (name, row) in c.classes.iter().zip(&c.matrix) {
        s.push_str(&format!("{name:<first$}"));
        for (v, w) in row.iter().zip(&widths) {
            s.push_str(&format!("  {v:>w$}"));
        }
        s.push('\n');
    }
    s
}
