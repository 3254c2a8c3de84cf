//! LeCun IDX files (MNIST's format), raw or gzip-compressed.
//!
//! Layout: two zero bytes, the element type, the number of dimensions, one
//! big-endian u32 per dimension, then the elements, big-endian, row-major.
//! The header is checked against the data actually present before anything
//! large is allocated, so a damaged file is an error, never a panic.

use super::prep::{Column, Table, Values};
use super::{DataError, DataFile, ModelIo, SourceKind};
use crate::spec::Named;
use flate2::read::GzDecoder;
use std::io::Read;

/// An IDX array: dims (the first is the sample count) and values as f32.
#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// Bytes per element of each IDX type code.
fn elem_size(code: u8) -> Option<usize> {
    match code {
        0x08 | 0x09 => Some(1),
        0x0B => Some(2),
        0x0C | 0x0D => Some(4),
        0x0E => Some(8),
        _ => None,
    }
}

/// Reads an IDX file; gzip is recognised by its magic bytes, not the name.
pub fn read(path: &std::path::Path, file: &str) -> Result<Idx, DataError> {
    all(open(path, file)?)
}

/// A read error: corrupt compressed data is the contents' fault (exit 1),
/// anything else the file system's (exit 2).
fn io_err(file: &str) -> impl Fn(std::io::Error) -> DataError + '_ {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    move |e| match e.kind() {
        InvalidData | InvalidInput | UnexpectedEof => DataError::file(file, format!("cannot read: {e}")),
        _ => DataError::Unreadable { file: file.to_string(), msg: format!("cannot read: {e}") },
    }
}

/// Opens an IDX file (raw or gzip) for reading a batch of samples at a time.
/// Only regular files; a raw file's header must announce exactly the bytes
/// that follow it, and a gzip file inflates to at most what its header
/// announces.
pub fn open(path: &std::path::Path, file: &str) -> Result<Stream<Box<dyn Read>>, DataError> {
    let (mut f, size) = crate::io::open_regular(path).map_err(|e| match e {
        crate::io::ReadError::Io { source, .. } => io_err(file)(source),
        e => DataError::Read(e),
    })?;
    let mut magic = [0u8; 2];
    let got = read_full(&mut f, &mut magic).map_err(io_err(file))?;
    let head = std::io::Cursor::new(magic[..got].to_vec());
    if got == 2 && magic == [0x1f, 0x8b] {
        return Stream::new(Box::new(GzDecoder::new(head.chain(std::io::BufReader::new(f)))), file);
    }
    let s = Stream::new(Box::new(std::io::BufReader::new(head.chain(f))) as Box<dyn Read>, file)?;
    // The header is checked against the file's size before any data is read.
    let after = size.saturating_sub(4 + 4 * s.dims.len() as u64);
    if after != s.bytes as u64 {
        let msg = if after < s.bytes as u64 {
            format!("truncated: the header announces {:?} ({} bytes of data) but the file holds {after} bytes after the header", s.dims, s.bytes)
        } else {
            format!("the file holds more data than its header {:?} announces ({} bytes); is the header wrong?", s.dims, s.bytes)
        };
        return Err(DataError::file(file, msg));
    }
    Ok(s)
}

/// Parses an IDX stream.
pub fn parse(r: impl Read, file: &str) -> Result<Idx, DataError> {
    all(Stream::new(r, file)?)
}

fn all<R: Read>(mut s: Stream<R>) -> Result<Idx, DataError> {
    let (_, data) = s.next(s.dims[0])?;
    s.finish()?;
    Ok(Idx { dims: s.dims, data })
}

/// An IDX file read sample by sample: memory follows the batch, not the file.
pub struct Stream<R> {
    r: R,
    file: String,
    code: u8,
    size: usize,
    /// As in the header; the first is the sample count.
    pub dims: Vec<usize>,
    /// Values per sample.
    pub width: usize,
    left: usize,
    /// Data bytes read so far, and announced in all.
    consumed: usize,
    bytes: usize,
}

