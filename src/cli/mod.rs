//! Command-line interface: one file per subcommand. Each returns
//! `Result<(), CliError>`; `main` renders the error once and exits with its code.

pub mod error;
pub mod evaluate;
pub mod inspect;
pub mod plot;
pub mod predict;
pub mod train;
pub mod validate;

use crate::diag::{Diagnostic, Style};
use clap::{Parser, Subcommand};
pub use error::{CliError, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_IO, EXIT_OK};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "nnrun", version, about = "Keras-style YAML model specs: validate and train neural networks")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check specs statically and print a Keras-style model summary
    Validate(validate::Args),
    /// Train a spec on its data and write the run directory
    Train(train::Args),
    /// Predict with a trained model file on new CSV or IDX data
    Predict(predict::Args),
    /// Loss, metrics and a confusion matrix of a trained model on labelled data
    Evaluate(evaluate::Args),
    /// Show what a model file holds: summary, spec, preprocessing, metrics
    Inspect(inspect::Args),
    /// Draw the training curves of run directories (history.csv) as one SVG chart
    Plot(plot::Args),
}

/// Parses arguments, runs the subcommand, and renders its error, if any:
/// the only place an error reaches stderr.
pub fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let version: &'static str = Box::leak(version().into_boxed_str());
    let matches = Cli::command().version(version).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Validate(args) => validate::run(&args),
        // Commands that compute set up the CPU kernels first; validate doesn't.
        Command::Train(args) => {
            // Processes of a data-parallel run on one machine share its cores.
            let local = crate::train::distributed::local_processes().unwrap_or(1);
            tune_cpu(args.threads.or_else(|| (local > 1).then(|| (candle_core::utils::get_num_threads() / local).max(1))));
            return train::main(&args);
        }
        Command::Predict(args) => {
            tune_cpu(None);
            predict::run(&args)
        }
        Command::Evaluate(args) => {
            tune_cpu(None);
            evaluate::run(&args)
        }
        Command::Inspect(args) => inspect::run(&args),
        Command::Plot(args) => plot::run(&args),
    };
    finish(result)
}

/// `nnrun --version`: the version, and whether data-parallel training over
/// MPI is compiled in, on which library.
fn version() -> String {
    #[cfg(feature = "mpi")]
    let mpi = format!("MPI support: {}", crate::train::mpi::library());
    #[cfg(not(feature = "mpi"))]
    let mpi = "MPI support: not compiled in (build with --features mpi)".to_string();
    format!("{} ({mpi})", env!("CARGO_PKG_VERSION"))
}

/// Renders a command's error, if any, and gives its exit code; with
/// NNRUN_PROFILE=gemm, prints the matrix products first.
pub(crate) fn finish(result: Result<(), CliError>) -> ExitCode {
    if crate::kernels::stats::enabled() {
        eprint!("NNRUN_PROFILE=gemm: matrix products by shape ({})\n{}", crate::kernels::cpu::describe(), crate::kernels::stats::report());
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("{}", e.render(stderr_style()));
            ExitCode::from(e.exit_code())
        }
    }
}

fn stderr_style() -> Style {
    Style { color: color_for(&std::io::stderr()) }
}

/// Prints a warning as it happens, rendered like validate's: with the spec's
/// `file:line:col` and a caret where it has a position in `text`, as coming
/// from the command line where one of `flags` set the value, plain
/// `warning: ...` and `hint: ...` otherwise. The one way warnings are shown.
pub fn warn(d: &Diagnostic, file: &str, lines: &crate::diag::SourceLines, flags: &[error::Flag]) {
    eprint!("{}", error::render_in(d, file, lines, flags, stderr_style()));
}

/// A warning without a position in any spec.
pub fn warn_text(message: impl Into<String>, hint: Option<String>) {
    warn(&Diagnostic::warning(message, Default::default(), "").with_hint_opt(hint), "", &crate::diag::SourceLines::new(""), &[]);
}

