//! Project automation for the experiments workspace (`cargo xtask ...`).

pub mod bench;
pub mod conformance;
pub mod decider;
pub mod fuzz;
pub mod services;
pub mod sinks;
