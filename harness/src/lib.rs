//! stackproof proves, with real servers, that a web infrastructure design
//! does what its text says.
//!
//! A design is a folder ([`design`]): `design.toml` names networks, hosts
//! and the services on each host, `claims.toml` its sentences, each a check
//! kind of the library ([`kinds`]) with its parameters. [`design::Design::load`]
//! reads and checks it all; [`design::Design::start`] builds it as
//! containers from an image made locally from Debian 12 packages, with the
//! run's own DNS server, CA and client; [`claim::run`] measures one claim
//! on the running servers and reports its evidence:
//!
//! ```no_run
//! # async fn demo() -> Result<(), stackproof::error::Error> {
//! use stackproof::{claim, design::Design};
//! let design = Design::load("simple_web")?; // or a folder: "./my_design"
//! let stack = design.start().await?;
//! for c in &design.claims {
//!     let outcome = claim::run(&stack, c).await;
//!     println!("{}", stackproof::report::checklist_line(&outcome));
//! }
//! # Ok(()) }
//! ```
//!
//! Every claim can fail: a design folder's `mutants/` holds broken variants,
//! and each suite proves its mutant makes its claim fail. Everything a run
//! creates is labelled with its run id and removed when the stack is
//! dropped, on panic, and on Ctrl-C; a start sweeps what killed runs left.

// Errors and failures carry their evidence (the server's own words, log
// lines) by value: each is built once, on a path that waits on containers,
// so its size costs nothing worth a box at every construction site.
#![allow(clippy::result_large_err)]

pub mod capture;
pub mod catalogue;
pub mod claim;
pub mod client;
pub mod compose;
pub mod config;
pub mod design;
pub mod dns;
pub mod docker;
pub mod error;
pub mod fixtures;
pub mod grade;
pub mod graph;
pub mod host;
pub mod html;
pub mod images;
pub mod kinds;
pub mod measure;
pub mod merge;
pub mod mutant;
pub mod network;
pub mod pki;
pub mod probe;
pub mod reach;
pub mod recorder;
pub mod relay;
pub mod report;
pub mod run;
pub mod skeleton;
pub mod spec;
pub mod stack;
pub mod suite;
pub mod tempdir;