/// Tells on stderr how many values of each column training never saw
/// (they went to the out-of-vocabulary slot, or their tokens did).
pub fn report_unseen(file: &str, unseen: &[(String, usize)]) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    for (column, n) in unseen {
        let s = if *n == 1 { "" } else { "s" };
        let _ = writeln!(err, "note: {file}: column '{column}': {n} value{s} never seen in training, encoded as out-of-vocabulary");
    }
}

/// Writes to stdout. A reader that went away (`| head`) ends the output
/// quietly; any other failure is an I/O error.
pub fn print_out(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::io(format!("cannot write to stdout: {e}"))),
        _ => Ok(()),
    }
}

/// The stack a thread running `model` needs, or an error past the depth
/// nnrun supports (`train::memory::MAX_TRAIN_DEPTH`). `what` names the
/// model in the message ("the model", "the model in FILE").
pub(crate) fn model_stack(model: &crate::graph::Model, what: &str) -> Result<usize, CliError> {
    use crate::train::memory;
    let depth = memory::depth(model);
    memory::stack_bytes(depth).ok_or_else(|| {
        CliError::invalid(format!(
            "{what} is {depth} layers deep (counting each time step of a recurrent layer); nnrun supports at most {} (candle's backward pass and the drop of a graph recurse once per operation)",
            memory::MAX_TRAIN_DEPTH
        ))
        .with_hint("use fewer layers or shorter sequences")
    })
}

/// Refuses an inference pass (predict, evaluate) of `batch` samples whose
/// values cannot fit in the memory left, before the first forward pass
/// allocates them. Called once the model is restored: its weights are
/// already in memory (and out of what is available), so only the pass's
/// values are compared. `doing` names the command ("predicting"). Only the
/// CPU's memory is checked.
pub(crate) fn check_inference_memory(net: &crate::model::Net, batch: usize, doing: &str) -> Result<(), CliError> {
    use crate::train::memory;
    let available = if net.device.is_cpu() { memory::available() } else { None };
    inference_fits(&memory::inference(&net.graph, batch as u64), available, doing)
}

fn inference_fits(e: &crate::train::memory::Estimate, available: Option<u64>, doing: &str) -> Result<(), CliError> {
    let Some(available) = available.filter(|&a| e.activations > a) else { return Ok(()) };
    let m = |b: u64| crate::summary::memory_size(usize::try_from(b).unwrap_or(usize::MAX));
    let largest = e.largest.as_ref().map_or(String::new(), |(name, b)| format!("; {name} alone needs {}", m(*b)));
    let fits = crate::train::memory::batch_that_fits(e.per_sample, 0, available);
    let hint = if fits >= 1 {
        format!("lower the batch size: --batch-size {fits} is the most that fits in what is available{largest}")
    } else {
        format!("not even one sample fits: the model's layers are too large for this machine's memory{largest}")
    };
    Err(CliError::invalid(format!(
        "{doing} needs about {} of memory for a batch of {} samples, and {} is available: every layer's output for the batch ({} a sample), beside the {} of weights already loaded",
        m(e.activations),
        e.batch,
        m(available),
        m(e.per_sample),
        m(e.weights),
    ))
    .with_hint(hint))
}

/// Runs `f` on a thread with a `stack`-byte stack (from `model_stack`):
/// candle's backward pass, and the drop of a long chain of ops, recurse once
/// per operation, and the main thread's 8 MiB end at about 10,000 layers.
pub(crate) fn on_stack<T: Send, E: From<CliError> + Send>(stack: usize, f: impl FnOnce() -> Result<T, E> + Send) -> Result<T, E> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new().name("model".into()).stack_size(stack).spawn_scoped(scope, f);
        let thread = spawned.map_err(|e| {
            let size = crate::summary::memory_size(stack);
            CliError::invalid(format!("cannot start a thread with a {size} stack for the model: {e}")).with_hint("use fewer layers or shorter sequences")
        })?;
        thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// `PATH: valid`, `PATH: invalid, 2 errors and 1 warning`, ...
