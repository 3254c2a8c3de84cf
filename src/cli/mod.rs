//! Command-line interface: one file per subcommand.

pub mod evaluate;
pub mod inspect;
pub mod plot;
pub mod predict;
pub mod train;
pub mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit codes: 0 ok, 1 invalid spec or data, 2 usage or I/O error.
pub const EXIT_OK: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_IO: u8 = 2;

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

/// Parses arguments and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Train(args) => train::run(&args),
        Command::Predict(args) => predict::run(&args),
        Command::Evaluate(args) => evaluate::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Plot(args) => plot::run(&args),
    };
    ExitCode::from(code)
}

/// Colour only for a terminal, and never when NO_COLOR is set.
pub fn color_for(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
