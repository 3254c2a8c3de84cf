//! Data-parallel training under `mpirun` (cargo feature `mpi`; CI runs
//! `cargo test --features mpi --test mpi` with Open MPI installed). Without
//! the feature this file is empty: a default build needs no MPI.
#![cfg(feature = "mpi")]

mod common;

use common::temp;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SPEC: &str = "tests/data/mpi_penguins.yaml";

/// Final weights of N processes against one: the same up to the order of
/// the float additions in the allreduce.
const WEIGHT_TOLERANCE: f32 = 1e-5;

fn mpirun(n: usize) -> Command {
    let mut c = Command::new("mpirun");
    // As root in CI; more processes than the 2 cores there.
    c.args(["--allow-run-as-root", "--oversubscribe", "-np", &n.to_string()]);
    c.arg(assert_cmd::cargo::cargo_bin("nnrun"));
    c.env("NO_COLOR", "1");
    c
}

/// `nnrun train ARGS` as N processes of mpirun (1: a plain process).
fn train(n: usize, args: &[&str]) -> (i32, String, String) {
    let out = if n == 1 {
        Command::new(assert_cmd::cargo::cargo_bin("nnrun")).arg("train").args(args).env("NO_COLOR", "1").output()
    } else {
        mpirun(n).arg("train").args(args).output()
    }
    .expect("mpirun must be installed for the mpi tests (Debian: openmpi-bin)");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn trained(n: usize, name: &str, extra: &[&str]) -> (std::path::PathBuf, String) {
    let dir = temp(name);
    let mut args = vec![SPEC, "--out", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = train(n, &args);
    assert_eq!(code, 0, "{n} processes\nstdout:\n{stdout}\nstderr:\n{stderr}");
    (dir, stdout)
}

fn weights(dir: &Path) -> HashMap<String, Vec<f32>> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, t)| t.dtype() == safetensors::Dtype::F32)
        .map(|(name, t)| (name, t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()))
        .collect()
}

fn max_difference(a: &Path, b: &Path) -> f32 {
    let (a, b) = (weights(a), weights(b));
    assert!(!a.is_empty());
    let mut names: Vec<_> = a.keys().collect();
    names.sort();
    assert_eq!(names, {
        let mut n: Vec<_> = b.keys().collect();
        n.sort();
        n
    });
    a.iter().flat_map(|(k, x)| x.iter().zip(&b[k]).map(|(x, y)| (x - y).abs())).fold(0.0, f32::max)
}

/// The values of the `Test - test_loss: 0.0123 - ...` line.
fn test_metrics(stdout: &str) -> Vec<(String, f64)> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("Test - ")).unwrap_or_else(|| panic!("no test line:\n{stdout}"));
    line.split(" - ").map(|kv| kv.split_once(": ").unwrap()).map(|(k, v)| (k.to_string(), v.parse().unwrap())).collect()
}

#[test]
fn two_and_three_processes_train_what_one_process_trains() {
    let (one, out1) = trained(1, "mpi-one", &[]);
    for n in [2, 3] {
        let (dir, out) = trained(n, &format!("mpi-{n}"), &[]);
        let d = max_difference(&one, &dir);
        eprintln!("{n} processes: weights differ by at most {d:e}");
        assert!(d <= WEIGHT_TOLERANCE, "{n} processes: weights differ by {d}");
        // The same test metrics to 3 decimals, and the same per-epoch history.
        for ((k1, v1), (k, v)) in test_metrics(&out1).into_iter().zip(test_metrics(&out)) {
            assert_eq!(k1, k);
            assert!((v1 - v).abs() < 5e-4, "{k}: {v1} with one process, {v} with {n}");
        }
        let history = |d: &Path| std::fs::read_to_string(d.join("history.csv")).unwrap();
        assert_eq!(history(&one).lines().count(), history(&dir).lines().count());
        // Rank 0 alone speaks, and says how the run was split.
        assert_eq!(out.matches("Training 'mpi_penguins'").count(), 1, "{out}");
        assert_eq!(out.matches("Epoch 6/6").count(), 1, "{out}");
        assert!(out.contains(&format!("Data-parallel over {n} processes (Open MPI")), "{out}");
        assert!(out.contains(&format!("data-parallel over {n} processes: 90 allreduces of")), "{out}");
    }
    assert!(!out1.contains("ata-parallel"), "{out1}");
}

