//! Panics on demand, for the fault suite.
//!
//! Compiled in only with the `failpoints` feature, which builds that include
//! the fault suite's tests turn on (`faults/Cargo.toml`, so `cargo test
//! --workspace`); the binaries the Dockerfile builds never have it, and
//! where it is compiled in, it does nothing unless armed. A failpoint is
//! armed by an environment variable holding a marker: a job whose analysis
//! contains the marker panics there, every other job runs as usual. This
//! lets the suite show, over the real worker binary, what a panic does at
//! the two places one can happen.

/// Where a failpoint panics.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// In the job handler, before the engine runs: the queue's apalis
    /// service catches it (`CRUNCH_FAILPOINT_HANDLER_PANIC`).
    Handler,
    /// Inside the engine's run, on the engine's own runtime, where a
    /// panicking DataFusion operator would surface
    /// (`CRUNCH_FAILPOINT_ENGINE_PANIC`).
    Engine,
}

impl Place {
    /// The environment variable that arms the failpoint.
    pub fn variable(self) -> &'static str {
        match self {
            Place::Handler => "CRUNCH_FAILPOINT_HANDLER_PANIC",
            Place::Engine => "CRUNCH_FAILPOINT_ENGINE_PANIC",
        }
    }
}

/// Panics when the failpoint at `place` is armed and `analysis` (as
/// debug-printed) contains its marker.
pub fn panic_if_marked(place: Place, analysis: &impl std::fmt::Debug) {
    let Ok(marker) = std::env::var(place.variable()) else {
        return;
    };
    if !marker.is_empty() && format!("{analysis:?}").contains(&marker) {
        panic!("failpoint {}: the job carries {marker:?}", place.variable());
    }
}
