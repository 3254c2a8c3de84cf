//! The fuzz targets' corpus seeds (fuzz/corpus/<target>/) and seeded
//! mutations of them, run as ordinary tests, plus a structure-aware spec
//! generator: no input may panic, hang, allocate past a budget, or fail
//! without saying why and where (src/fuzz.rs checks that an error names the
//! file). `bad-*` seeds must be refused, `any-*` seeds may go either way,
//! every other seed must load.
//!
//! Each test runs its inputs in a child process (this test binary, re-run on
//! that one test), so an input that aborts (stack overflow, the memory
//! budget) or hangs fails that test with the input named, not the suite. The
//! input being run is kept in target/fuzz-failures/<test>-last; a failing
//! one is saved there under its name, so `cargo fuzz run <target> <file>`
//! can replay it. NNRUN_FUZZ_KEEP_GOING=1 lists every failing input instead
//! of stopping at the first; NNRUN_FUZZ_SKIP=a,b skips inputs whose names
//! contain a or b (to get past one that aborts).

#![deny(clippy::undocumented_unsafe_blocks)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts memory: the largest single allocation of the current input (a
/// loader that trusts a length field asks for gigabytes at once), and the
/// bytes live in the whole process, refused past LIVE_BUDGET (an alias bomb
/// or a quadratic copy grows by small steps). A refusal aborts the child
/// process (Rust's allocation-failure handler) after naming the input.
struct PeakAlloc;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// The input being run, for the message before an abort (a 'static string).
static CASE: AtomicPtr<String> = AtomicPtr::new(std::ptr::null_mut());

/// Well above anything the seeds need, far below what a lying header asks.
const MAX_ALLOC: usize = 256 << 20;
/// Everything live at once, harness included.
const LIVE_BUDGET: usize = 2 << 30;

unsafe extern "C" {
    fn write(fd: i32, buf: *const u8, count: usize) -> isize;
}

impl PeakAlloc {
    /// Books `size` more bytes; false (nothing booked) past the budget.
    fn book(size: usize) -> bool {
        LARGEST.fetch_max(size, Ordering::Relaxed);
        let live = LIVE.fetch_add(size, Ordering::Relaxed).saturating_add(size);
        if live <= LIVE_BUDGET {
            return true;
        }
        LIVE.fetch_sub(size, Ordering::Relaxed);
        let case = CASE.load(Ordering::Relaxed);
        let msg = b"\nfuzz: the input below took the memory budget (2 GiB live); the process aborts\nfuzz: input ";
        // SAFETY: write(2) on stderr with valid buffers allocates nothing;
        // CASE is null or a leaked String that is never freed.
        unsafe {
            write(2, msg.as_ptr(), msg.len());
            if let Some(c) = case.as_ref() {
                write(2, c.as_ptr(), c.len());
            }
            write(2, b"\n".as_ptr(), 1);
        }
        false
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract, or answers null (allowed: allocation
// failure); the bookkeeping allocates nothing.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !Self::book(l.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: our caller's guarantees for `alloc` (non-zero size), passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !Self::book(l.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as alloc.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: p came from System (every block here does) with layout l.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if n > l.size() && !Self::book(n - l.size()) {
            return std::ptr::null_mut();
        }
        LARGEST.fetch_max(n, Ordering::Relaxed);
        // SAFETY: p came from System with layout l; n is our caller's valid new size.
        let q = unsafe { System.realloc(p, l, n) };
        if q.is_null() && n > l.size() {
            LIVE.fetch_sub(n - l.size(), Ordering::Relaxed);
        } else if !q.is_null() && n < l.size() {
            LIVE.fetch_sub(l.size() - n, Ordering::Relaxed);
        }
        q
    }
}
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

type Target = fn(&[u8]) -> Result<(), String>;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn failures() -> PathBuf {
    let dir = root().join("target/fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fuzz/corpus").join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// Runs one input; panics (failing the test) with the saved input's path.
fn run(target: &str, f: Target, name: &str, input: &[u8]) -> Result<(), String> {
    let skip = std::env::var("NNRUN_FUZZ_SKIP").unwrap_or_default();
    if skip.split(',').any(|s| !s.is_empty() && name.contains(s)) {
        return Err("fuzz: skipped (NNRUN_FUZZ_SKIP)".into());
    }
    let test = std::env::var("NNRUN_FUZZ_CHILD").unwrap_or_else(|_| target.into());
    let case = format!("{target}/{name} (saved as target/fuzz-failures/{test}-last)");
    let old = CASE.swap(Box::into_raw(Box::new(case)), Ordering::Relaxed);
    if !old.is_null() {
        // SAFETY: every CASE pointer comes from Box::into_raw just above, and
        // only this thread swaps it (one test per child process).
        drop(unsafe { Box::from_raw(old) });
    }
    std::fs::write(failures().join(format!("{test}-last")), input).unwrap();
    std::fs::write(failures().join(format!("{test}-last.name")), format!("{target}/{name}")).unwrap();
    LARGEST.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| f(input)));
    let (largest, took) = (LARGEST.load(Ordering::Relaxed), start.elapsed());
    let problem = match &result {
        Err(_) => Some("panicked".to_string()),
        Ok(_) if largest > MAX_ALLOC => Some(format!("allocated {largest} bytes at once")),
        // Debug build: a case takes milliseconds; seconds mean something is quadratic.
        Ok(_) if took > Duration::from_secs(20) => Some(format!("took {took:.1?}")),
        Ok(Err(e)) if e.trim().is_empty() => Some("failed with an empty message".into()),
        Ok(Err(e)) if e.starts_with("fuzz harness") || e.starts_with("fuzz property") => Some(e.clone()),
        _ => None,
    };
    if let Some(p) = problem {
        let saved = failures().join(format!("{target}-{name}"));
        std::fs::write(&saved, input).unwrap();
        fail(format!("{target}: input {name} {p}; saved as {}", saved.display()));
        return Err(format!("fuzz: {p}"));
    }
    result.unwrap()
}

/// Failures so far, with NNRUN_FUZZ_KEEP_GOING=1 (to list them all).
static FAILED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Fails the test now, or, keeping going, at the end (`finish`).
fn fail(msg: String) {
    if std::env::var_os("NNRUN_FUZZ_KEEP_GOING").is_none_or(|v| v.is_empty()) {
        panic!("{msg}");
    }
    eprintln!("FAILED: {msg}");
    FAILED.lock().unwrap().push(msg);
}

fn finish() {
    let failed = std::mem::take(&mut *FAILED.lock().unwrap());
    assert!(failed.is_empty(), "{} failures:\n{}", failed.len(), failed.join("\n"));
}

/// Runs `body` in a child process: this test binary, on test `test` alone,
/// with the main thread's stack size (what the nnrun binary has), killed
/// after `limit`. In the child, runs it.
fn isolated(test: &str, limit: Duration, body: impl FnOnce()) {
    if std::env::var("NNRUN_FUZZ_CHILD").is_ok_and(|t| t == test) {
        return body();
    }
    let dir = failures();
    let (out, err) = (dir.join(format!("{test}.stdout")), dir.join(format!("{test}.stderr")));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("NNRUN_FUZZ_CHILD", test)
        .env("RUST_MIN_STACK", (8 << 20).to_string())
        .env("RUST_BACKTRACE", "0")
        .env("NNRUN_FUZZ_KEEP_GOING", std::env::var_os("NNRUN_FUZZ_KEEP_GOING").unwrap_or_default())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let tail = |p: &Path| {
        let s = String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    };
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let last = std::fs::read_to_string(dir.join(format!("{test}-last.name"))).unwrap_or_default();
    let last = format!("the last input started was {last}, saved as target/fuzz-failures/{test}-last");
    match status {
        Some(s) if s.success() && stdout.contains("1 passed") => {}
        Some(s) => panic!("{test} failed ({s}); {last}\n--- stderr:\n{}\n--- stdout:\n{}", tail(&err), tail(&out)),
        None => panic!("{test} hung: killed after {limit:?}; {last}\n--- stderr:\n{}", tail(&err)),
    }
}

