//! Which instruction set the kernels run, decided at run time: the binary is
//! built for baseline x86-64 (never `-C target-cpu=native`), so one build
//! runs on every machine and takes AVX-512 where the CPU has it.
//!
//! `NNRUN_ISA=portable|avx2|avx512` caps the level (benchmarks compare the
//! paths on one machine); it can lower the level, never raise it past what
//! the CPU has. Tests force each level in turn with [`with_level`], so the
//! AVX2 path stays tested on an AVX-512 machine.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// A kernel path, from slowest to fastest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Plain Rust (auto-vectorized for baseline x86-64) and the gemm crate.
    Portable,
    /// AVX2 + FMA, 8 lanes.
    Avx2,
    /// AVX-512F (+VL/BW/DQ), 16 lanes.
    Avx512,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Portable => "portable",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [Level::Portable, Level::Avx2, Level::Avx512].into_iter().find(|l| l.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// The best level this CPU runs (detected once).
pub fn detected() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx512bw") && has!("avx512dq") && has!("fma") && has!("avx2") {
                return Level::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return Level::Avx2;
            }
        }
        Level::Portable
    })
}

/// Every level this CPU runs, slowest first: what tests iterate over.
pub fn runnable() -> Vec<Level> {
    [Level::Portable, Level::Avx2, Level::Avx512].into_iter().filter(|&l| l <= detected()).collect()
}

/// The process-wide level: the detected one, capped by `NNRUN_ISA`.
fn global() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let best = detected();
        match std::env::var("NNRUN_ISA") {
            Ok(s) => match Level::parse(&s) {
                Some(l) => l.min(best),
                None => {
                    eprintln!("warning: NNRUN_ISA={s:?} is not one of portable, avx2, avx512; using {}", best.name());
                    best
                }
            },
            Err(_) => best,
        }
    })
}

thread_local! {
    static FORCED: Cell<Option<Level>> = const { Cell::new(None) };
}

/// The level a kernel called on this thread runs. Kernels read it once per
/// call, on the calling thread, and hand it to their pool parts.
pub fn level() -> Level {
    FORCED.with(|f| f.get()).unwrap_or_else(global)
}

/// Runs `f` with this thread's kernels at `level` (capped at what the CPU
/// runs): tests and benchmarks force each path in turn.
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Level>);
    impl Drop for Restore {
        fn drop(&mut self) {
            FORCED.with(|f| f.set(self.0));
        }
    }
    let _restore = Restore(FORCED.with(|f| f.replace(Some(level.min(detected())))));
    f()
}

/// Runs `f` inside a function compiled with `level`'s features (capped at
/// what the CPU runs), so the loops the compiler vectorizes in `f` use that
/// level's vector width. Pass an `#[inline(always)]` closure: one that is not
/// inlined stays baseline x86-64. The level is an argument, not read here,
/// because pool threads don't see a test's [`with_level`].
#[inline(always)]
pub fn at_level<R>(level: Level, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match level.min(detected()) {
            // SAFETY: capped at detected(), which reports a level only where the CPU has its features.
            Level::Avx512 => return unsafe { avx512(f) },
            // SAFETY: as above.
            Level::Avx2 => return unsafe { avx2(f) },
            Level::Portable => {}
        }
    }
    f()
}

/// Whether this thread's kernels can multiply in bf16 (AVX512_BF16's
/// `vdpbf16ps`, on the AVX-512 level).
pub fn bf16() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    let has = *HAS.get_or_init(|| std::arch::is_x86_feature_detected!("avx512bf16"));
    #[cfg(not(target_arch = "x86_64"))]
    let has = *HAS.get_or_init(|| false);
    has && level() == Level::Avx512
}

/// `training.mixed_precision: mixed_bfloat16` for this process: every
/// matrix product through `gemm::matmul` rounds its inputs to bf16 and
/// accumulates in f32 (the weights, their gradients and the optimizer stay
/// f32). One process trains one model, so the switch is process-wide.
static MIXED_BF16: AtomicBool = AtomicBool::new(false);

pub fn set_mixed_bf16(on: bool) {
    MIXED_BF16.store(on, Ordering::Relaxed);
}

pub fn mixed_bf16() -> bool {
    MIXED_BF16.load(Ordering::Relaxed)
}

/// What `nnrun --version` and benchmarks print.
pub fn describe() -> String {
    let (d, l) = (detected(), level());
    if d == l { format!("cpu kernels: {}", l.name()) } else { format!("cpu kernels: {} (NNRUN_ISA; the CPU has {})", l.name(), d.name()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forcing_is_per_thread_and_capped() {
        let outer = level();
        with_level(Level::Portable, || {
            assert_eq!(level(), Level::Portable);
            with_level(Level::Avx512, || assert_eq!(level(), Level::Avx512.min(detected())));
            assert_eq!(level(), Level::Portable);
            // Another thread is not affected.
            std::thread::spawn(move || assert_eq!(level(), outer)).join().unwrap();
        });
        assert_eq!(level(), outer);
        assert_eq!(runnable().first(), Some(&Level::Portable));
        assert_eq!(runnable().last(), Some(&detected()));
    }

    #[test]
    fn names_parse_back() {
        for l in [Level::Portable, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::parse(l.name()), Some(l));
        }
        assert_eq!(Level::parse(" AVX2 "), Some(Level::Avx2));
        assert_eq!(Level::parse("sse"), None);
    }
}