/// Diagnostics shown in text form per spec; the rest are counted. A spec
/// with 100,000 broken layers is fixed from the first few, and rendering
/// each against a megabyte line would take minutes. JSON lists all.
pub(crate) const MAX_SHOWN: usize = 100;

/// The line that stands for the diagnostics past `MAX_SHOWN`.
pub(crate) fn not_shown(total: usize) -> Option<String> {
    (total > MAX_SHOWN).then(|| format!("... and {} more not shown (`nnrun validate --format json` lists them all)\n", total - MAX_SHOWN))
}

pub(crate) fn verdict(path: &str, errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| if n == 1 { format!("1 {w}") } else { format!("{n} {w}s") };
    match (errors, warnings) {
        (0, 0) => format!("{path}: valid"),
        (0, w) => format!("{path}: valid, with {}", plural(w, "warning")),
        (e, 0) => format!("{path}: invalid, {}", plural(e, "error")),
        (e, w) => format!("{path}: invalid, {} and {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// Where a command computes: `--device cpu` (default) or `--device cuda`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq)]
pub enum DeviceArg {
    #[default]
    Cpu,
    /// The first CUDA GPU (needs a build with `--features cuda`)
    Cuda,
}

impl DeviceArg {
    /// The candle device, or an error saying how to get one (exit 2).
    pub fn open(self) -> Result<candle_core::Device, CliError> {
        match self {
            DeviceArg::Cpu => Ok(candle_core::Device::Cpu),
            DeviceArg::Cuda if !cfg!(feature = "cuda") => Err(CliError::usage(
                "--device cuda: this nnrun was built without CUDA support; rebuild with `cargo build --release --features cuda` (needs the CUDA toolkit)",
            )),
            DeviceArg::Cuda => candle_core::Device::new_cuda(0).map_err(|e| CliError::io(format!("--device cuda: cannot open GPU 0: {e}"))),
        }
    }
}

/// Threads and allocator settings for training speed, before any kernel runs
/// (they read these once). An explicit environment variable always wins.
fn tune_cpu(threads: Option<usize>) {
    // candle re-reads /proc/cpuinfo on every matmul unless RAYON_NUM_THREADS
    // is set; its barrier pool spins a second thread after every large
    // element-wise op, which on few cores costs more than it saves.
    let set = |key: &str, value: String, force: bool| {
        if force || std::env::var_os(key).is_none() {
            // SAFETY: called at start-up, before any other thread exists.
            unsafe { std::env::set_var(key, value) };
        }
    };
    set("RAYON_NUM_THREADS", threads.unwrap_or_else(candle_core::utils::get_num_threads).to_string(), threads.is_some());
    set("CANDLE_NUM_THREADS", "1".into(), false);
    // glibc maps every block over 128 KiB fresh and returns freed memory at
    // once, so each training step page-faults its tensors in again.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        // SAFETY: plain integer settings of the C allocator, set before use.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, 256 << 20);
        }
    }
}

/// Colour only for a terminal, and never when NO_COLOR is set.
pub fn color_for(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::memory::Estimate;

    #[test]
    fn inference_is_refused_past_the_available_memory_with_a_batch_that_fits() {
        let e = Estimate { weights: 52, activations: 256 << 20, batch: 256, per_sample: 1 << 20, ..Default::default() };
        assert!(inference_fits(&e, None, "predicting").is_ok(), "unknown memory: not checked");
        assert!(inference_fits(&e, Some(256 << 20), "predicting").is_ok());
        let err = inference_fits(&e, Some(10 << 20), "predicting").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_INVALID);
        assert_eq!(
            err.render(Style::default()),
            "error: predicting needs about 256.00 MB of memory for a batch of 256 samples, and 10.00 MB is available: every layer's output for the batch (1.00 MB a sample), beside the 52.00 B of weights already loaded\nhint: lower the batch size: --batch-size 10 is the most that fits in what is available\n"
        );
        let err = inference_fits(&e, Some(1000), "evaluating").unwrap_err().render(Style::default());
        assert!(err.contains("hint: not even one sample fits"), "{err}");
    }
}