/// One random edit of the kinds that break parsers: bit flips, truncation,
/// inserted bytes, extreme integers over length fields, huge decimal numbers.
fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    let at = |rng: &mut StdRng, len: usize| if len == 0 { 0 } else { rng.random_range(0..len) };
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..7) {
            0 => {
                let i = at(rng, b.len());
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.random_range(0..8);
                }
            }
            1 => b.truncate(at(rng, b.len())),
            2 => {
                let i = at(rng, b.len());
                let n = rng.random_range(1..16);
                let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                b.splice(i..i, junk);
            }
            3 => {
                let i = at(rng, b.len());
                let v: [u8; 8] =
                    *[u64::MAX, u32::MAX as u64, 1 << 40, 0, 0x7fff_ffff_0000_0000].get(rng.random_range(0..5)).unwrap().to_le_bytes().as_array().unwrap();
                let big_endian = rng.random_bool(0.5);
                for (k, x) in v.iter().enumerate() {
                    if let Some(dst) = b.get_mut(i + k) {
                        *dst = if big_endian { v[7 - k] } else { *x };
                    }
                }
            }
            4 => {
                // A decimal number (a shape, offset or CSV value) made huge or odd.
                let digits: Vec<usize> = (0..b.len()).filter(|&i| b[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(at(rng, digits.len())) {
                    let rep: &[u8] =
                        [&b"99999999999999999999"[..], b"4294967296", b"9223372036854775807", b"-1", b"1e999", b"NaN", b"0"][rng.random_range(0..7)];
                    b.splice(i..i + 1, rep.iter().copied());
                }
            }
            5 => {
                // Duplicate a chunk (repeated records, header keys, layers).
                if !b.is_empty() {
                    let i = at(rng, b.len());
                    let j = (i + rng.random_range(1..64)).min(b.len());
                    let chunk = b[i..j].to_vec();
                    let k = at(rng, b.len());
                    b.splice(k..k, chunk);
                }
            }
            _ => {
                let i = at(rng, b.len());
                let special = [0u8, 0xff, b'"', b',', b'\n', b'{', b'}', 0x80, b'&', b'*', b'!', b'[', b':', b'-'];
                if let Some(x) = b.get_mut(i) {
                    *x = special[rng.random_range(0..special.len())];
                }
            }
        }
    }
    b
}

/// What the coverage-guided fuzzer kept (fuzz/corpus-cov/<target>/, minimized
/// with `cargo fuzz cmin`): inputs that reach code the seeds don't. Each must
/// pass the properties, loaded or refused; they are not mutated further here
/// (most are refused, and mutations must also reach inputs that load).
fn coverage(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("fuzz/corpus-cov").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut out: Vec<_> =
        entries.map(|e| e.unwrap().path()).map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())).collect();
    out.sort();
    out
}

fn fuzz(target: &str, f: Target, mutations: usize) {
    for (name, bytes) in coverage(target) {
        let _ = run(target, f, &format!("cov-{name}"), &bytes);
    }
    let seeds = seeds(target);
    for (name, bytes) in &seeds {
        let r = run(target, f, name, bytes);
        if name.starts_with("bad-") && r.is_ok() {
            fail(format!("{target}: seed {name} should be refused"));
        } else if let (true, Err(e)) = (target == "run" && name.starts_with("bad-model-") && !r.as_ref().is_err_and(|e| e.starts_with("fuzz: ")), &r) {
            // A model file that lies is refused by every command that opens it.
            for c in ["predict:", "evaluate:", "inspect:"].into_iter().filter(|c| !e.contains(c)) {
                fail(format!("{target}: seed {name} should be refused by {}", c.trim_end_matches(':')));
            }
        } else if let (false, false, Err(e)) = (name.starts_with("bad-"), name.starts_with("any-"), r) {
            fail(format!("{target}: seed {name} should load, got: {e}"));
        }
    }
    // Seeded, so a failure reproduces; the count keeps the suite quick.
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let (mut refused, mut loaded) = (0, 0);
    for i in 0..mutations {
        let (name, bytes) = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, bytes);
        match run(target, f, &format!("{name}-mutation-{i}"), &input) {
            Ok(()) => loaded += 1,
            Err(_) => refused += 1,
        }
    }
    finish();
    // The mutations must reach past the first check, or this tests nothing.
    assert!(refused > 0 && loaded > 0, "{target}: {loaded} loaded, {refused} refused");
}

const LIMIT: Duration = Duration::from_secs(300);

#[test]
fn model_file_corpus() {
    isolated("model_file_corpus", LIMIT, || fuzz("model_file", nnrun::fuzz::model_file, 1000));
}

#[test]
fn checkpoint_corpus() {
    isolated("checkpoint_corpus", LIMIT, || fuzz("checkpoint", nnrun::fuzz::checkpoint, 1000));
}

#[test]
fn idx_corpus() {
    isolated("idx_corpus", LIMIT, || fuzz("idx", nnrun::fuzz::idx, 2000));
}

#[test]
fn csv_corpus() {
    isolated("csv_corpus", LIMIT, || fuzz("csv", nnrun::fuzz::csv, 2000));
}

#[test]
fn spec_corpus() {
    isolated("spec_corpus", LIMIT, || fuzz("spec", nnrun::fuzz::spec, 1500));
}

#[test]
fn run_corpus() {
    isolated("run_corpus", LIMIT, || fuzz("run", nnrun::fuzz::run, 600));
}

/// Random specs built from their parts: layer lists over every layer type,
/// sizes from 0 to past 2^63, DAG edges (cycles and dangling names
/// included), and YAML's odd corners (anchors, aliases, merge keys, tags,
/// flow and block style, duplicate keys, deep nesting, small alias bombs).
#[test]
fn generated_specs() {
    isolated("generated_specs", LIMIT, || {
        let mut rng = StdRng::seed_from_u64(0x59ec);
        let (mut valid, mut refused) = (0, 0);
        for i in 0..3000 {
            let text = specgen::spec(&mut rng);
            match run("spec", nnrun::fuzz::spec, &format!("generated-{i}"), text.as_bytes()) {
                Ok(()) => valid += 1,
                Err(_) => refused += 1,
            }
        }
        println!("generated specs: {valid} valid, {refused} refused");
        finish();
        // Both outcomes must be common, or the generator explores one side only.
        assert!(valid > 150 && refused > 150, "{valid} valid, {refused} refused");
    });
}

/// The generator knows the arguments of every layer type nnrun has.
#[test]
fn generator_covers_every_layer_type() {
    for t in nnrun::layers::type_names() {
        assert!(specgen::ARGS.iter().any(|(name, _)| *name == t), "tests/fuzz.rs: specgen::ARGS has no entry for {t}");
    }
}

