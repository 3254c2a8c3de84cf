//! Reading files nnrun did not write: specs, model files, checkpoints, data.
//!
//! Every such read goes through here, so no loader can be made to read an
//! endless device, block on a FIFO nobody writes, or allocate what a file's
//! size (or lack of one) suggests. Only regular files are read, the size is
//! checked against a limit before any allocation, and the read itself stops
//! one byte past the limit in case the file grows meanwhile.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;

/// The largest spec file: about 300,000 layers written one per line.
pub const MAX_SPEC_BYTES: u64 = 16 << 20;
/// The largest history.csv `plot` reads (a million epochs of a dozen values).
pub const MAX_HISTORY_BYTES: u64 = 64 << 20;
/// The longest line (CSV record) a streamed CSV reader accepts.
pub const MAX_LINE_BYTES: u64 = 16 << 20;
/// The largest model file: a billion float32 weights, far past what nnrun trains.
pub const MAX_MODEL_BYTES: u64 = 4 << 30;
/// The largest checkpoint: the weights, up to three optimizer slots per
/// weight and EarlyStopping's best weights, for the largest model file.
pub const MAX_CHECKPOINT_BYTES: u64 = 5 * MAX_MODEL_BYTES;
/// The most values an IDX file read whole may announce (4 GiB as float32):
/// a compressed file can't be made to inflate past it.
pub const MAX_IDX_VALUES: u64 = 1 << 30;

/// Why a file could not be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("cannot read {file}: it is {kind}, not a regular file (copy it to a file first)")]
    NotRegular { file: String, kind: &'static str },
    #[error("cannot read {file}: it holds {size} bytes, more than the {limit} bytes a {what} may have")]
    TooLarge { file: String, what: &'static str, size: u64, limit: u64 },
    #[error("cannot read {file}: {what} is not UTF-8 text (byte {at})")]
    NotUtf8 { file: String, what: &'static str, at: usize },
}

impl ReadError {
    /// The file could not be opened or read at all (exit code 2), as opposed
    /// to a file that was read and is not acceptable.
    pub fn is_io(&self) -> bool {
        matches!(self, ReadError::Io { .. } | ReadError::NotRegular { .. })
    }
}

/// What a path is, for "it is a directory, not a regular file".
fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed).
/// The type is checked before opening, so a FIFO is refused instead of
/// blocking in `open`, and again on the open file, in case it was swapped.
/// Returns the file and its size.
pub fn open_regular(path: &Path) -> Result<(File, u64), ReadError> {
    let file = || path.display().to_string();
    let io = |source| ReadError::Io { file: file(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular { file: file(), kind: kind_of(&meta.file_type()) });
    }
    let f = File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular { file: file(), kind: kind_of(&meta.file_type()) });
    }
    Ok((f, meta.len()))
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let (f, size) = open_regular(path)?;
    let file = || path.display().to_string();
    if size > limit {
        return Err(ReadError::TooLarge { file: file(), what, size, limit });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    // One byte more than allowed tells a file that grew past the limit.
    f.take(limit + 1).read_to_end(&mut bytes).map_err(|source| ReadError::Io { file: file(), source })?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { file: file(), what, size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

/// Reads a whole regular file of at most `limit` bytes as UTF-8 text.
pub fn read_text_bounded(path: &Path, limit: u64, what: &'static str) -> Result<String, ReadError> {
    let bytes = read_bounded(path, limit, what)?;
    String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 { file: path.display().to_string(), what, at: e.utf8_error().valid_up_to() })
}

/// A reader that fails once more than `limit` bytes pass without a newline,
/// so a CSV reader (which buffers a whole record) can't be made to buffer an
/// endless line: `/dev/zero`, a binary file, a missing newline in a huge file.
/// The error names the line.
pub struct LineLimit<R> {
    inner: R,
    limit: u64,
    run: u64,
    line: u64,
}

impl<R: BufRead> LineLimit<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        LineLimit { inner, limit, run: 0, line: 1 }
    }
}

impl<R: BufRead> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.run = 0;
                self.line += 1;
            } else {
                self.run += 1;
                if self.run > self.limit {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("line {} is longer than {} bytes (is this a text file?)", self.line, self.limit),
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("nnrun-io-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn devices_directories_and_fifos_are_refused_without_blocking() {
        let e = read_bounded(Path::new("/dev/zero"), 1 << 20, "spec").unwrap_err();
        assert_eq!(e.to_string(), "cannot read /dev/zero: it is a character device, not a regular file (copy it to a file first)");
        assert!(e.is_io());
        let dir = std::env::temp_dir();
        let e = read_bounded(&dir, 1 << 20, "spec").unwrap_err();
        assert!(e.to_string().contains("it is a directory"), "{e}");
        let fifo = dir.join(format!("nnrun-io-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
        if made {
            // Opening a FIFO nobody writes would block forever: it must not be opened.
            let e = read_bounded(&fifo, 1 << 20, "spec").unwrap_err();
            assert!(e.to_string().contains("a FIFO (named pipe)"), "{e}");
            std::fs::remove_file(&fifo).unwrap();
        }
    }

    #[test]
    fn files_over_the_limit_are_refused_before_reading() {
        let p = tmp("big", &[b'a'; 100]);
        let e = read_bounded(&p, 99, "spec").unwrap_err();
        assert!(e.to_string().ends_with("it holds 100 bytes, more than the 99 bytes a spec may have"), "{e}");
        assert!(!e.is_io());
        assert_eq!(read_bounded(&p, 100, "spec").unwrap().len(), 100);
        let missing = read_bounded(Path::new("/no/such/file"), 10, "spec").unwrap_err();
        assert!(missing.to_string().starts_with("cannot read /no/such/file: "), "{missing}");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn text_must_be_utf8() {
        let p = tmp("latin1", b"name: caf\xe9\n");
        let e = read_text_bounded(&p, 100, "spec").unwrap_err();
        assert!(e.to_string().ends_with("spec is not UTF-8 text (byte 9)"), "{e}");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn endless_lines_stop_at_the_limit() {
        let mut r = LineLimit::new(std::io::BufReader::new(std::io::repeat(0)), 1000);
        let mut sink = Vec::new();
        let e = r.read_to_end(&mut sink).unwrap_err();
        assert_eq!(e.to_string(), "line 1 is longer than 1000 bytes (is this a text file?)");
        assert!(sink.len() < 1 << 16, "stopped early: {}", sink.len());
        let mut ok = LineLimit::new(&b"ab\ncd\n"[..], 2);
        let mut out = String::new();
        ok.read_to_string(&mut out).unwrap();
        assert_eq!(out, "ab\ncd\n");
    }
}
