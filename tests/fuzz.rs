//! The fuzz targets' corpus seeds (fuzz/corpus/<target>/) and seeded
//! mutations of them, run as ordinary tests: no input may panic, allocate
//! absurdly, or fail without saying why. `bad-*` seeds must be refused;
//! every other seed must load. A failing input is saved under
//! target/fuzz-failures/ so `cargo fuzz run <target> <file>` can replay it.

#![deny(clippy::undocumented_unsafe_blocks)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Records the largest single allocation, so a loader that trusts a length
/// field from the file (and asks for gigabytes) fails the test.
struct PeakAlloc;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds GlobalAlloc's contract; recording a size allocates nothing.
unsafe impl GlobalAlloc for PeakAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        // SAFETY: our caller's guarantees for `alloc` (non-zero size), passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: p came from System (every block here does) with layout l.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LARGEST.fetch_max(n, Ordering::Relaxed);
        // SAFETY: p came from System with layout l; n is our caller's valid new size.
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;
/// Well above anything the seeds need, far below what a lying header asks.
const MAX_ALLOC: usize = 256 << 20;

type Target = fn(&[u8]) -> Result<(), String>;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
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
    let result = catch_unwind(AssertUnwindSafe(|| f(input)));
    let largest = LARGEST.load(Ordering::Relaxed);
    let problem = match &result {
        Err(_) => Some("panicked".to_string()),
        Ok(_) if largest > MAX_ALLOC => Some(format!("allocated {largest} bytes at once")),
        Ok(Err(e)) if e.trim().is_empty() => Some("failed with an empty message".into()),
        Ok(Err(e)) if e.starts_with("fuzz harness") => Some(e.clone()),
        _ => None,
    };
    if let Some(p) = problem {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
        std::fs::create_dir_all(&dir).unwrap();
        let saved = dir.join(format!("{target}-{name}"));
        std::fs::write(&saved, input).unwrap();
        panic!("{target}: input {name} {p}; saved as {}", saved.display());
    }
    result.unwrap()
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
                    let rep: &[u8] = [&b"99999999999999999999"[..], b"4294967296", b"-1", b"1e999", b"NaN", b"0"][rng.random_range(0..6)];
                    b.splice(i..i + 1, rep.iter().copied());
                }
            }
            5 => {
                // Duplicate a chunk (repeated records, header keys).
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
                let special = [0u8, 0xff, b'"', b',', b'\n', b'{', b'}', 0x80];
                if let Some(x) = b.get_mut(i) {
                    *x = special[rng.random_range(0..special.len())];
                }
            }
        }
    }
    b
}

fn fuzz(target: &str, f: Target, mutations: usize) {
    let seeds = seeds(target);
    for (name, bytes) in &seeds {
        let r = run(target, f, name, bytes);
        if name.starts_with("bad-") {
            assert!(r.is_err(), "{target}: seed {name} should be refused");
        } else if let Err(e) = r {
            panic!("{target}: seed {name} should load, got: {e}");
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
    // The mutations must reach past the first check, or this tests nothing.
    assert!(refused > 0 && loaded + refused == mutations, "{target}: {loaded} loaded, {refused} refused");
}

#[test]
fn model_file_corpus() {
    fuzz("model_file", nnrun::fuzz::model_file, 1000);
}

#[test]
fn checkpoint_corpus() {
    fuzz("checkpoint", nnrun::fuzz::checkpoint, 1000);
}

#[test]
fn idx_corpus() {
    fuzz("idx", nnrun::fuzz::idx, 2000);
}

#[test]
fn csv_corpus() {
    fuzz("csv", nnrun::fuzz::csv, 2000);
}
