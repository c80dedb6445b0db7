//! The designs of CLAIMS.md, each a list of claims over a design file in
//! `fixtures/designs/`. The topology comes from the design file; the claims
//! here say how each sentence of the design is proven.

use crate::claim::Claim;
use crate::error::{Error, Result};

pub mod distributed;
pub mod simple_web;

/// Every design in the catalogue, in CLAIMS.md order, and whether it is built yet.
pub const CATALOGUE: &[(&str, bool)] = &[
    ("simple_web", true),
    ("distributed", false),
    ("secured_monitored", false),
    ("scale_up", false),
];

/// The claims of `design`, in catalogue order.
pub fn claims(design: &str) -> Result<Vec<Claim>> {
    match design {
        "simple_web" => Ok(simple_web::claims()),
        "distributed" => Ok(distributed::claims()),
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
