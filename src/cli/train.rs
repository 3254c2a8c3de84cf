//! `nnrun train`: lower the spec, load its data, fit, and write the run directory.
//!
//! Everything that can be checked is checked before the data is loaded: the
//! spec (its warnings are shown as `validate` shows them), the command line,
//! the checkpoint to resume, the run folder's permissions, and whether the
//! model fits in memory and on the stack.

use super::error::Flag;
use super::{CliError, warn, warn_text};
use crate::artifact;
use crate::data;
use crate::diag::Diagnostic;
use crate::graph;
use crate::model::Net;
use crate::spec::{Source, overrides, yaml};
use crate::summary::memory_size;
use crate::train::distributed::{self, Collective};
use crate::train::losses::Loss;
use crate::train::{config, fit, memory, progress};
use candle_core::DType;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the Ctrl-C handler; the fit loop stops after the current step.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// `--threads` past this is a typo, not a machine.
pub const MAX_THREADS: usize = 1024;

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

/// An I/O error that names its file, for fit to pass on.
fn naming(path: &Path) -> impl Fn(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

impl RunFiles<'_> {
    /// Writes the newest checkpoint if it is still only in memory.
    fn flush(&mut self) -> std::io::Result<()> {
        match self.pending.take() {
            Some(bytes) => {
                let path = self.dir.join(crate::checkpoint::FILE);
                artifact::write_atomic(&path, &bytes).map_err(naming(&path))
            }
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

    fn save_model(&mut self, net: &Net, history: &[crate::train::log::EpochLog], file: &str) -> std::io::Result<()> {
        let bytes = artifact::model_bytes(net, &self.model, history, None)?;
        let path = self.dir.join(file);
        artifact::write_atomic(&path, &bytes).map_err(naming(&path))
    }
}

/// A count on the command line: 1 or more.
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("expected a positive integer: {e}")),
    }
}

fn threads(s: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n > MAX_THREADS => Err(format!("must be at most {MAX_THREADS}")),
        n => Ok(n),
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The spec to train
    #[arg(value_name = "SPEC")]
    pub spec: PathBuf,
    /// Override training.epochs
    #[arg(long, value_name = "N", value_parser = positive)]
    pub epochs: Option<usize>,
    /// Override training.batch_size
    #[arg(long, value_name = "N", value_parser = positive)]
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
    #[arg(long, value_name = "N", value_parser = positive)]
    pub limit: Option<usize>,
    /// Stop after N optimizer steps in all (0: save the initial weights)
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,
    /// Set any spec value: --set training.optimizer.learning_rate=0.01 (repeatable)
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Progress as plain text lines or JSON lines (a bar is shown on a terminal)
    #[arg(long, value_enum, default_value_t = progress::LogFormat::Text)]
    pub log_format: progress::LogFormat,
    /// CPU threads, 1 to 1024 (default: all cores, shared among the processes of an MPI run on one machine)
    #[arg(long, value_name = "N", value_parser = threads)]
    pub threads: Option<usize>,
    /// Where to compute: cpu, or cuda (a build with `--features cuda`)
    #[arg(long, value_enum, default_value_t = super::DeviceArg::Cpu)]
    pub device: super::DeviceArg,
    /// Train even when the training split lacks some of an output's classes (warns)
    #[arg(long)]
    pub allow_missing_classes: bool,
}

/// The spec values the command line sets: `--epochs`, `--batch-size` and
/// `--seed` are overrides like `--set`, so the saved spec shows them.
fn flags(args: &Args) -> Vec<Flag> {
    let short = [
        ("epochs", "--epochs", args.epochs.map(|v| v.to_string())),
        ("batch_size", "--batch-size", args.batch_size.map(|v| v.to_string())),
        ("seed", "--seed", args.seed.map(|v| v.to_string())),
    ];
    let sets =
        args.set.iter().map(|s| Flag { path: s.split_once('=').map_or(s.as_str(), |(p, _)| p).to_string(), set: s.clone(), shown: format!("--set {s}") });
    sets.chain(
        short
            .into_iter()
            .filter_map(|(key, flag, v)| v.map(|v| Flag { path: format!("training.{key}"), set: format!("training.{key}={v}"), shown: format!("{flag} {v}") })),
    )
    .collect()
}

