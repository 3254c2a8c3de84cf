//! The MPI backend of data-parallel training (cargo feature `mpi`, rsmpi
//! over the system's Open MPI or MPICH): `Collective` as MPI_Allreduce and
//! MPI_Bcast on MPI_COMM_WORLD.

use super::distributed::Collective;
use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::{Root, *};

/// An initialized MPI world; MPI_Finalize when dropped.
pub struct Mpi {
    world: SimpleCommunicator,
    _universe: mpi::environment::Universe,
}

// SAFETY: MPI is initialized with MPI_THREAD_SERIALIZED (checked in `init`):
// any thread may call it as long as no two do so at once. The CLI calls MPI
// from one thread at a time: the main thread initializes and finalizes it,
// and while the fit thread runs (and alone calls the collectives) the main
// thread waits for it in a join.
unsafe impl Sync for Mpi {}
// SAFETY: as above; the handles are plain MPI_Comm values valid in every thread.
unsafe impl Send for Mpi {}

/// The MPI library's name and version ("Open MPI v4.1.4", "MPICH
/// Version: 4.0.2"): the start of its own description, which MPI allows
/// asking for before MPI_Init.
pub fn library() -> String {
    let v = mpi::environment::library_version().unwrap_or_default();
    let first = v.lines().next().unwrap_or("").split(',').next().unwrap_or("");
    let name = first.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() { "an unnamed MPI library".into() } else { name }
}

impl Mpi {
    /// MPI_Init_thread with MPI_THREAD_SERIALIZED: the fit runs on a thread
    /// of its own, not the one that initialized MPI.
    pub fn init() -> Result<Mpi, String> {
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Serialized).ok_or_else(|| "MPI was already initialized".to_string())?;
        if threading < mpi::Threading::Serialized {
            return Err(format!("{} offers MPI threading level {threading:?}; nnrun needs Serialized (the fit runs on its own thread)", library()));
        }
        Ok(Mpi { world: universe.world(), _universe: universe })
    }

    /// Waits until every process got here (MPI_Barrier).
    pub fn barrier(&self) {
        self.world.barrier();
    }

    /// Ends every process of the job (MPI_Abort) with `code`: a process
    /// that failed alone must not leave the others waiting in an allreduce.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

fn len_check(send: usize, recv: usize) -> Result<(), String> {
    if send == recv { Ok(()) } else { Err(format!("allreduce of {send} values into {recv}")) }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        // MPI ranks are 0..size, never negative.
        usize::try_from(self.world.rank()).unwrap_or(0)
    }
    fn size(&self) -> usize {
        usize::try_from(self.world.size()).unwrap_or(1)
    }
    // rsmpi's collectives abort the job on an MPI error (MPI_ERRORS_ARE_FATAL),
    // so the only error left to report is a caller's length mismatch.
    fn sum_f32(&self, send: &[f32], recv: &mut [f32]) -> Result<(), String> {
        len_check(send.len(), recv.len())?;
        self.world.all_reduce_into(send, recv, SystemOperation::sum());
        Ok(())
    }
    fn sum_f64(&self, send: &[f64], recv: &mut [f64]) -> Result<(), String> {
        len_check(send.len(), recv.len())?;
        self.world.all_reduce_into(send, recv, SystemOperation::sum());
        Ok(())
    }
    fn broadcast_f32(&self, buf: &mut [f32]) -> Result<(), String> {
        self.world.process_at_rank(0).broadcast_into(buf);
        Ok(())
    }
    fn broadcast_f64(&self, buf: &mut [f64]) -> Result<(), String> {
        self.world.process_at_rank(0).broadcast_into(buf);
        Ok(())
    }
}
