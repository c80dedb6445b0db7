//! stackproof proves, with real servers, that a web infrastructure design
//! does what its text says.
//!
//! A design (`fixtures/designs/<name>/design.toml`) names networks and hosts and the
//! services on each host; [`stack::Stack::start`] builds it as containers
//! from an image made locally from Debian 12 packages, with the run's own
//! DNS server, CA and client. Each sentence of the design is a
//! [`claim::Claim`] with a stable ID from CLAIMS.md and a check that
//! measures the running servers and reports its evidence:
//!
//! ```no_run
//! # async fn demo() -> Result<(), stackproof::error::Error> {
//! use stackproof::{claim, designs, fixtures::Fixtures, stack::Stack};
//! let stack = Stack::start("simple_web", Fixtures::from_env()?).await?;
//! for c in designs::claims("simple_web")? {
//!     let outcome = claim::run(&stack, &c).await;
//!     println!("{}", stackproof::report::checklist_line(&outcome));
//! }
//! # Ok(()) }
//! ```
//!
//! Every claim can fail: `fixtures/designs/<design>/mutants/` holds broken variants,
//! and each suite proves its mutant makes its claim fail. Everything a run
//! creates is labelled with its run id and removed when the stack is
//! dropped, on panic, and on Ctrl-C; a start sweeps what killed runs left.

pub mod capture;
pub mod claim;
pub mod client;
pub mod design;
pub mod designs;
pub mod dns;
pub mod docker;
pub mod error;
pub mod fixtures;
pub mod host;
pub mod images;
pub mod kinds;
pub mod measure;
pub mod mutant;
pub mod network;
pub mod pki;
pub mod probe;
pub mod reach;
pub mod report;
pub mod spec;
pub mod stack;
pub mod suite;
