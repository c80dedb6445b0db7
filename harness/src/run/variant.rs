//! A claim measured on a documented remedy: the design with one of its
//! `variants/<name>/` laid over it, started by the runner beside the
//! running stack; the claim's own check runs there, then every claim the
//! variant must keep holding.

use std::time::Instant;

use crate::claim::{self, Claim, Outcome, Variant, Verdict};
use crate::failure::{Cause, Failure};
use crate::recorder::Recorder;
use crate::stack::Stack;

/// A claim measured on its variant: the design with `variants/<name>/`
/// laid over it, started beside the running stack. The claim's own check
/// runs there, then every claim of `still_hold`; it holds when they all do.
/// Over a user's own file that the variant would replace, it says nothing
/// of theirs: a SKIP with the reason.
pub(super) async fn on_variant(
    stack: &Stack,
    claim: &Claim,
    variant: &Variant,
    rec: &Recorder,
) -> Outcome {
    let started = Instant::now();
    let ended = |verdict: Verdict, evidence: String, own: Option<Outcome>| {
        let (figures, timelines, budgets) = own
            .map(|o| (o.figures, o.timelines, o.budgets))
            .unwrap_or_default();
        Outcome {
            id: claim.id.clone(),
            says: claim.says.clone(),
            verdict,
            evidence,
            millis: started.elapsed().as_millis(),
            figures,
            timelines,
            budgets,
        }
    };
    let fixtures = stack.fixtures_now();
    let replaced = fixtures.users_files_replaced_by(&variant.name);
    if !replaced.is_empty() {
        let why = format!(
            "the remedy is the design's `{}` variant, which would replace your own {} (--config): it would measure the design's files, not yours. To check your own remedy, give its file with --config and read the claims of the weakness it removes",
            variant.name,
            replaced
                .iter()
                .map(|r| format!("`{}`", r.display()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ended(Verdict::Skip(why), String::new(), None);
    }
    rec.waiting_for(&format!(
        "the `{}` variant to start beside the design",
        variant.name
    ));
    let beside = match fixtures.with_variant(&variant.name) {
        Ok(f) => Stack::start(&stack.design, f).await,
        Err(e) => Err(e),
    };
    let beside = match beside {
        Ok(s) => s,
        Err(e) => {
            let f = Failure::from(e);
            let verdict = match f.cause {
                Cause::Design => Verdict::Fail(f),
                _ => Verdict::Error(f),
            };
            return ended(
                verdict,
                format!("variant `{}` did not start", variant.name),
                None,
            );
        }
    };
    let own_claim = Claim {
        variant: None,
        ..claim.clone()
    };
    let own = Box::pin(claim::run(&beside, &own_claim)).await;
    let mut held = Vec::new();
    for c in variant.still_hold.iter().filter(|c| c.skip.is_none()) {
        held.push(Box::pin(claim::run(&beside, c)).await);
    }
    drop(beside);
    // A claim that fails with the variant counts against the remedy only if
    // it holds without it: one already broken on the design is that
    // claim's own breakage (its own line says so), not the remedy's.
    let mut already_broken = Vec::new();
    for o in held.iter().filter(|o| !o.verdict.passed()) {
        if let Some(c) = variant.still_hold.iter().find(|c| c.id == o.id) {
            let without = Box::pin(claim::run(stack, c)).await;
            if !without.verdict.passed() {
                already_broken.push(o.id.clone());
            }
        }
    }
    let prefix = format!("{}.", stack.design);
    let listed = |f: fn(&Verdict) -> bool| -> Vec<String> {
        held.iter()
            .filter(|o| f(&o.verdict) && !already_broken.contains(&o.id))
            .map(|o| {
                format!(
                    "{} ({})",
                    o.id.trim_start_matches(&prefix),
                    o.verdict
                        .failure()
                        .map(|f| f.summary.as_str())
                        .unwrap_or("")
                )
            })
            .collect()
    };
    let (failing, unmeasured) = (
        listed(Verdict::failed),
        listed(|v| matches!(v, Verdict::Error(_))),
    );
    let evidence = format!(
        "variant `{}`: {}; claims still holding with it: {} of {}{}{}",
        variant.name,
        if own.evidence.is_empty() {
            "-"
        } else {
            own.evidence.as_str()
        },
        held.iter().filter(|o| o.verdict.passed()).count(),
        held.len(),
        if failing.is_empty() {
            String::new()
        } else {
            format!(
                "; failing with it (holding without it): {}",
                failing.join("; ")
            )
        },
        if already_broken.is_empty() {
            String::new()
        } else {
            format!(
                "; failing without the variant too, so not the remedy's doing (their own lines say why): {}",
                already_broken
                    .iter()
                    .map(|id| id.trim_start_matches(&prefix))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let verdict = match &own.verdict {
        Verdict::Fail(f) => Verdict::Fail(Failure {
            evidence: evidence.clone(),
            ..f.clone()
        }),
        _ if !failing.is_empty() => Verdict::Fail(Failure::new(
            "claims that held without the variant fail with it",
            evidence.clone(),
        )),
        Verdict::Error(f) => Verdict::Error(f.clone()),
        _ if !unmeasured.is_empty() => Verdict::Error(Failure::not_measured(
            format!(
                "with the variant, claims could not be measured: {}",
                unmeasured.join("; ")
            ),
            evidence.clone(),
        )),
        other => other.clone(),
    };
    ended(verdict, evidence, Some(own))
}
