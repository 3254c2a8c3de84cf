//! `nnrun train`: lower the spec, load its data, fit, and write the run directory.

use super::{EXIT_INVALID, EXIT_IO, EXIT_OK, color_for};
use crate::artifact;
use crate::data;
use crate::diag::{Diagnostic, Style, render};
use crate::graph;
use crate::model::Net;
use crate::spec::{Source, overrides, yaml};
use crate::train::losses::Loss;
use crate::train::{config, fit, progress};
use candle_core::DType;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Set by the Ctrl-C handler; the fit loop stops after the current step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// What a checkpoint must match to be resumed: the resolved spec, except
/// `training.epochs`, which a resumed run may raise.
pub fn resume_key(root: &yaml::Node) -> String {
    let mut root = root.clone();
    // Setting an existing or missing key cannot fail on a mapping root.
    let _ = overrides::apply(&mut root, &["training.epochs=null".to_string()]);
    overrides::to_yaml(&root)
}

/// Where fit's files go: the checkpoint after every epoch, and the
/// ModelCheckpoint callback's model file.
struct RunFiles<'a> {
    dir: &'a Path,
    key: String,
    limit: Option<usize>,
    model: artifact::ModelMeta<'a>,
    /// The last epoch's checkpoint, when not yet written, and the last write.
    pending: Option<Vec<u8>>,
    written: Option<std::time::Instant>,
}

/// Checkpoints reach the disk at most this often (and always when training
/// ends, however it ends): fsyncing one per epoch costs more than whole
/// epochs of small models.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

impl RunFiles<'_> {
    /// Writes the newest checkpoint if it is still only in memory.
    fn flush(&mut self) -> std::io::Result<()> {
        match self.pending.take() {
            Some(bytes) => artifact::write_atomic(&self.dir.join(crate::checkpoint::FILE), &bytes),
            None => Ok(()),
        }
    }
}