/// Prints a line of progress. A closed stdout does not stop a training.
fn say(text: std::fmt::Arguments) {
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Creates the run folder if needed and checks that files can be created
/// in it, before a minute of data loading and training would find out.
fn check_writable(dir: &Path) -> Result<(), CliError> {
    let hint = "choose a folder you can write to with --out DIR";
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(format!("cannot create the run folder {}: {e}", dir.display())).with_hint(hint))?;
    let probe = dir.join(format!(".nnrun-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(CliError::io(format!("cannot write to the run folder {}: {e}", dir.display())).with_hint(hint)),
    }
}

/// Refuses a step that cannot fit in the memory left, before allocating it.
fn check_memory(e: &memory::Estimate, optimizer: &str, available: Option<u64>, loaded: bool) -> Result<(), CliError> {
    let Some(available) = available else { return Ok(()) };
    if e.model() <= available {
        return Ok(());
    }
    let m = |b: u64| memory_size(usize::try_from(b).unwrap_or(usize::MAX));
    let data = if loaded { format!(", beside the {} of training data already loaded", m(e.data)) } else { String::new() };
    let largest = e.largest.as_ref().map_or(String::new(), |(name, b)| format!("; {name} alone needs {}", m(*b)));
    Err(CliError::invalid(format!(
        "training needs about {} of memory{data}, and {} is available: weights {}, gradients {}, optimizer state {} ({} keeps {} value{} per weight), activations {} (batch of {})",
        m(e.model()),
        m(available),
        m(e.weights),
        m(e.gradients),
        m(e.optimizer),
        optimizer,
        e.slots,
        if e.slots == 1 { "" } else { "s" },
        m(e.activations),
        e.batch,
    ))
    .with_hint(format!("lower the batch size (--batch-size N) or the layers' sizes (units, filters){largest}")))
}

/// How this process takes part in the run: alone, or as one of the
/// processes of a data-parallel job (`mpirun -np N nnrun train`).
#[derive(Clone, Copy)]
pub struct World<'a> {
    pub comm: Option<&'a (dyn Collective + Sync)>,
    /// The MPI library's name, for the first line.
    pub library: &'a str,
}

impl World<'_> {
    pub const ALONE: World<'static> = World { comm: None, library: "" };

    fn rank(&self) -> usize {
        self.comm.map_or(0, |c| c.rank())
    }
    /// Rank 0 alone writes files, progress and warnings.
    fn leads(&self) -> bool {
        self.rank() == 0
    }
}

/// `nnrun train` as the binary runs it: data-parallel when a launcher
/// (mpirun, srun) started several processes, alone otherwise.
pub fn main(args: &Args) -> ExitCode {
    #[cfg(feature = "mpi")]
    if distributed::launched() {
        let mpi = match crate::train::mpi::Mpi::init() {
            Ok(m) => m,
            Err(e) => return super::finish(Err(CliError::io(format!("cannot start MPI: {e}")))),
        };
        if mpi.size() > 1 {
            return distributed_main(args, &mpi);
        }
        return super::finish(run(args, World::ALONE));
    }
    #[cfg(not(feature = "mpi"))]
    if let Some(n) = distributed::launched_processes().filter(|&n| n > 1) {
        return super::finish(Err(CliError::usage(format!(
            "started as one of {n} processes (by mpirun or srun), but this nnrun was built without MPI support: each would train alone, into the same run folder"
        ))
        .with_hint("rebuild with `cargo build --release --features mpi` (needs libopenmpi-dev and libclang-dev), or start nnrun train without mpirun")));
    }
    super::finish(run(args, World::ALONE))
}

/// A process of a data-parallel run. They all stop together after Ctrl-C
/// (the stop travels in the step's allreduce); any other error ends the
/// whole job (MPI_Abort), so no process is left waiting in an allreduce.
#[cfg(feature = "mpi")]
fn distributed_main(args: &Args, mpi: &crate::train::mpi::Mpi) -> ExitCode {
    let library = crate::train::mpi::library();
    let result = run(args, World { comm: Some(mpi), library: &library });
    let (rank, size) = (mpi.rank(), mpi.size());
    match result {
        Ok(()) => super::finish(Ok(())),
        // All stopped at the same step. The others wait until rank 0 has
        // told how to resume: mpirun ends the job when one exits non-zero.
        Err(e @ CliError::Interrupted(_)) => {
            let code = if rank == 0 { super::finish(Err(e)) } else { ExitCode::from(super::EXIT_INTERRUPTED) };
            mpi.barrier();
            code
        }
        Err(e) => {
            let code = e.exit_code();
            if rank > 0 {
                // An error every process meets (a bad spec) is shown once, by
                // rank 0, whose abort ends this process first; one this
                // process met alone is shown after the wait.
                std::thread::sleep(std::time::Duration::from_secs(3));
                eprintln!("note: process {rank} of {size} (MPI rank {rank}) failed:");
            }
            let _ = super::finish(Err(e));
            mpi.abort(i32::from(code))
        }
    }
}

