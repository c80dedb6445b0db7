//! The designs of CLAIMS.md, each a list of claims over a design file in
//! `fixtures/designs/`. The topology comes from the design file; the claims
//! here say how each sentence of the design is proven.

use crate::claim::Claim;
use crate::error::Result;
pub(crate) use crate::kinds::common::{header, prometheus, req_failed, wait_for, www_addresses};

/// Turns `async fn check(&Stack) -> CheckResult` into a [`crate::claim::Check`].
/// Defined before the design modules so each can use it.
macro_rules! check {
    ($f:ident) => {{
        fn boxed<'a>(
            stack: &'a Stack,
            _: &'a crate::kinds::Params,
        ) -> futures::future::BoxFuture<'a, CheckResult> {
            $f(stack).boxed()
        }
        boxed as crate::kinds::KindCheck
    }};
}

/// A claim still written in Rust (its design has no claims file yet).
fn builtin(id: &str, says: &str, proves: &str, check: crate::kinds::KindCheck) -> Claim {
    Claim::rust(id, says, proves, check)
}

pub mod scale_up;
pub mod secured_monitored;

/// Every design in the catalogue, in order.
pub const CATALOGUE: &[&str] = &["simple_web", "distributed", "secured_monitored", "scale_up"];

/// The claims of `design` (a built-in name or a folder), in its claims file's order.
pub fn claims(design: &str) -> Result<Vec<Claim>> {
    Ok(crate::design::Design::load(design)?.claims)
}

/// The claims of a built-in design still written in Rust (it has no claims file yet).
pub(crate) fn legacy(design: &str) -> Option<Vec<Claim>> {
    match design {
        "scale_up" => Some(scale_up::claims()),
        "secured_monitored" => Some(secured_monitored::claims()),
        _ => None,
    }
}

/// The claim catalogue as Markdown (`docs/claims.md`): every design, every
/// claim with the design's sentence, the assertion, and the mutants that
/// must make it fail. A test keeps the file equal to this.
pub fn catalogue_markdown() -> Result<String> {
    use std::fmt::Write as _;
    let mut md = String::from(
        "# The claim catalogue\n\n\
         Generated from the code (`cargo test --lib catalogue` checks it; \
         `STACKPROOF_BLESS=1 cargo test --lib catalogue` rewrites it). Every claim is one \
         assertion against real containers, with a stable ID that the checklist and the \
         reports use. A claim ends PASS (held), FAIL (the design broke it) or ERROR (it \
         could not be measured). Every claim has at least one mutant, a broken variant of \
         the design under `fixtures/designs/<design>/mutants/`, that must make it FAIL.\n",
    );
    for design in CATALOGUE {
        let spec = crate::spec::DesignSpec::load(&crate::fixtures::Fixtures::design(design)?)?;
        let mutants = crate::claim::mutants(design)?;
        let _ = write!(
            md,
            "\n## {design}\n\n{}\n\n| ID | the design says | the assertion | mutants that break it |\n|---|---|---|---|\n",
            spec.summary
        );
        for c in claims(design)? {
            let killers: Vec<String> = mutants
                .iter()
                .filter(|m| m.fails == c.id)
                .map(|m| format!("`{}`", m.name))
                .collect();
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} |",
                c.id,
                c.says,
                c.proves.replace('|', "\\|"),
                killers.join(", ")
            );
        }
    }
    Ok(md)
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalogue_in_docs_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/claims.md");
        let now = super::catalogue_markdown().unwrap();
        if std::env::var_os("STACKPROOF_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        pretty_assertions::assert_eq!(
            written,
            now,
            "docs/claims.md is out of date: run `STACKPROOF_BLESS=1 cargo test --lib catalogue`"
        );
    }

    #[test]
    fn every_claim_has_a_mutant_and_every_mutant_a_claim() {
        for design in super::CATALOGUE {
            let claims = super::claims(design).unwrap();
            let mutants = crate::claim::mutants(design).unwrap();
            for c in &claims {
                assert!(
                    mutants.iter().any(|m| m.fails == c.id),
                    "claim {} has no mutant that must make it fail",
                    c.id
                );
            }
            for m in &mutants {
                assert!(
                    claims.iter().any(|c| c.id == m.fails),
                    "mutant {design}/{} names claim {}, which {design} does not have",
                    m.name,
                    m.fails
                );
            }
        }
    }
}
