//! `nnrun train`: lower the spec, load its data, fit, and write the run directory.

use super::{color_for, EXIT_INVALID, EXIT_IO, EXIT_OK};
use crate::artifact;
use crate::data::{self, ModelIo, OutputIo};
use crate::diag::{render, Diagnostic, Style};
use crate::graph;
use crate::model::Net;
use crate::spec::{overrides, yaml, Source};
use crate::train::{config, fit, progress};
use candle_core::{DType, Device};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The spec to train
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Override training.epochs
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Override training.batch_size
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Override training.seed
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run directory (default: runs/<spec name>)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Train on the first N training samples only
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Stop after N optimizer steps in all
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,
    /// Set any spec value: --set training.optimizer.learning_rate=0.01 (repeatable)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Progress as plain text lines or JSON lines (a bar is shown on a terminal)
    #[arg(long, value_enum, default_value_t = progress::LogFormat::Text)]
    pub log_format: progress::LogFormat,
    /// CPU threads (default: all cores)
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Prints diagnostics once, at the edge.
fn report(diags: &[Diagnostic], source: &Source) {
    let style = Style { color: color_for(&std::io::stderr()) };
    for d in diags {
        eprint!("{}", render(d, &source.path, &source.text, style));
    }
}

pub fn run(args: &Args) -> u8 {
    let source = match Source::read(&args.spec) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.spec.display());
            return EXIT_IO;
        }
    };
    let mut sets = args.set.clone();
    // CLI flags are overrides like any other, so the saved spec shows them.
    for (flag, key) in [(args.epochs.map(|v| v.to_string()), "epochs"), (args.batch_size.map(|v| v.to_string()), "batch_size"), (args.seed.map(|v| v.to_string()), "seed")] {
        if let Some(v) = flag {
            sets.push(format!("training.{key}={v}"));
        }
    }
    let mut root = match yaml::parse(&source.text) {
        Ok(r) => r,
        Err(d) => {
            report(&[d], &source);
            return EXIT_INVALID;
        }
    };
    if let Err(d) = overrides::apply(&mut root, &sets) {
        report(&[d], &source);
        return EXIT_INVALID;
    }
    let mut diags = Vec::new();
    let built = graph::from_root(&root, &source, &mut diags);
    let cfg = built.as_ref().and_then(|(spec, model)| config::read(spec, model, &mut diags));
    let data_spec = built.as_ref().and_then(|(spec, _)| spec.data.clone());
    if built.is_some() && data_spec.is_none() && !diags.iter().any(Diagnostic::is_error) {
        diags.push(Diagnostic::error("the spec has no `data` section", Default::default(), "data").with_hint("add `data:` with a `train` source; see specs/mnist_mlp.yaml"));
    }
    let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    if !errors.is_empty() {
        report(&errors, &source);
        eprintln!("{}: invalid, {} error{}", source.path, errors.len(), if errors.len() == 1 { "" } else { "s" });
        return EXIT_INVALID;
    }
    let ((spec, model), cfg, data_spec) = (built.unwrap(), cfg.unwrap(), data_spec.unwrap());

    if let Some(t) = args.threads {
        // candle's CPU kernels (rayon and gemm) read this when they first start.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", t.to_string()) };
    }
    let spec_dir = args.spec.parent().map(PathBuf::from).unwrap_or_default();
    let io = ModelIo {
        inputs: model.inputs.iter().map(|i| (i.name.clone(), i.shape.clone())).collect(),
        outputs: model
            .outputs
            .iter()
            .zip(&cfg.losses)
            .map(|(&o, loss)| OutputIo {
                name: model.layers[o].name.clone(),
                shape: model.layers[o].output_shape.clone().unwrap_or_default(),
                loss: loss.name().to_string(),
            })
            .collect(),
    };
    let prepared = match data::load(&data_spec, &spec_dir, &io, cfg.seed, args.limit) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let net = match Net::new(model, &Device::Cpu, DType::F32, &mut rng) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: building the model: {e}");
            return EXIT_INVALID;
        }
    };
    let out_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(&spec.name));
    println!(
        "Training '{}': {} train samples{}{}, {} epochs, batch size {}",
        spec.name,
        prepared.train.n,
        prepared.validation.as_ref().map_or(String::new(), |v| format!(", {} validation", v.n)),
        prepared.test.as_ref().map_or(String::new(), |t| format!(", {} test", t.n)),
        cfg.epochs,
        cfg.batch_size
    );
    let mut console = progress::Console::new(std::io::stdout().is_terminal());
    let mut json = progress::JsonLines;
    let reporter: &mut dyn progress::Progress = match args.log_format {
        progress::LogFormat::Text => &mut console,
        progress::LogFormat::Json => &mut json,
    };
    let opts = fit::FitOptions { max_steps: args.max_steps };
    let history = match fit::fit(&net, &cfg, &prepared.train, prepared.validation.as_ref(), &opts, &mut rng, reporter) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, fit::TrainError::Diverged { .. }) {
                eprintln!("hint: lower the learning rate (--set training.optimizer.learning_rate=...), or normalize the inputs (data.normalize: standard)");
            }
            return EXIT_INVALID;
        }
    };
    let test = match prepared.test.as_ref().map(|t| fit::evaluate(&net, &cfg, t, "test_", &mut rng)).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: evaluating on the test split: {e}");
            return EXIT_INVALID;
        }
    };
    if let Some(t) = &test {
        let text: Vec<String> = t.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
        match args.log_format {
            progress::LogFormat::Text => println!("Test - {}", text.join(" - ")),
            progress::LogFormat::Json => {
                let obj: serde_json::Map<String, serde_json::Value> = t.iter().map(|(k, v)| (k.clone(), (*v).into())).chain([("event".to_string(), "test".into())]).collect();
                println!("{}", serde_json::Value::Object(obj));
            }
        }
    }

    match write_run(&out_dir, &net, &root, &prepared.prep, &history, test.as_deref(), cfg.seed, args.limit, &spec_dir) {
        Ok(()) => {
            if args.log_format == progress::LogFormat::Text {
                println!("Saved {}", out_dir.display());
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: writing {}: {e}", out_dir.display());
            EXIT_IO
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn write_run(
    dir: &std::path::Path,
    net: &Net,
    root: &yaml::Node,
    prep: &data::PrepState,
    history: &[fit::EpochLog],
    test: Option<&[(String, f64)]>,
    seed: u64,
    limit: Option<usize>,
    spec_dir: &std::path::Path,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let spec_yaml = overrides::to_yaml(root);
    let last = history.last().map(|h| h.values.clone()).unwrap_or_default();
    let metrics: serde_json::Map<String, serde_json::Value> =
        last.iter().chain(test.unwrap_or(&[])).map(|(k, v)| (k.clone(), (*v).into())).collect();
    let mut meta = BTreeMap::from([
        ("nnrun.format_version".to_string(), artifact::FORMAT_VERSION.to_string()),
        ("nnrun.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        ("nnrun.spec".to_string(), spec_yaml.clone()),
        ("nnrun.preprocessing".to_string(), serde_json::to_string(prep).unwrap_or_default()),
        ("nnrun.metrics".to_string(), serde_json::Value::Object(metrics).to_string()),
        ("nnrun.seed".to_string(), seed.to_string()),
        // Relative data paths in the spec are relative to this directory.
        ("nnrun.spec_dir".to_string(), spec_dir.display().to_string()),
    ]);
    // `evaluate` needs it to split the same test rows off the limited data.
    if let Some(n) = limit {
        meta.insert("nnrun.limit".to_string(), n.to_string());
    }
    let bytes = artifact::safetensors_bytes(&net.named_tensors(), meta).map_err(std::io::Error::other)?;
    artifact::write_atomic(&dir.join("model.safetensors"), &bytes)?;
    artifact::write_atomic(&dir.join("spec.yaml"), spec_yaml.as_bytes())?;
    artifact::write_atomic(&dir.join("history.csv"), artifact::history_csv(history).as_bytes())?;
    Ok(())
}
