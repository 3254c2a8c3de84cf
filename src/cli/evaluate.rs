//! `nnrun evaluate` (being written).

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trained model file (runs/<name>/model.safetensors)
    #[arg(value_name = "MODEL")]
    pub model: std::path::PathBuf,
}

pub fn run(_args: &Args) -> u8 {
    eprintln!("error: not implemented yet");
    super::EXIT_IO
}