/// Writes fuzz/corpus/run/: models trained by the nnrun binary on small
/// specs, each with CSV rows it can predict and be evaluated on, and edited
/// copies a loader must refuse. Run after a model-format change:
/// `cargo test --test fuzz -- --ignored make_run_corpus`.
#[test]
#[ignore]
fn make_run_corpus() {
    corpus::make();
}

/// The structure-aware spec generator.
mod specgen {
    use super::*;

    /// A YAML node to emit. `Raw` is emitted as is (deep nesting, bombs).
    #[derive(Clone)]
    pub enum Y {
        Null,
        Bool(bool),
        Int(i128),
        Float(f64),
        Str(String),
        Seq(Vec<Y>),
        Map(Vec<(String, Y)>),
        Raw(String),
    }

    #[derive(Clone, Copy)]
    pub enum K {
        Size,
        Sizes,
        Shape,
        Perm,
        Unit,
        Float,
        Bool,
        Act,
        Init,
        Padding,
        Format,
        Merge,
        Interp,
        Axis,
        Inner,
    }

    use K::*;
    const CONV: &[(&str, K)] = &[
        ("filters", Size),
        ("kernel_size", Sizes),
        ("strides", Sizes),
        ("padding", Padding),
        ("data_format", Format),
        ("dilation_rate", Sizes),
        ("groups", Size),
        ("activation", Act),
        ("use_bias", Bool),
        ("kernel_initializer", Init),
        ("bias_initializer", Init),
    ];
    const POOL: &[(&str, K)] = &[("pool_size", Sizes), ("strides", Sizes), ("padding", Padding), ("data_format", Format)];
    const GLOBAL: &[(&str, K)] = &[("data_format", Format), ("keepdims", Bool)];
    const RNN: &[(&str, K)] = &[
        ("units", Size),
        ("activation", Act),
        ("recurrent_activation", Act),
        ("use_bias", Bool),
        ("kernel_initializer", Init),
        ("recurrent_initializer", Init),
        ("bias_initializer", Init),
        ("unit_forget_bias", Bool),
        ("dropout", Unit),
        ("recurrent_dropout", Unit),
        ("seed", Size),
        ("return_sequences", Bool),
        ("go_backwards", Bool),
        ("reset_after", Bool),
    ];
    const NORM: &[(&str, K)] = &[
        ("axis", Axis),
        ("momentum", Unit),
        ("epsilon", Float),
        ("center", Bool),
        ("scale", Bool),
        ("rms_scaling", Bool),
        ("beta_initializer", Init),
        ("gamma_initializer", Init),
        ("moving_mean_initializer", Init),
        ("moving_variance_initializer", Init),
    ];
    /// Each layer type's arguments and the kind of value they take.
    pub const ARGS: &[(&str, &[(&str, K)])] = &[
        ("Dense", &[("units", Size), ("activation", Act), ("use_bias", Bool), ("kernel_initializer", Init), ("bias_initializer", Init)]),
        ("Activation", &[("activation", Act)]),
        ("Dropout", &[("rate", Unit), ("seed", Size)]),
        ("Flatten", &[("data_format", Format)]),
        ("Reshape", &[("target_shape", Shape)]),
        ("Permute", &[("dims", Perm)]),
        ("RepeatVector", &[("n", Size)]),
        ("Embedding", &[("input_dim", Size), ("output_dim", Size), ("embeddings_initializer", Init), ("mask_zero", Bool)]),
        ("Conv1D", CONV),
        ("Conv2D", CONV),
        ("ZeroPadding2D", &[("padding", Sizes), ("data_format", Format)]),
        ("UpSampling2D", &[("size", Sizes), ("data_format", Format), ("interpolation", Interp)]),
        ("MaxPooling1D", POOL),
        ("MaxPooling2D", POOL),
        ("AveragePooling1D", POOL),
        ("AveragePooling2D", POOL),
        ("GlobalAveragePooling1D", GLOBAL),
        ("GlobalAveragePooling2D", GLOBAL),
        ("GlobalMaxPooling1D", GLOBAL),
        ("GlobalMaxPooling2D", GLOBAL),
        ("BatchNormalization", NORM),
        ("LayerNormalization", NORM),
        ("SimpleRNN", RNN),
        ("LSTM", RNN),
        ("GRU", RNN),
        ("Bidirectional", &[("layer", Inner), ("merge_mode", Merge)]),
        ("Add", &[]),
        ("Subtract", &[]),
        ("Multiply", &[]),
        ("Average", &[]),
        ("Maximum", &[]),
        ("Minimum", &[]),
        ("Concatenate", &[("axis", Axis)]),
    ];

    fn pick<T: Clone>(rng: &mut StdRng, xs: &[T]) -> T {
        xs[rng.random_range(0..xs.len())].clone()
    }

    fn s(x: &str) -> Y {
        Y::Str(x.to_string())
    }