/// The spec and command line, checked before any data is read: the spec
/// (its warnings shown as `validate` shows them), the device, and whether
/// the model fits on the stack and in memory.
struct Loaded {
    root: yaml::Node,
    spec_name: String,
    model: graph::Model,
    cfg: config::TrainConfig,
    data_spec: crate::spec::data::DataSpec,
    spec_dir: PathBuf,
    device: candle_core::Device,
    stack: usize,
    available: Option<u64>,
}

fn load(args: &Args, world: World) -> Result<Loaded, CliError> {
    let source = Source::read(&args.spec)?;
    let flags = flags(args);
    let sets: Vec<String> = flags.iter().map(|f| f.set.clone()).collect();
    let spec_error = |diags: Vec<Diagnostic>| CliError::Spec { file: source.path.clone(), text: source.text.clone(), diags, flags: flags.clone() };
    let mut root = yaml::parse(&source.text).map_err(|d| spec_error(vec![d]))?;
    // A malformed --set is a usage error; a well-formed one with a bad value
    // is reported below, as coming from the flag.
    overrides::apply(&mut root, &sets).map_err(|d| CliError::Usage { message: d.message, hint: d.hint })?;
    let mut diags = Vec::new();
    let spec_dir = args.spec.parent().map(PathBuf::from).unwrap_or_default();
    let built = data::build(&root, &source, &spec_dir, args.limit, &mut diags);
    let cfg = built.as_ref().and_then(|(spec, model)| config::read(spec, model, &mut diags));
    let data_spec = built.as_ref().and_then(|(spec, _)| spec.data.clone());
    if built.is_some() && data_spec.is_none() && !diags.iter().any(Diagnostic::is_error) {
        diags.push(
            Diagnostic::error("the spec has no `data` section", Default::default(), "data")
                .with_hint("add `data:` with a `train` source; see specs/mnist_mlp.yaml"),
        );
    }
    let (Some((spec, model)), Some(cfg), Some(data_spec)) = (built, cfg, data_spec) else {
        return Err(spec_error(diags));
    };
    if diags.iter().any(Diagnostic::is_error) {
        return Err(spec_error(diags));
    }
    diags.sort_by_key(|d| (d.pos.line, d.pos.col));
    // validate's warnings for the same spec, before any work starts.
    if world.leads() {
        let lines = crate::diag::SourceLines::new(&source.text);
        for d in &diags {
            warn(d, &source.path, &lines, &flags);
        }
    }
    let device = args.device.open()?;
    if cfg.mixed_bfloat16 {
        check_mixed_bfloat16(&device)?;
    }
    // Refused before any data is read: a model too deep for the stack, or
    // too large for the memory.
    let stack = super::model_stack(&model, "the model")?;
    // The weights live on the GPU there; only the CPU's are checked.
    let available = if device.is_cpu() { memory::available() } else { None };
    check_memory(&memory::estimate(&model, &cfg, 0), cfg.optimizer.name, available, false)?;
    Ok(Loaded { root, spec_name: spec.name, model, cfg, data_spec, spec_dir, device, stack, available })
}