#[test]
fn a_distributed_run_resumes_on_another_number_of_processes() {
    let (straight, _) = trained(1, "mpi-straight", &["--epochs", "4"]);
    let (dir, _) = trained(2, "mpi-first-half", &["--epochs", "2"]);
    let (code, out, err) = train(3, &[SPEC, "--resume", dir.to_str().unwrap(), "--epochs", "4"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Resuming") && out.contains("after epoch 2"), "{out}");
    let d = max_difference(&straight, &dir);
    assert!(d <= WEIGHT_TOLERANCE, "resumed on 3 processes after 2 epochs on 2: weights differ by {d}");
}

#[test]
fn the_version_names_the_mpi_library() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("nnrun")).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("nnrun 0.1.0 (MPI support: Open MPI v"), "{text}");
}

/// Starts a long run of 2 processes; returns it once the first epoch is done.
fn long_run(dir: &Path) -> std::process::Child {
    let mut child = mpirun(2)
        .args(["train", "specs/iris_named.yaml", "--epochs", "100000", "--out", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !dir.join("checkpoint.safetensors").is_file() {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint after a minute");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Waits at most `limit` for the job to end; its exit code and stderr.
fn ends_within(mut child: std::process::Child, limit: Duration) -> (i32, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the job still runs {limit:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The nnrun processes of the run writing into `dir`, with their MPI ranks.
fn ranks(dir: &Path) -> Vec<(u32, usize)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd);
        if !cmd.starts_with(assert_cmd::cargo::cargo_bin("nnrun").to_str().unwrap()) || !cmd.contains(dir.to_str().unwrap()) {
            continue;
        }
        let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let rank = String::from_utf8_lossy(&env).split('\0').find_map(|v| v.strip_prefix("OMPI_COMM_WORLD_RANK=")?.parse().ok());
        if let Some(rank) = rank {
            found.push((pid, rank));
        }
    }
    found
}

/// `kill -SIGNAL PID`.
fn signal(name: &str, pid: u32) {
    assert!(Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap().success());
}

fn resumes(dir: &Path) {
    let (code, out, err) = train(1, &["specs/iris_named.yaml", "--resume", dir.to_str().unwrap(), "--epochs", "100000", "--max-steps", "1"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Resuming"), "{out}");
}

#[test]
fn ctrl_c_on_mpirun_ends_every_process_and_the_checkpoint_resumes() {
    let dir = temp("mpi-ctrl-c");
    let child = long_run(&dir);
    // mpirun turns Ctrl-C into SIGTERM to every process, then SIGKILL.
    signal("INT", child.id());
    let (code, _) = ends_within(child, Duration::from_secs(15));
    assert_ne!(code, 0);
    assert!(ranks(&dir).is_empty(), "a process outlived mpirun");
    resumes(&dir);
}

#[test]
fn sigterm_to_the_processes_stops_them_together_with_the_message() {
    // What Slurm's scancel does: SIGTERM to every task.
    let dir = temp("mpi-term");
    let child = long_run(&dir);
    let found = ranks(&dir);
    assert_eq!(found.len(), 2, "{found:?}");
    for (pid, _) in &found {
        signal("TERM", *pid);
    }
    let (_, err) = ends_within(child, Duration::from_secs(15));
    assert_eq!(err.matches("interrupted: resume with nnrun train specs/iris_named.yaml --resume").count(), 1, "{err}");
    resumes(&dir);
}

#[test]
fn a_process_that_dies_ends_the_job() {
    let dir = temp("mpi-dead");
    let child = long_run(&dir);
    let found = ranks(&dir);
    let (pid, _) = found.iter().find(|(_, r)| *r == 1).unwrap_or_else(|| panic!("no rank 1 in {found:?}"));
    signal("KILL", *pid);
    let (code, err) = ends_within(child, Duration::from_secs(15));
    assert_ne!(code, 0);
    assert!(err.contains("process rank 1") && err.contains("signal 9"), "{err}");
    resumes(&dir);
}

#[test]
fn an_error_is_shown_once_and_ends_every_process() {
    let (code, out, err) = train(2, &[SPEC, "--set", "training.optimizer.learning_rate=-1", "--out", temp("mpi-error").to_str().unwrap()]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
}