impl fit::Hooks for RunFiles<'_> {
    fn checkpoint(&mut self, snap: &fit::Snapshot) -> std::io::Result<()> {
        self.pending = Some(crate::checkpoint::to_bytes(snap, &self.key, self.limit).map_err(std::io::Error::other)?);
        if self.written.is_none_or(|t| t.elapsed() >= CHECKPOINT_INTERVAL) {
            self.flush()?;
            self.written = Some(std::time::Instant::now());
        }
        Ok(())
    }

    fn save_model(&mut self, net: &Net, history: &[fit::EpochLog], file: &str) -> std::io::Result<()> {
        let bytes = artifact::model_bytes(net, &self.model, history, None)?;
        artifact::write_atomic(&self.dir.join(file), &bytes)
    }
}

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
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Go on from RUN_DIR/checkpoint.safetensors (same spec; --epochs may grow); RUN_DIR is the output
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
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
    /// Where to compute: cpu, or cuda (a build with `--features cuda`)
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
    /// Train even when the training split lacks some of an output's classes (warns)
    #[arg(long)]
    pub allow_missing_classes: bool,
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
    for (flag, key) in
        [(args.epochs.map(|v| v.to_string()), "epochs"), (args.batch_size.map(|v| v.to_string()), "batch_size"), (args.seed.map(|v| v.to_string()), "seed")]
    {
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
        diags.push(
            Diagnostic::error("the spec has no `data` section", Default::default(), "data")
                .with_hint("add `data:` with a `train` source; see specs/mnist_mlp.yaml"),
        );
    }
    let errors: Vec<Diagnostic> = diags.iter().filter(|d| d.is_error()).cloned().collect();
    if !errors.is_empty() {
        report(&errors, &source);
        eprintln!("{}: invalid, {} error{}", source.path, errors.len(), if errors.len() == 1 { "" } else { "s" });
        return EXIT_INVALID;
    }
    let ((spec, model), cfg, data_spec) = (built.unwrap(), cfg.unwrap(), data_spec.unwrap());
    let device = match args.device.open() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_IO;
        }
    };

    let spec_dir = args.spec.parent().map(PathBuf::from).unwrap_or_default();
    let io = cfg.io(&model);
    let prepared = match data::load(&data_spec, &spec_dir, &io, cfg.seed, args.limit) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return if e.is_io() { EXIT_IO } else { EXIT_INVALID };
        }
    };
    let missing = prepared.missing_classes(&io);
    for m in &missing {
        eprintln!("{}: {m}", if args.allow_missing_classes { "warning" } else { "error" });
    }
    if !missing.is_empty() {
        if !args.allow_missing_classes {
            eprintln!("hint: give the training split every class (check the data, `--limit` and the splits), or pass --allow-missing-classes to train anyway");
            return EXIT_INVALID;
        }
        eprintln!("  = note: the model can't learn classes it never sees; predict calls their units `unseen_<unit>`");
    }
    let zero_infinity = cfg.losses.iter().any(|l| matches!(l, Loss::Ctc { zero_infinity: true, .. }));
    for (out, over, need, steps) in crate::train::ctc::too_long(&io, &prepared.train) {
        eprintln!("warning: {over} of {} training targets need more time steps than output '{out}' has ({steps}); the longest needs {need}", prepared.train.n);
        if zero_infinity {
            eprintln!("  = note: `zero_infinity: true`: their loss and gradient count as 0");
        } else {
            eprintln!("hint: shorten the downsampling along the time axis, or set `training.zero_infinity: true` to skip them (their ctc loss is infinite)");
        }
    }

    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let net = match Net::new(model, &device, DType::F32, &mut rng) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: building the model: {e}");
            return EXIT_INVALID;
        }
    };
    let out_dir = args.resume.clone().or_else(|| args.out.clone()).unwrap_or_else(|| PathBuf::from("runs").join(&spec.name));
    let key = resume_key(&root);
    let resume = match &args.resume {
        None => fit::Resume::default(),
        Some(dir) => {
            let path = dir.join(crate::checkpoint::FILE);
            let ck = match crate::checkpoint::Checkpoint::read(&path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: cannot resume: {e}");
                    return EXIT_IO;
                }
            };
            if ck.spec != key {
                eprintln!("error: cannot resume: {} belongs to a different spec (only training.epochs may change between runs)", path.display());
                eprintln!("hint: pass the same spec and --set/--batch-size/--seed flags as the run being resumed, or start a new run with --out");
                return EXIT_INVALID;
            }
            if ck.limit != args.limit {
                eprintln!("error: cannot resume: {} was trained with --limit {}, this run has {}", path.display(), fmt_limit(ck.limit), fmt_limit(args.limit));
                return EXIT_INVALID;
            }
            match ck.restore(&net) {
                Ok(r) => {
                    println!("Resuming {} after epoch {}", dir.display(), ck.epoch);
                    r
                }
                Err(e) => {
                    eprintln!("error: cannot resume from {}: {e}", path.display());
                    return EXIT_INVALID;
                }
            }
        }
    };
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("error: creating {}: {e}", out_dir.display());
        return EXIT_IO;
    }
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
    // A second Ctrl-C while the handler is already installed (tests call run
    // in one process only through the binary) is harmless; ignore failures.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    let opts = fit::FitOptions { max_steps: args.max_steps, interrupt: Some(&INTERRUPTED) };
    let data_sha256 = data::file_digests(&data_spec, &spec_dir);
    let meta = artifact::ModelMeta { root: &root, prep: &prepared.prep, seed: cfg.seed, limit: args.limit, spec_dir: &spec_dir, data_sha256 };
    let mut files = RunFiles { dir: &out_dir, key, limit: args.limit, model: meta, pending: None, written: None };
    let outcome = fit::fit(&net, &cfg, &prepared.train, prepared.validation.as_ref(), &opts, resume, &mut files, reporter);
    // Whatever happened, the last completed epoch stays resumable.
    if let Err(e) = files.flush() {
        eprintln!("error: writing {}: {e}", out_dir.join(crate::checkpoint::FILE).display());
        return EXIT_IO;
    }
    let history = match outcome {
        Ok(o) if o.interrupted => {
            let spec_arg = args.spec.display();
            if out_dir.join(crate::checkpoint::FILE).is_file() {
                eprintln!("interrupted: resume with nnrun train {spec_arg} --resume {}", out_dir.display());
            } else {
                eprintln!("interrupted before the first epoch ended: nothing to resume");
            }
            return EXIT_INTERRUPTED;
        }
        Ok(o) => o.history,
        Err(e) => {
            eprintln!("error: {e}");
            if matches!(e, fit::TrainError::Diverged { value, .. } if value.is_infinite()) && cfg.losses.iter().any(|l| matches!(l, Loss::Ctc { .. })) {
                eprintln!(
                    "hint: a ctc target longer than the output's time axis allows has an infinite loss; see the warning above, or set `training.zero_infinity: true`"
                );
            } else if matches!(e, fit::TrainError::Diverged { .. }) {
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
                let obj: serde_json::Map<String, serde_json::Value> =
                    t.iter().map(|(k, v)| (k.clone(), (*v).into())).chain([("event".to_string(), "test".into())]).collect();
                println!("{}", serde_json::Value::Object(obj));
            }
        }
    }

    match artifact::write_run(&out_dir, &net, &files.model, &history, test.as_deref()) {
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

fn fmt_limit(l: Option<usize>) -> String {
    l.map_or("none".into(), |n| n.to_string())
}
