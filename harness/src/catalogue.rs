//! The built-in designs' catalogue: every design folder of
//! `fixtures/designs/`, its claims and the mutants that must break them, as
//! the Markdown of `docs/claims.md` and `docs/kinds.md` (written by its
//! tests, which keep those pages equal to the code).

#[cfg(test)]
use crate::claim::Claim;
#[cfg(test)]
use crate::error::Result;

/// The built-in designs, in teaching order.
pub fn designs() -> Vec<String> {
    crate::design::builtin_names()
}

/// The claims of `design` (a built-in name or a folder), in its claims file's order.
#[cfg(test)]
pub fn claims(design: &str) -> Result<Vec<Claim>> {
    Ok(crate::design::Design::load(design)?.claims)
}

/// The claim catalogue as Markdown (`docs/claims.md`): every design, every
/// claim with the design's sentence, the assertion, and the mutants that
/// must make it fail. A test keeps the file equal to this.
#[cfg(test)]
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
    for design in designs() {
        let loaded = crate::design::Design::load(&design)?;
        let (design, spec, mutants) = (design.as_str(), &loaded.spec, &loaded.mutants);
        let _ = write!(
            md,
            "\n## {design}\n\n{}\n\n| ID | the design says | the assertion | mutants that break it |\n|---|---|---|---|\n",
            spec.summary
        );
        for c in &loaded.claims {
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

/// What every kind holds to, whatever it checks.
#[cfg(test)]
const RULES: &str = "## Rules every kind holds to\n\n\
1. **A budget is the design's promise, never the configuration's.** A timing claim's \
   budget is written in `claims.toml` beside its sentence (`window_ms`, `budget_ms`, \
   `eject_within_ms`, `outage_budget_ms`) and printed with the figure. The running \
   configuration's own timers (a scrape interval, a TTL, HAProxy's `inter` × `fall`) \
   explain the figure and may make the wait shorter, never the budget longer: timers \
   that alone exceed the promise are a FAIL, with the figure, before any fault.\n\
2. **ERROR only when stackproof could not measure.** Whatever the design's files cause \
   (a refused request, a missing series, a budget its settings exceed) is a FAIL with \
   the evidence; ERROR is our own deadline, query or tool failing.\n\
3. **Probe as the site's real clients do.** Balancing claims send fresh connections \
   and also one browser-like session that keeps the cookies the site sets and its \
   connection alive: a persistence cookie that pins a browser to one server breaks \
   \"in turn\", and the cookies the site set are reported.\n\
4. **Vary the traffic along every dimension the sentence names.** Claims that count \
   requests send a representative mix (GET, HEAD and POST; answers 200, 301 and 404; \
   static and dynamic pages) and compare per status where the monitoring labels them, \
   so a parser that counts only 200s, only GETs or only one path cannot pass.\n\n";

/// Kinds no built-in design uses, and the design a suite runs each on
/// against real servers (a balancer other than HAProxy, say).
#[cfg(test)]
const RUN_ELSEWHERE: &[(&str, &str)] = &[(
    "lb.skips_dead_backend",
    "an Nginx balancer over three servers (suites/configs/own_designs.rs)",
)];

/// The library of check kinds as Markdown (`docs/kinds.md`): each kind,
/// its parameters, an example, and the built-in claims that use it.
#[cfg(test)]
pub fn kinds_markdown() -> Result<String> {
    use std::fmt::Write as _;
    let kinds = crate::kinds::Kinds::builtin();
    let mut users: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
    for design in designs() {
        for c in claims(&design)? {
            users.entry(c.kind).or_default().push(c.id);
        }
    }
    let mut md = format!(
        "# Check kinds\n\n\
         Generated from the code (`STACKPROOF_BLESS=1 cargo test --lib catalogue` rewrites it; \
         `stackproof kinds [name]` prints the same). A claim in a design's `claims.toml` names \
         one of these {} kinds and gives its parameters; hosts, services and networks are \
         the design's own names, checked when the file is read. Faults a claim can name \
         (`fault = ...`): {}. They are built from what the kernel here has: no `netem`, so \
         a slow link is `tc` TBF, a lossy one iptables `statistic`, a slow host the \
         container's CPU quota; a stopped host's interfaces go down before its container \
         stops, so it falls silent as a server that loses power does (a stopping \
         container's network outlives its processes, answering with resets); every fault \
         is undone when its claim ends, however it ends.\n\n",
        kinds.iter().count(),
        crate::kinds::common::FAULTS.join(", ")
    );
    md.push_str(RULES);
    md.push_str("| kind | built-in claims using it |\n|---|---|\n");
    for k in kinds.iter() {
        let used = users.get(k.name).cloned().unwrap_or_default();
        let _ = writeln!(
            md,
            "| [`{}`](#{}) | {} |",
            k.name,
            k.name.replace('.', ""),
            if used.is_empty() {
                match RUN_ELSEWHERE.iter().find(|(kind, _)| *kind == k.name) {
                    Some((_, on)) => format!("none built in; the suites run it on {on}"),
                    None => "none".to_string(),
                }
            } else {
                format!(
                    "{}: {}",
                    used.len(),
                    used.iter()
                        .map(|u| format!("`{u}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    md.push('\n');
    md.push_str(&kinds.markdown());
    Ok(md)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kinds_in_docs_match_the_code_and_every_kind_is_used() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kinds.md");
        let now = super::kinds_markdown().unwrap();
        if std::env::var_os("STACKPROOF_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let written = std::fs::read_to_string(&path).unwrap_or_default();
        pretty_assertions::assert_eq!(
            written,
            now,
            "docs/kinds.md is out of date: run `STACKPROOF_BLESS=1 cargo test --lib catalogue`"
        );
        // A kind no built-in claim uses is never run against real servers by our suites.
        assert!(
            !now.contains("| none |"),
            "a kind no built-in claim uses:\n{now}"
        );
    }

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
        for design in super::designs() {
            let design = design.as_str();
            let claims = super::claims(design).unwrap();
            let mutants = crate::design::mutants(design).unwrap();
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
