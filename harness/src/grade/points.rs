//! A class's points: claim ID to points (`grade --points points.toml`),
//! and each submission's score. A PASS earns the claim's points; a SKIP
//! leaves the claim out of the maximum; anything else (FAIL, ERROR, FLAKY,
//! not run, a submission that could not be graded) earns none. A graded
//! claim the file does not name is not scored, with a warning.
//!
//! ```toml
//! # points.toml
//! "scale_up.lb.round_robin" = 2
//! "lb.failover" = 5          # the design's name may be left out
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use super::Graded;
use crate::claim::Verdict;
use crate::design::Design;
use crate::error::{Error, Result};

/// Claim ID (with the design's prefix) to points.
pub type Points = BTreeMap<String, u32>;

/// A submission's score: what it earned of what it could.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    pub earned: u32,
    pub max: u32,
}

impl std::fmt::Display for Score {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.earned, self.max)
    }
}

/// Reads a points file for `design`: each key a claim ID of the design
/// (its name may be left out), each value a whole number of points. An ID
/// the design lacks is refused with the IDs it has.
pub fn read(path: &Path, design: &Design) -> Result<Points> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Fixture {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |detail: String| Error::InvalidFixture {
        path: path.to_path_buf(),
        detail,
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        bad(format!(
            "not a points file ({e}); write one `\"claim.id\" = points` per line"
        ))
    })?;
    let ids: Vec<&str> = design.claims.iter().map(|c| c.id.as_str()).collect();
    let mut points = Points::new();
    for (key, value) in table {
        let full = if ids.contains(&key.as_str()) {
            key.clone()
        } else {
            format!("{}.{key}", design.name)
        };
        if !ids.contains(&full.as_str()) {
            return Err(bad(format!(
                "no claim `{key}` in design {}; its claims: {}",
                design.name,
                ids.join(", ")
            )));
        }
        let n = value
            .as_integer()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                bad(format!(
                    "`{key}` = {value}: points are a whole number, 0 or more"
                ))
            })?;
        points.insert(full, n);
    }
    if points.is_empty() {
        return Err(bad(
            "no claim has points; write one `\"claim.id\" = points` per line".into(),
        ));
    }
    Ok(points)
}

/// The graded claims the points file does not name: not scored.
pub fn unscored<'a>(points: &Points, claims: &'a [String]) -> Vec<&'a str> {
    claims
        .iter()
        .filter(|c| !points.contains_key(*c))
        .map(String::as_str)
        .collect()
}

/// What `g` earned on the graded `claims`.
pub fn score(points: &Points, claims: &[String], g: &Graded) -> Score {
    let mut s = Score { earned: 0, max: 0 };
    for id in claims {
        let Some(&p) = points.get(id) else { continue };
        let verdict = g.outcomes.iter().find(|o| &o.id == id).map(|o| &o.verdict);
        match verdict {
            Some(Verdict::Skip(_)) if g.error.is_none() => {}
            Some(Verdict::Pass) if g.error.is_none() => {
                s.earned += p;
                s.max += p;
            }
            _ => s.max += p,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Outcome;
    use crate::failure::Failure;

    fn graded(verdicts: &[(&str, Verdict)], error: Option<&str>) -> Graded {
        Graded {
            name: "s".into(),
            mapping: vec![],
            outcomes: verdicts
                .iter()
                .map(|(id, v)| Outcome::bare(id, v.clone()))
                .collect(),
            error: error.map(str::to_string),
            tool_failed: false,
            run: String::new(),
            up_ms: 0,
            image: String::new(),
            on: None,
        }
    }

    #[test]
    fn a_pass_earns_a_skip_leaves_out_and_anything_else_earns_nothing() {
        let points: Points = [("d.a", 2), ("d.b", 3), ("d.c", 5), ("d.e", 7)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let claims: Vec<String> = ["d.a", "d.b", "d.c", "d.e", "d.unscored"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let fail = Verdict::Fail(Failure::new("broke", ""));
        let g = graded(
            &[
                ("d.a", Verdict::Pass),
                ("d.b", fail.clone()),
                ("d.c", Verdict::Skip("not asked".into())),
                ("d.unscored", Verdict::Pass),
            ],
            None,
        );
        // a earns 2; b 0 of 3; c out of the maximum; e not run: 0 of 7.
        assert_eq!(score(&points, &claims, &g), Score { earned: 2, max: 12 });
        assert_eq!(unscored(&points, &claims), vec!["d.unscored"]);
        // A refused submission earns nothing of everything.
        let refused = graded(&[], Some("haproxy refuses its file"));
        assert_eq!(
            score(&points, &claims, &refused),
            Score { earned: 0, max: 17 }
        );
    }
}