pub fn run(args: &Args, world: World) -> Result<(), CliError> {
    let loaded = load(args, world)?;
    let out_dir = args.resume.clone().or_else(|| args.out.clone()).unwrap_or_else(|| PathBuf::from("runs").join(&loaded.spec_name));
    let key = resume_key(&loaded.root);
    let checkpoint = match &args.resume {
        None => None,
        Some(dir) => Some(read_checkpoint(dir, &key, args.limit)?),
    };
    let existed = out_dir.is_dir();
    if world.leads() {
        check_writable(&out_dir)?;
    }
    let result = (|| {
        let prepared = prepare(args, &loaded, world)?;
        let Loaded { root, spec_name, model, cfg, data_spec, spec_dir, device, stack, .. } = loaded;
        let job = Job { args, spec_name: &spec_name, root: &root, cfg: &cfg, data_spec: &data_spec, spec_dir: &spec_dir, out_dir: &out_dir, key, world };
        // candle's backward pass and the drop of the graph recurse along the
        // model's depth: the fit runs on a thread with a stack to match.
        super::on_stack(stack, move || job.run(model, &device, prepared, checkpoint))
    })();
    if result.is_err() && !existed && world.leads() {
        // Nothing was written: leave no empty folder behind (fails if not empty).
        let _ = std::fs::remove_dir(&out_dir);
    }
    result
}

/// Loads the data, resolves the sample weights, and checks the training
/// split against the model: its classes, ctc target lengths, and memory.
fn prepare(args: &Args, loaded: &Loaded, world: World) -> Result<data::Prepared, CliError> {
    let Loaded { model, cfg, data_spec, spec_dir, available, .. } = loaded;
    let io = cfg.io(model);
    let mut prepared = data::load(data_spec, spec_dir, &io, cfg.seed, args.limit)?;
    // data.sample_weight times training.class_weight: what fit weighs each training sample by.
    let classes = prepared.prep.outputs.first().and_then(|o| o.classes.as_deref());
    prepared.train.weights = crate::train::weights::resolve(cfg, classes, &prepared.train)
        .map_err(|e| CliError::invalid(e.message).with_hint(e.hint.unwrap_or_else(|| "check `training.class_weight` against the training data".into())))?;
    let missing = prepared.missing_classes(&io);
    if !missing.is_empty() && !args.allow_missing_classes {
        let message = missing.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("\n");
        return Err(CliError::invalid(message)
            .with_hint("give the training split every class (check the data, `--limit` and the splits), or pass --allow-missing-classes to train anyway"));
    }
    let warn_text = |message: String, hint: Option<String>| {
        if world.leads() {
            warn_text(message, hint);
        }
    };
    for m in &missing {
        warn_text(m.to_string(), Some("the model can't learn a class it never sees: predict calls the units of the missing ones `unseen_<unit>`".into()));
    }
    let zero_infinity = cfg.losses.iter().any(|l| matches!(l, Loss::Ctc { zero_infinity: true, .. }));
    for (out, over, need, steps) in crate::train::ctc::too_long(&io, &prepared.train) {
        let message =
            format!("{over} of {} training targets need more time steps than output '{out}' has ({steps}); the longest needs {need}", prepared.train.n);
        if zero_infinity {
            warn_text(format!("{message} (`zero_infinity: true`: their loss and gradient count as 0)"), None);
        } else {
            let hint = "shorten the downsampling along the time axis, or set `training.zero_infinity: true` to skip them (their ctc loss is infinite)";
            warn_text(message, Some(hint.into()));
        }
    }
    let samples = [Some(&prepared.train), prepared.validation.as_ref(), prepared.test.as_ref()].into_iter().flatten().map(|s| s.n as u64).sum();
    check_memory(&memory::estimate(model, cfg, samples), cfg.optimizer.name, available.and(memory::available()), true)?;
    Ok(prepared)
}

/// Reads the checkpoint to resume from and checks that it belongs to this
/// spec and `--limit`, before any data is loaded.
fn read_checkpoint(dir: &Path, key: &str, limit: Option<usize>) -> Result<crate::checkpoint::Checkpoint, CliError> {
    let path = dir.join(crate::checkpoint::FILE);
    let ck = crate::checkpoint::Checkpoint::read(&path).map_err(|e| {
        use crate::checkpoint::CheckpointError as E;
        let hint = match &e {
            E::Io { .. } => Some("--resume takes a run folder that holds a checkpoint.safetensors"),
            E::Malformed { .. } => Some("it is damaged or was not written by nnrun: start a new run with --out DIR"),
            E::TooNew { .. } => None,
        };
        let e = CliError::from(e).prefixed("cannot resume: ");
        match hint {
            Some(h) => e.with_hint(h),
            None => e,
        }
    })?;
    if ck.spec != key {
        return Err(CliError::invalid(format!("cannot resume: {} belongs to a different spec (only training.epochs may change between runs)", path.display()))
            .with_hint("pass the same spec and --set/--batch-size/--seed flags as the run being resumed, or start a new run with --out"));
    }
    if ck.limit != limit {
        return Err(CliError::invalid(format!(
            "cannot resume: {} was trained with --limit {}, this run has {}",
            path.display(),
            fmt_limit(ck.limit),
            fmt_limit(limit)
        )));
    }
    Ok(ck)
}

