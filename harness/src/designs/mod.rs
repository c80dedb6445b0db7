//! The designs of CLAIMS.md, each a list of claims over a design file in
//! `fixtures/designs/`. The topology comes from the design file; the claims
//! here say how each sentence of the design is proven.

use crate::claim::{Claim, Failure};
use crate::error::{Error, Result};
use crate::probe;

/// Turns `async fn check(&Stack) -> CheckResult` into a [`crate::claim::Check`].
/// Defined before the design modules so each can use it.
macro_rules! check {
    ($f:ident) => {{
        fn boxed(stack: &Stack) -> futures::future::BoxFuture<'_, CheckResult> {
            $f(stack).boxed()
        }
        boxed as Check
    }};
}

pub mod distributed;
pub mod scale_up;
pub mod secured_monitored;
pub mod simple_web;

/// Every design in the catalogue, in CLAIMS.md order, and whether it is built yet.
pub const CATALOGUE: &[(&str, bool)] = &[
    ("simple_web", true),
    ("distributed", false),
    ("secured_monitored", true),
    ("scale_up", true),
];

/// The claims of `design`, in catalogue order.
pub fn claims(design: &str) -> Result<Vec<Claim>> {
    match design {
        "simple_web" => Ok(simple_web::claims()),
        "distributed" => Ok(distributed::claims()),
        "scale_up" => Ok(scale_up::claims()),
        "secured_monitored" => Ok(secured_monitored::claims()),
        other => {
            let known = CATALOGUE
                .iter()
                .filter(|(_, built)| *built)
                .map(|(d, _)| *d)
                .collect::<Vec<_>>()
                .join(", ");
            if CATALOGUE.iter().any(|(d, _)| *d == other) {
                Err(Error::NotImplemented {
                    design: other.into(),
                    known,
                })
            } else {
                Err(Error::Unknown {
                    kind: "design",
                    name: other.into(),
                    known,
                })
            }
        }
    }
}

/// A response header as text ("" when absent).
fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A failed request as a claim failure, with the whole error chain.
fn req_failed(path: &str, e: &reqwest::Error) -> Failure {
    Failure::new(format!("GET {path} failed: {}", probe::error_chain(e)), "")
}
