//! `nnrun plot`: training curves of one or more run directories as one SVG.

use super::{CliError, print_out};
use crate::{artifact, plot};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run directories (runs/<name>) holding a history.csv; several are drawn together
    #[arg(value_name = "RUN_DIR", required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write the SVG [default: RUN_DIR/history.svg for one run, plot.svg for several]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<(), CliError> {
    let mut runs = Vec::new();
    for dir in &args.runs {
        let file = dir.join("history.csv");
        let text = crate::io::read_text_bounded(&file, crate::io::MAX_HISTORY_BYTES, "history.csv")?;
        let h = plot::History::parse(&text).map_err(|e| CliError::invalid(format!("{}: {e}", file.display())))?;
        runs.push((label(dir), h));
    }
    let svg = plot::render(&runs).map_err(|e| CliError::invalid(e.to_string()))?;
    let out = match (&args.output, args.runs.as_slice()) {
        (Some(o), _) => o.clone(),
        (None, [one]) => one.join("history.svg"),
        (None, _) => PathBuf::from("plot.svg"),
    };
    artifact::write_atomic(&out, svg.as_bytes()).map_err(|e| CliError::write(&out, e))?;
    print_out(&format!("Wrote {}\n", out.display()))
}

/// The run's directory name (`runs/mlp/` -> `mlp`), which is how runs are named.
fn label(dir: &Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    // `absolute` keeps `..`/`.` components; file_name of those is None, so fall back.
    dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_directory_names() {
        assert_eq!(label(Path::new("runs/mlp")), "mlp");
        assert_eq!(label(Path::new("runs/mlp/")), "mlp");
    }
}