impl<R: Read> Stream<R> {
    /// Reads and checks the header.
    pub fn new(mut r: R, file: &str) -> Result<Self, DataError> {
        let err = |msg: String| DataError::file(file, msg);
        let io_err = io_err(file);
        let mut magic = [0u8; 4];
        let n = read_full(&mut r, &mut magic).map_err(&io_err)?;
        if n < 4 || magic[0] != 0 || magic[1] != 0 {
            return Err(err(format!(
                "not an IDX file: it starts with {:02x?}, but IDX files start with 00 00, the type and the number of dimensions",
                &magic[..n]
            )));
        }
        let Some(size) = elem_size(magic[2]) else {
            return Err(err(format!("unknown IDX element type 0x{:02X} (known: 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)", magic[2])));
        };
        let ndims = magic[3] as usize;
        if ndims == 0 {
            return Err(err("the IDX header has 0 dimensions; it needs at least the sample count".into()));
        }
        let mut raw_dims = vec![0u8; 4 * ndims];
        if read_full(&mut r, &mut raw_dims).map_err(&io_err)? < raw_dims.len() {
            return Err(err(format!("truncated: the header announces {ndims} dimensions but the file ends inside them")));
        }
        let dims: Vec<usize> = raw_dims.chunks(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
        let product = |d: &[usize]| d.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).filter(|&v| v <= crate::io::MAX_IDX_VALUES);
        // The sample's own size too: with 0 samples the total is 0 whatever
        // the other dimensions say.
        let values = product(&dims).zip(product(&dims[1..])).map(|(v, _)| v);
        let Some(values) = values else {
            return Err(err(format!(
                "the header's dimensions {dims:?} announce more than {} values (in all, or in one sample), more than nnrun reads from one IDX file",
                crate::io::MAX_IDX_VALUES
            )));
        };
        // At most 2^30 values of 8 bytes: no overflow, on any target nnrun builds for.
        let bytes = values as usize * size;
        // Checked above: at most MAX_IDX_VALUES.
        let width = dims[1..].iter().product();
        Ok(Stream { r, file: file.to_string(), code: magic[2], size, left: dims[0], dims, width, consumed: 0, bytes })
    }

    /// The next `max` samples (fewer at the end): their count and values.
    pub fn next(&mut self, max: usize) -> Result<(usize, Vec<f32>), DataError> {
        let n = max.min(self.left);
        let want = n * self.width * self.size;
        // Allocation follows the data actually present, whatever the header claims.
        let mut data = Vec::with_capacity(want.min(1 << 24));
        (&mut self.r).take(want as u64).read_to_end(&mut data).map_err(io_err(&self.file))?;
        if data.len() < want {
            return Err(DataError::file(
                &self.file,
                format!(
                    "truncated: the header announces {:?} ({} bytes of data) but the file holds {} bytes after the header",
                    self.dims,
                    self.bytes,
                    self.consumed + data.len()
                ),
            ));
        }
        let first = self.dims[0] - self.left;
        self.consumed += want;
        self.left -= n;
        let code = self.code;
        let be = |c: &[u8]| -> f32 {
            match code {
                0x08 => c[0] as f32,
                0x09 => c[0] as i8 as f32,
                0x0B => i16::from_be_bytes([c[0], c[1]]) as f32,
                0x0C => i32::from_be_bytes([c[0], c[1], c[2], c[3]]) as f32,
                0x0D => f32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                _ => f64::from_be_bytes(c.try_into().expect("8 bytes")) as f32,
            }
        };
        let values: Vec<f32> = data.chunks(self.size).map(be).collect();
        // Float files may hold NaN or infinity (or f64 values past float32's range).
        if matches!(code, 0x0D | 0x0E)
            && let Some(k) = values.iter().position(|v| !v.is_finite())
        {
            let w = self.width.max(1);
            return Err(DataError::file(
                &self.file,
                format!(
                    "record {}: value {} of the record is {}, not a finite number; nnrun needs finite values (IDX has no missing values)",
                    first + k / w,
                    k % w,
                    values[k]
                ),
            ));
        }
        Ok((n, values))
    }