    /// Mostly small (so shapes stay valid deep into the model), often an edge.
    fn size(rng: &mut StdRng) -> Y {
        match rng.random_range(0..100) {
            0..70 => Y::Int(rng.random_range(1..=8)),
            70..92 => Y::Int(pick(rng, &[0, 1, 2, 1 << 31, 1 << 32, 1 << 53, (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64, -1, 99_999_999_999])),
            92..96 => Y::Float(pick(rng, &[2.5, 1e300, f64::INFINITY, f64::NAN, -0.0, 4.0])),
            _ => pick(rng, &[s("3"), Y::Null, Y::Bool(true), Y::Seq(vec![]), Y::Map(vec![])]).clone(),
        }
    }

    fn value(rng: &mut StdRng, k: K) -> Y {
        let sizes = |rng: &mut StdRng, n: usize| Y::Seq((0..n).map(|_| size(rng)).collect());
        match k {
            Size => size(rng),
            Sizes => match rng.random_range(0..3) {
                0 => size(rng),
                1 => sizes(rng, 2),
                _ => Y::Seq(vec![sizes(rng, 2), sizes(rng, 2)]),
            },
            Shape => {
                let n = rng.random_range(0..4);
                sizes(rng, n)
            }
            Perm => Y::Seq((0..rng.random_range(1..4)).map(|_| Y::Int(rng.random_range(-1..4))).collect()),
            Unit => Y::Float(pick(rng, &[0.0, 0.1, 0.5, 0.99, 1.0, -0.5, 2.0, f64::NAN])),
            Float => Y::Float(pick(rng, &[1e-3, 1e-7, 0.0, -1.0, 1e308, f64::INFINITY])),
            Bool => {
                if rng.random_bool(0.9) {
                    Y::Bool(rng.random())
                } else {
                    pick(rng, &[s("yes"), Y::Int(1), Y::Null]).clone()
                }
            }
            Act => s(pick(rng, &["relu", "softmax", "sigmoid", "tanh", "linear", "gelu", "elu", "selu", "softplus", "swish", "Relu", "nope", ""])),
            Init => s(pick(rng, &["glorot_uniform", "zeros", "ones", "he_normal", "orthogonal", "lecun_uniform", "random_normal", "nope"])),
            Padding => s(pick(rng, &["valid", "same", "causal", "full"])),
            Format => s(pick(rng, &["channels_last", "channels_first", "nhwc"])),
            Merge => s(pick(rng, &["concat", "sum", "mul", "ave", "none"])),
            Interp => s(pick(rng, &["nearest", "bilinear", "cubic"])),
            Axis => match rng.random_range(0..4) {
                0 => Y::Int(-1),
                1 => Y::Int(rng.random_range(-4..5)),
                2 => Y::Seq(vec![Y::Int(1), Y::Int(-1)]),
                _ => size(rng),
            },
            Inner => {
                let t = pick(rng, &["LSTM", "GRU", "SimpleRNN", "Dense"]);
                Y::Map(layer_args(rng, t))
            }
        }
    }

    fn layer_args(rng: &mut StdRng, t: &str) -> Vec<(String, Y)> {
        let mut m = vec![("type".to_string(), s(t))];
        let args = ARGS.iter().find(|(n, _)| *n == t).map_or(&[][..], |(_, a)| a);
        for &(name, k) in args {
            if rng.random_bool(0.6) {
                m.push((name.to_string(), value(rng, k)));
            }
        }
        if rng.random_bool(0.05) {
            m.push(("trainable".into(), Y::Bool(rng.random())));
        }
        if rng.random_bool(0.03) {
            m.push((pick(rng, &["kernel_regularizer", "return_state", "unitz", "type"]).to_string(), size(rng)));
        }
        m
    }

    fn shape(rng: &mut StdRng) -> Y {
        if rng.random_bool(0.8) {
            let dims: &[i128] = pick(rng, &[&[4][..], &[8, 8, 1], &[16, 2], &[5], &[6, 6, 3], &[10, 4], &[12]]);
            Y::Seq(dims.iter().map(|&d| Y::Int(d)).collect())
        } else {
            value(rng, Shape)
        }
    }

    fn layer_type(rng: &mut StdRng, types: &[&'static str]) -> String {
        match rng.random_range(0..50) {
            0 => pick(rng, &["dense", "Dense ", "Nope", "", "LSTMCell"]).to_string(),
            _ => pick(rng, types).to_string(),
        }
    }

    fn layer(rng: &mut StdRng, types: &[&'static str]) -> Y {
        match rng.random_range(0..60) {
            0 => s(pick(rng, types)),
            1 => Y::Null,
            2 => Y::Map(vec![("units".into(), size(rng))]),
            _ => {
                let t = layer_type(rng, types);
                Y::Map(layer_args(rng, &t))
            }
        }
    }

    fn name(rng: &mut StdRng) -> Y {
        s(pick(rng, &["net", "a_b-c.1", "../../x", "/tmp/abs", "..", ".", "a/b", "a\\b", "", "名前", "x: y", "CON", &"n".repeat(300)]))
    }

    fn model(rng: &mut StdRng) -> Y {
        let types = nnrun::layers::type_names();
        let n = if rng.random_bool(0.05) { rng.random_range(20..200) } else { rng.random_range(0..7) };
        if rng.random_bool(0.6) {
            // Sequential.
            let mut layers: Vec<Y> = (0..n).map(|_| layer(rng, &types)).collect();
            if rng.random_bool(0.8) {
                layers.push(Y::Map(vec![
                    ("type".into(), s("Dense")),
                    ("units".into(), Y::Int(rng.random_range(1..4))),
                    ("activation".into(), value(rng, Act)),
                ]));
            }
            let mut m = vec![("input_shape".to_string(), shape(rng)), ("layers".to_string(), Y::Seq(layers))];
            if rng.random_bool(0.05) {
                m.swap(0, 1);
                m.pop();
            }
            return Y::Map(m);
        }
        // Functional: named layers taking earlier layers (mostly), later ones
        // (cycles), themselves, or names that exist nowhere.
        let inputs = ["x", "y"];
        let k = rng.random_range(1..=2);
        let mut names: Vec<String> = inputs[..k].iter().map(|s| s.to_string()).collect();
        let total = n + 1;
        let mut layers = Vec::new();
        for i in 0..total {
            let Y::Map(mut m) = layer(rng, &types) else {
                layers.push(Y::Null);
                continue;
            };
            let edge = |rng: &mut StdRng, names: &[String]| match rng.random_range(0..20) {
                0 => s(&format!("l{}", rng.random_range(0..total + 2))),
                1 => s(&format!("l{i}")),
                2 => s("nowhere"),
                _ => s(&pick(rng, names)),
            };
            let ins = if rng.random_bool(0.3) { Y::Seq((0..rng.random_range(1..4)).map(|_| edge(rng, &names)).collect()) } else { edge(rng, &names) };
            if rng.random_bool(0.9) {
                m.insert(0, ("name".into(), s(&format!("l{i}"))));
            }
            if rng.random_bool(0.85) {
                m.push(("inputs".into(), ins));
            }
            names.push(format!("l{i}"));
            layers.push(Y::Map(m));
        }
        let ins = Y::Map(inputs[..k].iter().map(|n| (n.to_string(), shape(rng))).collect());
        let mut m = vec![("inputs".to_string(), ins), ("layers".to_string(), Y::Seq(layers))];
        if rng.random_bool(0.6) {
            let outs: Vec<Y> = (0..rng.random_range(1..3)).map(|_| s(&format!("l{}", rng.random_range(0..total + 1)))).collect();
            m.push(("outputs".into(), if outs.len() == 1 && rng.random_bool(0.5) { outs[0].clone() } else { Y::Seq(outs) }));
        }
        Y::Map(m)
    }

    fn training(rng: &mut StdRng) -> Y {
        let loss = s(pick(rng, &["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy", "mse", "mae", "huber", "ctc", "hinge"]));
        let lr = match rng.random_range(0..4) {
            0 => Y::Map(vec![
                ("type".into(), s(pick(rng, &["ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay", "Nope"]))),
                ("initial_learning_rate".into(), value(rng, Float)),
                ("decay_steps".into(), size(rng)),
                ("decay_rate".into(), value(rng, Unit)),
                ("boundaries".into(), value(rng, Shape)),
                ("values".into(), Y::Seq(vec![Y::Float(0.1), Y::Float(0.01)])),
            ]),
            _ => value(rng, Float),
        };
        let opt = Y::Map(vec![("type".into(), s(pick(rng, &["adam", "sgd", "rmsprop", "adagrad", "adamw", "Adam", "nope"]))), ("learning_rate".into(), lr)]);
        let mut m = vec![("loss".to_string(), loss), ("optimizer".to_string(), opt)];
        for (key, k) in [("epochs", Size), ("batch_size", Size), ("seed", Size)] {
            if rng.random_bool(0.5) {
                m.push((key.into(), value(rng, k)));
            }
        }
        if rng.random_bool(0.5) {
            let ms = Y::Seq((0..rng.random_range(0..3)).map(|_| s(pick(rng, &["accuracy", "auc", "mae", "mse", "cer", "sequence_accuracy", "f1"]))).collect());
            m.push(("metrics".into(), ms));
        }
        Y::Map(m)
    }

    fn data(rng: &mut StdRng) -> Y {
        let train = if rng.random_bool(0.8) { s("data.csv") } else { Y::Map(vec![("images".into(), s("i.idx")), ("labels".into(), s("l.idx"))]) };
        let mut m = vec![("train".to_string(), train)];
        if rng.random_bool(0.5) {
            m.push(("target".into(), s("y")));
        }
        if rng.random_bool(0.3) {
            m.push(("window".into(), Y::Map(vec![("column".into(), s("y")), ("size".into(), size(rng))])));
        }
        for (key, v) in [("normalize", ["none", "standard", "minmax"]), ("missing", ["error", "drop", "mean"])] {
            if rng.random_bool(0.4) {
                m.push((key.into(), s(pick(rng, &v))));
            }
        }
        if rng.random_bool(0.4) {
            m.push((pick(rng, &["test_split", "validation_split"]).to_string(), value(rng, Unit)));
        }
        if rng.random_bool(0.2) {
            m.push(("scale".into(), pick(rng, &[s("1/255"), s("1/0"), Y::Float(0.5)]).clone()));
        }
        Y::Map(m)
    }

    /// Emits YAML with random style and features. Anchors name earlier
    /// nodes; aliases and merge keys refer back to them.
    struct Emitter<'r> {
        rng: &'r mut StdRng,
        out: String,
        /// Anchors so far, and whether each names a mapping (merge keys) or
        /// an integer (the aliases of tame specs).
        anchors: Vec<(String, Anchor)>,
        /// Only the features that keep a valid spec valid: matching tags,
        /// aliases of integers to integers.
        tame: bool,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Anchor {
        Map,
        Int,
        Other,
    }

    impl Emitter<'_> {
        fn scalar(&mut self, y: &Y) -> String {
            let fitting = match y {
                Y::Int(_) => "!!int",
                Y::Bool(_) => "!!bool",
                Y::Float(_) => "!!float",
                Y::Str(_) => "!!str",
                _ => "!!null",
            };
            let tag = if !self.rng.random_bool(0.03) {
                String::new()
            } else if self.tame {
                format!("{fitting} ")
            } else {
                format!("{} ", pick(self.rng, &["!!str", "!!int", "!!float", "!!bool", "!!null", "!custom", fitting]))
            };
            let text = match y {
                Y::Null => pick(self.rng, &["null", "~", ""]).to_string(),
                Y::Bool(b) => b.to_string(),
                Y::Int(i) => i.to_string(),
                Y::Float(f) if f.is_nan() => ".nan".into(),
                Y::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
                Y::Float(f) => format!("{f:?}"),
                Y::Str(t) => {
                    let plain = !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || "_-./".contains(c)) && !t.starts_with(['-', '.']);
                    match self.rng.random_range(0..10) {
                        0 => format!("'{}'", t.replace('\'', "''")),
                        1 => format!("{t:?}"),
                        _ if plain => t.clone(),
                        _ => format!("{t:?}"),
                    }
                }
                Y::Raw(r) => r.clone(),
                Y::Seq(_) | Y::Map(_) => unreachable!(),
            };
            format!("{tag}{text}")
        }

        /// A node's prefix: an anchor (remembered), or an alias instead of the node.
        fn prefix(&mut self, y: &Y) -> Result<String, String> {
            let kind = match y {
                Y::Map(_) => Anchor::Map,
                Y::Int(_) => Anchor::Int,
                _ => Anchor::Other,
            };
            let fits: Vec<String> =
                self.anchors.iter().filter(|(_, k)| !self.tame || (*k == Anchor::Int && kind == Anchor::Int)).map(|(a, _)| a.clone()).collect();
            if !fits.is_empty() && self.rng.random_bool(0.03) {
                return Err(format!("*{}", pick(self.rng, &fits)));
            }
            if self.rng.random_bool(0.05) {
                let a = format!("a{}", self.anchors.len());
                self.anchors.push((a.clone(), kind));
                return Ok(format!("&{a} "));
            }
            Ok(String::new())
        }

        fn merge_key(&mut self) -> Option<String> {
            let maps: Vec<String> = self.anchors.iter().filter(|(_, k)| *k == Anchor::Map).map(|(a, _)| a.clone()).collect();
            (!self.tame && !maps.is_empty() && self.rng.random_bool(0.1)).then(|| format!("*{}", pick(self.rng, &maps)))
        }

        fn flow(&mut self, y: &Y) -> String {
            let pre = match self.prefix(y) {
                Ok(p) => p,
                Err(alias) => return alias,
            };
            match y {
                Y::Seq(xs) => {
                    let items: Vec<String> = xs.iter().map(|x| self.flow(x)).collect();
                    format!("{pre}[{}]", items.join(", "))
                }
                Y::Map(es) => {
                    let mut items: Vec<String> = Vec::new();
                    if let Some(m) = self.merge_key() {
                        items.push(format!("<<: {m}"));
                    }
                    for (k, v) in es {
                        let v = self.flow(v);
                        items.push(format!("{k}: {v}"));
                    }
                    if !self.tame && !items.is_empty() && self.rng.random_bool(0.02) {
                        let dup = pick(self.rng, &items).clone();
                        items.push(dup);
                    }
                    format!("{pre}{{{}}}", items.join(", "))
                }
                _ => format!("{pre}{}", self.scalar(y)),
            }
        }

        /// A node in block style at `indent`, after `key:` or `-`.
        fn block(&mut self, y: &Y, indent: usize) -> String {
            let empty = matches!(y, Y::Seq(v) if v.is_empty()) || matches!(y, Y::Map(v) if v.is_empty());
            if empty || !matches!(y, Y::Seq(_) | Y::Map(_)) || self.rng.random_bool(0.3) {
                return format!(" {}\n", self.flow(y));
            }
            let pre = match self.prefix(y) {
                Ok(p) => p,
                Err(alias) => return format!(" {alias}\n"),
            };
            let pad = " ".repeat(indent);
            let mut out = format!(" {}\n", pre.trim_end());
            match y {
                Y::Seq(xs) => {
                    for x in xs {
                        let item = self.block(x, indent + 2);
                        out.push_str(&format!("{pad}-{item}"));
                    }
                }
                Y::Map(es) => {
                    if let Some(m) = self.merge_key() {
                        out.push_str(&format!("{pad}<<: {m}\n"));
                    }
                    for (i, (k, v)) in es.iter().enumerate() {
                        let v = self.block(v, indent + 2);
                        out.push_str(&format!("{pad}{k}:{v}"));
                        if !self.tame && i == 0 && self.rng.random_bool(0.02) {
                            out.push_str(&format!("{pad}{k}: 1\n"));
                        }
                    }
                }
                _ => unreachable!(),
            }
            out
        }
    }

    /// Text nested `depth` deep in flow or block style.
    fn deep(rng: &mut StdRng) -> Y {
        let depth = pick(rng, &[10, 100, 254, 255, 256, 1000, 5000]);
        Y::Raw(match rng.random_range(0..3) {
            0 => format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
            1 => format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
            _ => format!("\n    {}1", "- ".repeat(depth)),
        })
    }

    /// Anchors aliasing the previous one `width` times, `levels` deep:
    /// width^levels nodes when expanded (at most 7^7, about 820,000).
    fn bomb(rng: &mut StdRng) -> String {
        let (levels, width) = (rng.random_range(2..=7), rng.random_range(2..=7));
        let mut out = format!("b0: &b0 [{}]\n", vec!["x"; width].join(", "));
        for l in 1..levels {
            out.push_str(&format!("b{l}: &b{l} [{}]\n", vec![format!("*b{}", l - 1); width].join(", ")));
        }
        out
    }

    fn map(entries: Vec<(&str, Y)>) -> Y {
        Y::Map(entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn small(rng: &mut StdRng, hi: i128) -> Y {
        Y::Int(rng.random_range(1..=hi))
    }

    /// One layer that fits an input of `rank` (1 vector, 2 sequence, 3
    /// image), and the rank of its output.
    fn fitting_layer(rng: &mut StdRng, rank: usize) -> (Y, usize) {
        let t = |x: &str| ("type", s(x));
        let act = |rng: &mut StdRng| s(pick(rng, &["relu", "tanh", "sigmoid", "linear", "softmax"]));
        let same = |rng: &mut StdRng| s(pick(rng, &["same", "valid"]));
        let layer = match (rank, rng.random_range(0..8)) {
            (1, 0) => (map(vec![t("Dropout"), ("rate", Y::Float(0.25))]), 1),
            (1, 1) => (map(vec![t("Activation"), ("activation", act(rng))]), 1),
            (1, 2) => (map(vec![t(pick(rng, &["BatchNormalization", "LayerNormalization"]))]), 1),
            (1, 3) => (map(vec![t("RepeatVector"), ("n", small(rng, 4))]), 2),
            (1, _) => (map(vec![t("Dense"), ("units", small(rng, 8)), ("activation", act(rng))]), 1),
            (2, 0) => (map(vec![t("Conv1D"), ("filters", small(rng, 6)), ("kernel_size", small(rng, 2)), ("padding", s(pick(rng, &["same", "causal"])))]), 2),
            (2, 1) => (map(vec![t(pick(rng, &["MaxPooling1D", "AveragePooling1D"])), ("pool_size", small(rng, 2)), ("padding", s("same"))]), 2),
            (2, 2) => (map(vec![t(pick(rng, &["LSTM", "GRU", "SimpleRNN"])), ("units", small(rng, 6)), ("return_sequences", Y::Bool(true))]), 2),
            (2, 3) => (map(vec![t(pick(rng, &["LSTM", "GRU", "SimpleRNN"])), ("units", small(rng, 6))]), 1),
            (2, 4) => {
                let inner = map(vec![t(pick(rng, &["LSTM", "GRU"])), ("units", small(rng, 4)), ("return_sequences", Y::Bool(true))]);
                (map(vec![t("Bidirectional"), ("layer", inner), ("merge_mode", s(pick(rng, &["concat", "sum", "ave", "mul"])))]), 2)
            }
            (2, 5) => (map(vec![t(pick(rng, &["GlobalMaxPooling1D", "GlobalAveragePooling1D", "Flatten"]))]), 1),
            (2, _) => (map(vec![t(pick(rng, &["Dense", "LayerNormalization", "Dropout"])), ("units", small(rng, 6)), ("rate", Y::Float(0.1))]), 2),
            (_, 0) => (map(vec![t("Conv2D"), ("filters", small(rng, 4)), ("kernel_size", small(rng, 3)), ("padding", s("same")), ("activation", act(rng))]), 3),
            (_, 1) => (map(vec![t(pick(rng, &["MaxPooling2D", "AveragePooling2D"])), ("pool_size", small(rng, 2)), ("padding", same(rng))]), 3),
            (_, 2) => (map(vec![t("ZeroPadding2D"), ("padding", small(rng, 2))]), 3),
            (_, 3) => (map(vec![t("BatchNormalization")]), 3),
            (_, 4) => (map(vec![t(pick(rng, &["GlobalMaxPooling2D", "GlobalAveragePooling2D", "Flatten"]))]), 1),
            (_, 5) => (map(vec![t("UpSampling2D"), ("size", Y::Int(2))]), 3),
            (_, _) => (map(vec![t("Dense"), ("units", small(rng, 4))]), 3),
        };
        // Only the arguments the layer has: the table above is loose.
        let (Y::Map(mut m), r) = layer else { unreachable!() };
        let ty = match &m[0].1 {
            Y::Str(t) => t.clone(),
            _ => unreachable!(),
        };
        let known = ARGS.iter().find(|(n, _)| *n == ty).map_or(&[][..], |(_, a)| a);
        m.retain(|(k, _)| k == "type" || known.iter().any(|(n, _)| n == k));
        (Y::Map(m), r)
    }

    /// The output layer and a training section that fits it.
    fn head(rng: &mut StdRng) -> (Y, Y) {
        let (units, act, loss, metric) = pick(
            rng,
            &[
                (3, "softmax", "categorical_crossentropy", "accuracy"),
                (3, "softmax", "sparse_categorical_crossentropy", "accuracy"),
                (1, "sigmoid", "binary_crossentropy", "auc"),
                (1, "linear", "mse", "mae"),
                (2, "linear", "huber", "mse"),
            ],
        );
        let out = map(vec![("type", s("Dense")), ("units", Y::Int(units)), ("activation", s(act))]);
        let opt =
            map(vec![("type", s(pick(rng, &["adam", "sgd", "rmsprop", "adagrad", "adamw"]))), ("learning_rate", Y::Float(pick(rng, &[0.001, 0.01, 0.1])))]);
        let training =
            map(vec![("loss", s(loss)), ("optimizer", opt), ("metrics", Y::Seq(vec![s(metric)])), ("epochs", small(rng, 5)), ("batch_size", small(rng, 64))]);
        (out, training)
    }

    /// A spec that should validate: layers chosen to fit the shapes, a
    /// functional graph whose every layer reaches the output.
    fn tame(rng: &mut StdRng) -> Vec<(String, Y)> {
        let (out, training) = head(rng);
        let model = if rng.random_bool(0.7) {
            let (dims, mut rank): (&[i128], usize) = pick(rng, &[(&[4][..], 1), (&[12], 1), (&[16, 2], 2), (&[10, 4], 2), (&[8, 8, 1], 3), (&[6, 6, 3], 3)]);
            let n = if rng.random_bool(0.1) { rng.random_range(10..60) } else { rng.random_range(0..6) };
            let mut layers = Vec::new();
            for _ in 0..n {
                let (l, r) = fitting_layer(rng, rank);
                // Upsampling and padding grow images: not too often.
                if rank == 3 && layers.len() > 8 && r == 3 {
                    continue;
                }
                layers.push(l);
                rank = r;
            }
            if rank > 1 {
                layers.push(map(vec![("type", s("Flatten"))]));
            }
            layers.push(out);
            map(vec![("input_shape", Y::Seq(dims.iter().map(|&d| Y::Int(d)).collect())), ("layers", Y::Seq(layers))])
        } else {
            // Vectors: (name, width); merges take two of the same width.
            let mut nodes: Vec<(String, i128)> = vec![("x".into(), 4), ("y".into(), pick(rng, &[4, 3]))];
            let mut unused: Vec<String> = vec!["x".into(), "y".into()];
            let mut layers = Vec::new();
            for i in 0..rng.random_range(1..12) {
                let name = format!("l{i}");
                let (a, wa) = pick(rng, &nodes);
                let same: Vec<(String, i128)> = nodes.iter().filter(|(n, w)| *w == wa && *n != a).cloned().collect();
                let (layer, w, ins) = if !same.is_empty() && rng.random_bool(0.4) {
                    let (b, _) = pick(rng, &same);
                    let ty = pick(rng, &["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]);
                    (vec![("type", s(ty))], wa, vec![a, b])
                } else if nodes.len() > 1 && rng.random_bool(0.2) {
                    let (b, wb) = pick(rng, &nodes);
                    if b == a {
                        continue;
                    }
                    (vec![("type", s("Concatenate"))], wa + wb, vec![a, b])
                } else {
                    let w = rng.random_range(2..=6);
                    (vec![("type", s("Dense")), ("units", Y::Int(w))], w, vec![a])
                };
                unused.retain(|u| !ins.contains(u));
                let mut m = vec![("name", s(&name))];
                m.extend(layer);
                let ins = if ins.len() == 1 && rng.random_bool(0.5) { s(&ins[0]) } else { Y::Seq(ins.iter().map(|x| s(x)).collect()) };
                m.push(("inputs", ins));
                layers.push(map(m));
                nodes.push((name.clone(), w));
                unused.push(name);
            }
            let mut last = unused.clone();
            if last.len() > 1 {
                layers.push(map(vec![("name", s("joined")), ("type", s("Concatenate")), ("inputs", Y::Seq(last.iter().map(|x| s(x)).collect()))]));
                last = vec!["joined".into()];
            }
            let Y::Map(mut o) = out else { unreachable!() };
            o.insert(0, ("name".into(), s("out")));
            o.push(("inputs".into(), s(&last[0])));
            layers.push(Y::Map(o));
            let shapes = map(vec![("x", Y::Seq(vec![Y::Int(nodes[0].1)])), ("y", Y::Seq(vec![Y::Int(nodes[1].1)]))]);
            let mut m = vec![("inputs", shapes), ("layers", Y::Seq(layers))];
            if rng.random_bool(0.5) {
                m.push(("outputs", Y::Seq(vec![s("out")])));
            }
            map(m)
        };
        let mut top = vec![("model".to_string(), model)];
        if rng.random_bool(0.3) {
            top.insert(0, ("name".into(), s(pick(rng, &["net", "a_b-c.1", "x2"]))));
        }
        if rng.random_bool(0.7) {
            top.push(("training".into(), training));
        }
        top
    }

    pub fn spec(rng: &mut StdRng) -> String {
        if rng.random_bool(0.4) {
            let top = tame(rng);
            let mut e = Emitter { rng, out: String::new(), anchors: Vec::new(), tame: true };
            for (k, v) in &top {
                let v = e.block(v, 2);
                e.out.push_str(&format!("{k}:{v}"));
            }
            return e.out;
        }
        let mut top: Vec<(String, Y)> = Vec::new();
        if rng.random_bool(0.3) {
            top.push(("name".into(), name(rng)));
        }
        top.push(("model".into(), model(rng)));
        if rng.random_bool(0.5) {
            top.push(("training".into(), training(rng)));
        }
        if rng.random_bool(0.3) {
            top.push(("data".into(), data(rng)));
        }
        if rng.random_bool(0.05) {
            let i = rng.random_range(0..top.len());
            top[i].1 = deep(rng);
        }
        if rng.random_bool(0.03) {
            top.push(("extra".into(), deep(rng)));
        }
        let mut e = Emitter { rng, out: String::new(), anchors: Vec::new(), tame: false };
        if e.rng.random_bool(0.03) {
            let b = bomb(e.rng);
            e.out.push_str(&b);
        }
        if e.rng.random_bool(0.1) {
            let text = e.flow(&Y::Map(top));
            e.out.push_str(&text);
            e.out.push('\n');
        } else {
            for (k, v) in &top {
                let v = e.block(v, 2);
                e.out.push_str(&format!("{k}:{v}"));
            }
        }
        e.out
    }
}

/// fuzz/corpus/run/, made by the binary (see make_run_corpus).
mod corpus {
    use super::*;
    use serde_json::Value;

    fn nnrun(args: &[&str]) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_nnrun")).args(args).output().unwrap();
        assert!(out.status.success(), "nnrun {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Trains `spec` (a path relative to the repository) with `extra` flags.
    fn train(spec: &Path, extra: &[&str]) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!("nnrun-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut args = vec!["train", spec.to_str().unwrap(), "--out", dir.to_str().unwrap(), "--epochs", "1"];
        args.extend_from_slice(extra);
        nnrun(&args);
        std::fs::read(dir.join("model.safetensors")).unwrap()
    }

    /// The header's JSON and the tensor bytes.
    fn split(model: &[u8]) -> (Value, Vec<u8>) {
        let n = u64::from_le_bytes(model[..8].try_into().unwrap()) as usize;
        (serde_json::from_slice(&model[8..8 + n]).unwrap(), model[8 + n..].to_vec())
    }

    fn join(header: &Value, data: &[u8]) -> Vec<u8> {
        let h = serde_json::to_vec(header).unwrap();
        [&(h.len() as u64).to_le_bytes()[..], &h, data].concat()
    }

    /// A copy of `model` with one metadata value rewritten by `edit`.
    fn edit_meta(model: &[u8], key: &str, edit: impl FnOnce(&mut String)) -> Vec<u8> {
        let (mut header, data) = split(model);
        let v = header["__metadata__"][key].as_str().unwrap_or_else(|| panic!("no {key}")).to_string();
        let mut v2 = v.clone();
        edit(&mut v2);
        assert_ne!(v, v2, "{key}: the edit changed nothing");
        header["__metadata__"][key] = Value::String(v2);
        join(&header, &data)
    }

    /// A copy with the preprocessing JSON edited as a value.
    fn edit_prep(model: &[u8], edit: impl FnOnce(&mut Value)) -> Vec<u8> {
        edit_meta(model, "nnrun.preprocessing", |s| {
            let mut v: Value = serde_json::from_str(s).unwrap();
            edit(&mut v);
            *s = serde_json::to_string(&v).unwrap();
        })
    }

    fn seed(model: &[u8], csv: &str) -> Vec<u8> {
        [model, nnrun::fuzz::RUN_SEPARATOR, csv.as_bytes()].concat()
    }

    /// The header and the first `rows` rows of a data file.
    fn head(file: &str, rows: usize) -> String {
        let text = std::fs::read_to_string(root().join(file)).unwrap();
        text.lines().take(rows + 1).map(|l| format!("{l}\n")).collect()
    }

    pub fn make() {
        let out = root().join("fuzz/corpus/run");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let save = |name: &str, bytes: Vec<u8>| std::fs::write(out.join(name), bytes).unwrap();
        let tmp = std::env::temp_dir().join("nnrun-corpus-specs");
        std::fs::create_dir_all(&tmp).unwrap();
        let data = root().join("data");
        let spec = |name: &str, text: String| {
            let p = tmp.join(name);
            std::fs::write(&p, text.replace("{data}", data.to_str().unwrap())).unwrap();
            p
        };
        let specs = root().join("specs");

        // Three string classes, standardized; one row of each class.
        let iris = train(&specs.join("iris_named.yaml"), &[]);
        let iris_csv = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n5.1,3.5,1.4,0.2,setosa\n6.4,3.2,4.5,1.5,versicolor\n6.3,3.3,6.0,2.5,virginica\n";
        save("iris-categorical", seed(&iris, iris_csv));
        // Sparse labels, min-max scaling, empty cells filled with the mean.
        let iris_mean = train(
            &specs.join("iris_named.yaml"),
            &["--set", "training.loss=sparse_categorical_crossentropy", "--set", "data.normalize=minmax", "--set", "data.missing=mean"],
        );
        save(
            "iris-sparse-minmax-mean",
            seed(&iris_mean, "species,petal_width_cm,petal_length_cm,sepal_width_cm,sepal_length_cm\nsetosa,0.2,,3.5,5.1\nvirginica,2.5,6.0,3.3,\n"),
        );
        // Binary classifier with a sigmoid output (30 features).
        let bc = train(&specs.join("breast_cancer.yaml"), &[]);
        save("breast-cancer-binary", seed(&bc, &head("data/tabular/breast_cancer.csv", 2)));
        // Regression in target units.
        let diabetes = spec(
            "diabetes.yaml",
            "name: diabetes\nmodel: {input_shape: [10], layers: [{type: Dense, units: 4, activation: relu}, {type: Dense, units: 1}]}\n\
             data: {train: '{data}/tabular/diabetes.csv', target: target, normalize: standard}\ntraining: {loss: mse, metrics: [mae]}\n"
                .into(),
        );
        let reg = train(&diabetes, &[]);
        save("diabetes-regression", seed(&reg, &head("data/tabular/diabetes.csv", 2)));
        // Windows of 12 over one column: 13 rows make one forecast with a target.
        let sun = train(&specs.join("sunspots_lstm.yaml"), &[]);
        save("sunspots-lstm-window", seed(&sun, &head("data/timeseries/sunspots.csv", 14)));
        // Two inputs, two outputs (sparse and binary).
        let dag = train(&specs.join("digits_dag.yaml"), &["--limit", "200"]);
        save("digits-dag-two-outputs", seed(&dag, &head("data/tabular/digits_dag.csv", 2)));
        // Convolutions, pooling and batch normalization on 8x8 images from CSV columns.
        let conv = spec(
            "digits_conv.yaml",
            "name: digits_conv\nmodel:\n  input_shape: [8, 8, 1]\n  layers:\n    - {type: Conv2D, filters: 4, kernel_size: 3, padding: same, activation: relu}\n    \
             - {type: BatchNormalization}\n    - {type: MaxPooling2D, pool_size: 2}\n    - {type: Conv2D, filters: 4, kernel_size: 2}\n    \
             - {type: GlobalAveragePooling2D}\n    - {type: Dense, units: 10, activation: softmax}\n\
             data: {train: '{data}/tabular/digits_dag.csv', features: 'p0:p63', target: target, scale: 1/16}\n\
             training: {loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
                .into(),
        );
        let conv_model = train(&conv, &["--limit", "200"]);
        save("digits-conv2d-batchnorm", seed(&conv_model, &head("data/tabular/digits_dag.csv", 2)));
        // Rows of 8 as time steps: Conv1D, GRU, a Bidirectional LSTM.
        let rnn = spec(
            "digits_rnn.yaml",
            "name: digits_rnn\nmodel:\n  input_shape: [8, 8]\n  layers:\n    - {type: Conv1D, filters: 4, kernel_size: 3, padding: causal}\n    \
             - {type: GRU, units: 4, return_sequences: true}\n    - {type: Bidirectional, layer: {type: LSTM, units: 3}}\n    \
             - {type: Dense, units: 10, activation: softmax}\n\
             data: {train: '{data}/tabular/digits_dag.csv', features: 'p0:p63', target: target, scale: 1/16}\n\
             training: {loss: sparse_categorical_crossentropy}\n"
                .into(),
        );
        let rnn_model = train(&rnn, &["--limit", "200"]);
        save("digits-conv1d-gru-bilstm", seed(&rnn_model, &head("data/tabular/digits_dag.csv", 2)));

        // Edited copies every command must refuse (`bad-model-*`): the loader
        // checks what the file claims against its graph.
        save("bad-model-prep-short-shift", seed(&edit_prep(&iris, |p| drop(p["inputs"][0]["shift"].as_array_mut().unwrap().pop())), iris_csv));
        save("bad-model-prep-short-div", seed(&edit_prep(&iris, |p| p["inputs"][0]["div"] = Value::Array(vec![])), iris_csv));
        save("bad-model-prep-no-inputs", seed(&edit_prep(&iris, |p| p["inputs"] = Value::Array(vec![])), iris_csv));
        save("bad-model-prep-no-outputs", seed(&edit_prep(&iris, |p| p["outputs"] = Value::Array(vec![])), iris_csv));
        save("bad-model-prep-short-features", seed(&edit_prep(&iris, |p| drop(p["inputs"][0]["features"].as_array_mut().unwrap().pop())), iris_csv));
        // Fewer class names than units: what `train --allow-missing-classes` writes.
        save("any-model-prep-one-class", seed(&edit_prep(&iris, |p| p["outputs"][0]["classes"] = serde_json::json!(["setosa"])), iris_csv));
        save("bad-model-prep-window-zero", seed(&edit_prep(&sun, |p| p["window"]["size"] = Value::from(0)), &head("data/timeseries/sunspots.csv", 14)));
        save("bad-model-prep-window-huge", seed(&edit_prep(&sun, |p| p["window"]["size"] = Value::from(u64::MAX)), &head("data/timeseries/sunspots.csv", 14)));
        save("any-model-prep-zero-div", seed(&edit_prep(&iris, |p| p["inputs"][0]["div"][0] = Value::from(0.0)), iris_csv));
        save(
            "bad-model-spec-layer-without-type",
            seed(&edit_meta(&iris, "nnrun.spec", |s| *s = s.replacen("- type: Dense\n      units: 16", "- units: 16", 1)), iris_csv),
        );
        save(
            "bad-model-spec-bare-layer-name",
            seed(&edit_meta(&iris, "nnrun.spec", |s| *s = "model:\n  input_shape: [4]\n  layers: [Dense]\n".into()), iris_csv),
        );
        let bomb: String = (1..9).map(|i| format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 9].join(", "))).collect();
        save("bad-model-spec-alias-bomb", seed(&edit_meta(&iris, "nnrun.spec", |s| *s = format!("a0: &a0 [x, x, x, x, x, x, x, x, x]\n{bomb}{s}")), iris_csv));
        save("bad-model-spec-huge-units", seed(&edit_meta(&iris, "nnrun.spec", |s| *s = s.replacen("units: 16", "units: 9223372036854775807", 1)), iris_csv));
        save("bad-model-spec-other-model", seed(&edit_meta(&iris, "nnrun.spec", |s| *s = s.replacen("units: 16", "units: 17", 1)), iris_csv));
        save("bad-model-meta-format-99", seed(&edit_meta(&iris, "nnrun.format_version", |s| *s = "99".into()), iris_csv));
        // Overlapping tensors: the second kernel's bytes start inside the first.
        let (mut h, d) = split(&iris);
        h["dense_1.kernel"]["data_offsets"] = serde_json::json!([0, 192]);
        save("bad-model-tensors-overlap", seed(&join(&h, &d), iris_csv));
        let (mut h, d) = split(&iris);
        h["dense.kernel"]["shape"] = serde_json::json!([4294967296u64, 4294967296u64]);
        save("bad-model-tensor-shape-overflow", seed(&join(&h, &d), iris_csv));
        // Bad CSV rows for a good model.
        save("bad-csv-missing-column", seed(&iris, "sepal_length_cm,sepal_width_cm,petal_length_cm,species\n5.1,3.5,1.4,setosa\n"));
        save("bad-csv-not-a-number", seed(&iris, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n5.1,abc,1.4,0.2,setosa\n"));
        save("bad-csv-nan", seed(&iris, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n5.1,NaN,1.4,0.2,setosa\n"));
        save("bad-csv-inf", seed(&iris, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n5.1,1e999,1.4,0.2,setosa\n"));
        save("bad-csv-unknown-class", seed(&iris, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n5.1,3.5,1.4,0.2,rose\n"));
        save("bad-csv-empty", seed(&iris, ""));
        save("any-csv-header-only", seed(&iris, "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm,species\n"));
        save("bad-no-separator", iris.clone());
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
