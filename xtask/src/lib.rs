//! Project automation for the experiments workspace (`cargo xtask ...`).

pub mod bench;
pub mod conformance;
pub mod decider;
pub mod fuzz;
pub mod serve_bench;
pub mod serve_process;
pub mod services;
pub mod sinks;

/// The README's Rust snippets, compiled as doctests (`cargo test -p xtask --doc`), so the
/// front page cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