    /// The file's name, for messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// After the last sample: checks that nothing follows it.
    pub fn finish(&mut self) -> Result<(), DataError> {
        let mut extra = [0u8; 1];
        let got = read_full(&mut self.r, &mut extra).map_err(io_err(&self.file))?;
        if self.left == 0 && got > 0 {
            return Err(DataError::file(
                &self.file,
                format!("the file holds more data than its header {:?} announces ({} bytes); is the header wrong?", self.dims, self.bytes),
            ));
        }
        Ok(())
    }
}

/// Fills `buf` as far as the stream allows; returns how much was read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Images file -> input 0, labels file -> target 0. The labels are an IDX
/// file, or a CSV (`csv_labels`) whose column `target` names.
pub(crate) fn read_pair(images: &DataFile, labels: &DataFile, csv_labels: bool, target: Option<&Named>, io: &ModelIo) -> Result<Table, DataError> {
    if io.inputs.len() != 1 || io.outputs.len() != 1 {
        return Err(DataError::file(
            &images.name,
            format!(
                "IDX data for a model with {} inputs and {} outputs is not supported yet (only one of each); use CSV data with `inputs` and `target`",
                io.inputs.len(),
                io.outputs.len()
            ),
        ));
    }
    let x = read(&images.path, &images.name)?;
    let (column, n_labels) = if csv_labels {
        let (column, v) = super::csv::read_labels(labels, target)?;
        let n = v.len();
        (Column { name: column, file: labels.name.clone(), width: 1, values: Values::Str(v) }, n)
    } else {
        let y = read(&labels.path, &labels.name)?;
        let n = y.dims[0];
        (Column { name: labels.name.clone(), file: labels.name.clone(), width: y.dims[1..].iter().product(), values: Values::Num(y.data) }, n)
    };
    if x.dims[0] != n_labels {
        return Err(DataError::file(&images.name, format!("holds {} images but {} holds {n_labels} labels; they must pair up", x.dims[0], labels.name)));
    }
    let (name, shape) = &io.inputs[0];
    let width: usize = x.dims[1..].iter().product();
    if width != shape.iter().product::<usize>() {
        return Err(DataError::file(
            &images.name,
            format!(
                "images have shape {:?} ({width} values) but input '{name}' has shape {shape:?} ({} values); make the input shape match the images",
                &x.dims[1..],
                shape.iter().product::<usize>()
            ),
        ));
    }
    let n = x.dims[0];
    Ok(Table {
        file: images.name.clone(),
        kind: SourceKind::Idx,
        n,
        inputs: vec![x.data],
        widths: vec![width],
        features: vec![Vec::new()],
        cols: vec![Vec::new()],
        targets: vec![column],
        weights: None,
        rows: (0..n).collect(),
        selected: "the images".into(),
        mean_fill: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn idx(code: u8, dims: &[u32], body: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, code, dims.len() as u8];
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(body);
        v
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn parse_err(bytes: &[u8]) -> String {
        parse(bytes, "x.idx").unwrap_err().to_string()
    }

    #[test]
    fn every_element_type() {
        let u8s = idx(0x08, &[2, 2], &[0, 1, 254, 255]);
        assert_eq!(parse(&u8s[..], "f").unwrap(), Idx { dims: vec![2, 2], data: vec![0., 1., 254., 255.] });
        assert_eq!(parse(&idx(0x09, &[2], &[0xff, 0x7f])[..], "f").unwrap().data, vec![-1., 127.]);
        assert_eq!(parse(&idx(0x0B, &[1], &(-300i16).to_be_bytes())[..], "f").unwrap().data, vec![-300.]);
        assert_eq!(parse(&idx(0x0C, &[1], &70000i32.to_be_bytes())[..], "f").unwrap().data, vec![70000.]);
        let f32s: Vec<u8> = [1.5f32, -0.25].iter().flat_map(|f| f.to_be_bytes()).collect();
        assert_eq!(parse(&idx(0x0D, &[2, 1], &f32s)[..], "f").unwrap().data, vec![1.5, -0.25]);
        assert_eq!(parse(&idx(0x0E, &[1], &2.5f64.to_be_bytes())[..], "f").unwrap().data, vec![2.5]);
    }

    #[test]
    fn streams_in_batches() {
        let body: Vec<u8> = (0..30).collect();
        let bytes = idx(0x08, &[5, 3, 2], &body);
        let mut st = Stream::new(&bytes[..], "s.idx").unwrap();
        assert_eq!((st.dims.clone(), st.width), (vec![5, 3, 2], 6));
        let (mut seen, mut counts) = (Vec::new(), Vec::new());
        loop {
            let (n, v) = st.next(2).unwrap();
            if n == 0 {
                break;
            }
            counts.push(n);
            seen.extend(v);
        }
        st.finish().unwrap();
        assert_eq!(counts, [2, 2, 1]);
        assert_eq!(seen, parse(&bytes[..], "s.idx").unwrap().data);

        // Damage shows up at the batch that reaches it, and trailing bytes at the end.
        let short = &bytes[..bytes.len() - 10];
        let mut st = Stream::new(short, "s.idx").unwrap();
        assert_eq!(st.next(3).unwrap().0, 3);
        assert!(st.next(3).unwrap_err().to_string().contains("holds 20 bytes after the header"));
        let long = [&bytes[..], &[9]].concat();
        let mut st = Stream::new(&long[..], "s.idx").unwrap();
        st.next(5).unwrap();
        assert!(st.finish().unwrap_err().to_string().contains("more data than its header"));
    }

    #[test]
    fn damaged_files_are_errors() {
        assert_eq!(
            parse_err(&idx(0x08, &[2, 3], &[1, 2, 3])),
            "x.idx: truncated: the header announces [2, 3] (6 bytes of data) but the file holds 3 bytes after the header"
        );
        assert!(parse_err(&idx(0x08, &[1], &[1, 2])).contains("more data than its header [1] announces"));
        assert!(parse_err(b"\x1f\x8b\x08\x00").starts_with("x.idx: not an IDX file: it starts with [1f, 8b, 08, 00]"));
        assert!(parse_err(&[0, 0, 0x08, 200, 0, 0]).contains("the header announces 200 dimensions but the file ends inside them"));
        assert!(parse_err(&idx(0x07, &[1], &[1])).contains("unknown IDX element type 0x07"));
        assert_eq!(
            parse_err(&idx(0x0E, &[u32::MAX, u32::MAX, u32::MAX], &[])),
            "x.idx: the header's dimensions [4294967295, 4294967295, 4294967295] announce more than 1073741824 values (in all, or in one sample), more than nnrun reads from one IDX file"
        );
        assert!(parse_err(&idx(0x08, &[1 << 30, 2], &[0; 8])).contains("announce more than 1073741824 values"));
        // A huge header under the limit allocates nothing big.
        assert!(parse_err(&idx(0x08, &[1 << 28, 4], &[0; 8])).contains("truncated"));
        assert!(parse_err(&[0, 0]).contains("not an IDX file"));
        assert!(parse_err(&[0, 0, 0x08, 0]).contains("0 dimensions"));
    }

    #[test]
    fn non_finite_values_are_refused_with_the_record() {
        let f32s: Vec<u8> = [1.0f32, 2.0, 3.0, f32::NAN].iter().flat_map(|f| f.to_be_bytes()).collect();
        assert_eq!(
            parse_err(&idx(0x0D, &[2, 2], &f32s)),
            "x.idx: record 1: value 1 of the record is NaN, not a finite number; nnrun needs finite values (IDX has no missing values)"
        );
        let f64s: Vec<u8> = [1e300f64, 0.0].iter().flat_map(|f| f.to_be_bytes()).collect();
        assert!(parse_err(&idx(0x0E, &[2], &f64s)).starts_with("x.idx: record 0: value 0 of the record is inf"));
        // Streamed, the record counts from the file's start.
        let bytes = idx(0x0D, &[2, 2], &f32s);
        let mut st = Stream::new(&bytes[..], "s.idx").unwrap();
        assert_eq!(st.next(1).unwrap().1, [1.0, 2.0]);
        assert!(st.next(1).unwrap_err().to_string().starts_with("s.idx: record 1: value 1"));
    }

    #[test]
    fn headers_are_checked_against_the_file_and_the_limit() {
        let d = temp_dir("idxsize");
        // A raw file must hold exactly what its header announces, known before reading.
        std::fs::write(d.join("short"), idx(0x08, &[1 << 28, 4], &[0; 8])).unwrap();
        let e = read(&d.join("short"), "short").unwrap_err();
        assert_eq!(
            e.to_string(),
            "short: truncated: the header announces [268435456, 4] (1073741824 bytes of data) but the file holds 8 bytes after the header"
        );
        assert!(!e.is_io());
        // A gzip bomb: inflating stops at the limit's worth of the header.
        std::fs::write(d.join("bomb.gz"), gz(&idx(0x08, &[1 << 31, 1], &[]))).unwrap();
        assert!(read(&d.join("bomb.gz"), "bomb.gz").unwrap_err().to_string().contains("announce more than 1073741824 values"));
        let e = read(&d.join("nothing"), "nothing").unwrap_err();
        assert!(e.is_io() && e.to_string().starts_with("nothing: cannot read: No such file"), "{e}");
        let e = read(std::path::Path::new("/dev/zero"), "/dev/zero").unwrap_err();
        assert_eq!(e.to_string(), "cannot read /dev/zero: it is a character device, not a regular file (copy it to a file first)");
    }

    #[test]
    fn raw_and_gzip_files_and_pairs() {
        let d = temp_dir("idx");
        let images = idx(0x08, &[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        std::fs::write(d.join("img"), &images).unwrap();
        std::fs::write(d.join("img.gz"), gz(&images)).unwrap();
        // Gzip detected by content even under a misleading name.
        std::fs::write(d.join("lab.raw"), gz(&idx(0x08, &[3], &[2, 0, 1]))).unwrap();
        assert_eq!(read(&d.join("img"), "img").unwrap(), read(&d.join("img.gz"), "img.gz").unwrap());
        let io1 = io(&[("input", &[2, 2, 1])], &[("out", &[3], "categorical_crossentropy")]);
        let p = load_in(&d, "train: {images: img.gz, labels: lab.raw}\n", &io1).unwrap();
        assert_eq!(p.train.inputs[0].shape, vec![2, 2, 1]);
        assert_eq!(p.train.targets[0].data, vec![0., 0., 1., 1., 0., 0., 0., 1., 0.]);
        std::fs::write(d.join("bad.lab"), idx(0x08, &[3], &[2, 0, 7])).unwrap();
        let e = err(load_in(&d, "train: {images: img, labels: bad.lab}\n", &io1));
        assert_eq!(e, format!("{}: record 2: label 7 is not a class index in 0..3 (output 'out' has 3 units)", d.join("bad.lab").display()));
        std::fs::write(d.join("two.lab"), idx(0x08, &[2], &[2, 0])).unwrap();
        assert!(
            err(load_in(&d, "train: {images: img, labels: two.lab}\n", &io1))
                .ends_with(&format!("holds 3 images but {} holds 2 labels; they must pair up", d.join("two.lab").display()))
        );
        let e = err(load_in(&d, "train: {images: img, labels: lab.raw}\n", &io(&[("input", &[5])], &[("out", &[3], "categorical_crossentropy")])));
        assert!(e.ends_with("images have shape [2, 2] (4 values) but input 'input' has shape [5] (5 values); make the input shape match the images"), "{e}");
        let e = err(load_in(&d, "train: {images: img, labels: lab.raw}\n", &io(&[("a", &[4]), ("b", &[4])], &[("out", &[3], "categorical_crossentropy")])));
        assert!(e.contains("not supported yet"), "{e}");
    }

    #[test]
    fn digits_idx_matches_the_csv() {
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let x = read(&repo.join("data/digits/images-idx3-ubyte"), "digits").unwrap();
        assert_eq!(x.dims, vec![1797, 8, 8]);
        let first: Vec<f32> = std::fs::read_to_string(repo.join("data/tabular/digits.csv"))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .split(',')
            .take(64)
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(x.data[..64], first[..]);
    }
}