/// What the fit thread needs from the checks before it.
struct Job<'a> {
    args: &'a Args,
    spec_name: &'a str,
    root: &'a yaml::Node,
    cfg: &'a config::TrainConfig,
    data_spec: &'a crate::spec::data::DataSpec,
    spec_dir: &'a Path,
    out_dir: &'a Path,
    key: String,
    world: World<'a>,
}

impl Job<'_> {
    /// Builds the model, fits it and writes the run folder.
    fn run(
        self,
        model: graph::Model,
        device: &candle_core::Device,
        prepared: data::Prepared,
        checkpoint: Option<crate::checkpoint::Checkpoint>,
    ) -> Result<(), CliError> {
        let (args, cfg, out_dir, world) = (self.args, self.cfg, self.out_dir, self.world);
        // Rank 0 alone speaks: the other processes of a data-parallel run
        // print nothing but their errors.
        let say = |text: std::fmt::Arguments| {
            if world.leads() {
                say(text);
            }
        };
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let net = Net::new(model, device, DType::F32, &mut rng).map_err(|e| CliError::invalid(format!("building the model: {e}")))?;
        let resume = match &checkpoint {
            None => fit::Resume::default(),
            Some(ck) => {
                let r =
                    ck.restore(&net).map_err(|e| CliError::invalid(format!("cannot resume from {}: {e}", out_dir.join(crate::checkpoint::FILE).display())))?;
                say(format_args!("Resuming {} after epoch {}", out_dir.display(), ck.epoch));
                r
            }
        };
        say(format_args!(
            "Training '{}': {} train samples{}{}, {} epochs, batch size {}{}",
            self.spec_name,
            prepared.train.n,
            prepared.validation.as_ref().map_or(String::new(), |v| format!(", {} validation", v.n)),
            prepared.test.as_ref().map_or(String::new(), |t| format!(", {} test", t.n)),
            cfg.epochs,
            cfg.batch_size,
            if cfg.mixed_bfloat16 { ", mixed_bfloat16 (bf16 products, f32 weights)" } else { "" }
        ));
        if let Some(comm) = world.comm {
            let threads = std::env::var("RAYON_NUM_THREADS").ok().and_then(|t| t.parse::<usize>().ok()).unwrap_or(1);
            let s = |n: usize| if n == 1 { "" } else { "s" };
            say(format_args!(
                "Data-parallel over {} processes ({}): each computes {} of every batch's rows, {threads} thread{} each",
                comm.size(),
                world.library,
                match comm.size() {
                    2 => "half".to_string(),
                    n => format!("1/{n}"),
                },
                s(threads)
            ));
        }
        let mut console = progress::Console::new(std::io::stdout().is_terminal());
        let mut json = progress::JsonLines;
        let mut silent = progress::Silent;
        let reporter: &mut dyn progress::Progress = match args.log_format {
            _ if !world.leads() => &mut silent,
            progress::LogFormat::Text => &mut console,
            progress::LogFormat::Json => &mut json,
        };
        // A second Ctrl-C while the handler is already installed (tests call run
        // in one process only through the binary) is harmless; ignore failures.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
        let mut opts = fit::FitOptions { max_steps: args.max_steps, interrupt: Some(&INTERRUPTED), ..Default::default() };
        if let Some(comm) = world.comm {
            opts.shard = fit::Shard { rank: comm.rank(), size: comm.size() };
            opts.callbacks.push(Box::new(distributed::DataParallel::new(comm)));
        }
        let data_sha256 = data::file_digests(self.data_spec, self.spec_dir);
        let meta = artifact::ModelMeta { root: self.root, prep: &prepared.prep, seed: cfg.seed, limit: args.limit, spec_dir: self.spec_dir, data_sha256 };
        let mut files = RunFiles { dir: out_dir, key: self.key, limit: args.limit, model: meta, pending: None, written: None };
        let mut none = fit::NoHooks;
        let hooks: &mut dyn fit::Hooks = if world.leads() { &mut files } else { &mut none };
        let outcome = fit::fit(&net, cfg, &prepared.train, prepared.validation.as_ref(), opts, resume, hooks, reporter);
        // Whatever happened, the last completed epoch stays resumable.
        files.flush().map_err(|e| CliError::io(e.to_string()))?;
        let history = match outcome {
            Ok(o) if o.interrupted => {
                let message = if out_dir.join(crate::checkpoint::FILE).is_file() {
                    format!("interrupted: resume with nnrun train {} --resume {}", args.spec.display(), out_dir.display())
                } else {
                    "interrupted before the first epoch ended: nothing to resume".to_string()
                };
                return Err(CliError::Interrupted(message));
            }
            Ok(o) => o.history,
            Err(e) => {
                let ctc = cfg.losses.iter().any(|l| matches!(l, Loss::Ctc { .. }));
                let hint = match &e {
                    fit::TrainError::Diverged { value, .. } if value.is_infinite() && ctc => Some(
                        "a ctc target longer than the output's time axis allows has an infinite loss; see the warning above, or set `training.zero_infinity: true`",
                    ),
                    fit::TrainError::Diverged { .. } => {
                        Some("lower the learning rate (--set training.optimizer.learning_rate=...), or normalize the inputs (data.normalize: standard)")
                    }
                    _ => None,
                };
                let e = CliError::from(e);
                return Err(match hint {
                    Some(h) => e.with_hint(h),
                    None => e,
                });
            }
        };
        if !world.leads() {
            // Rank 0 evaluates the test split and writes the run folder.
            return Ok(());
        }
        if history.is_empty() && args.log_format == progress::LogFormat::Text {
            say(format_args!("No training step taken (--max-steps 0): the model keeps its initial weights"));
        }
        let test = prepared.test.as_ref().map(|t| fit::evaluate(&net, cfg, t, "test_", memory::eval_batch(cfg.batch_size), &mut rng)).transpose();
        let test = test.map_err(|e| CliError::invalid(format!("evaluating on the test split: {e}")))?;
        if let Some(t) = &test {
            let text: Vec<String> = t.iter().map(|(k, v)| format!("{k}: {v:.4}")).collect();
            match args.log_format {
                progress::LogFormat::Text => say(format_args!("Test - {}", text.join(" - "))),
                progress::LogFormat::Json => {
                    let obj: serde_json::Map<String, serde_json::Value> =
                        t.iter().map(|(k, v)| (k.clone(), (*v).into())).chain([("event".to_string(), "test".into())]).collect();
                    say(format_args!("{}", serde_json::Value::Object(obj)));
                }
            }
        }
        artifact::write_run(out_dir, &net, &files.model, &history, test.as_deref()).map_err(|e| CliError::write(out_dir, e))?;
        if args.log_format == progress::LogFormat::Text {
            say(format_args!("Saved {}", out_dir.display()));
        }
        Ok(())
    }
}

fn fmt_limit(l: Option<usize>) -> String {
    l.map_or("none".into(), |n| n.to_string())
}

/// `mixed_bfloat16` runs on nnrun's CPU kernels, through AVX512_BF16: refused
/// up front elsewhere, rather than silently training in float32.
fn check_mixed_bfloat16(device: &candle_core::Device) -> Result<(), CliError> {
    let hint = "remove `training.mixed_precision` (or set it to float32) to train in float32 here";
    if !device.is_cpu() {
        return Err(CliError::usage("`training.mixed_precision: mixed_bfloat16` runs on the CPU only (nnrun's bf16 kernels)").with_hint(hint));
    }
    if !crate::kernels::cpu::bf16() {
        let why = match (crate::kernels::cpu::detected(), crate::kernels::cpu::level()) {
            (d, l) if d != l => format!("NNRUN_ISA={} leaves the {} kernels off", l.name(), d.name()),
            _ => "this CPU has no AVX512_BF16".to_string(),
        };
        return Err(CliError::usage(format!("`training.mixed_precision: mixed_bfloat16` needs a CPU with AVX512_BF16 (vdpbf16ps): {why}")).with_hint(hint));
    }
    crate::kernels::cpu::set_mixed_bf16(true);
    Ok(())
}
