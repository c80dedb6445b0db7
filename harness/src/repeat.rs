//! `check --repeat N`: a claim's runs folded into one outcome: PASS,
//! FLAKY or the first failure, each figure's spread, and budgets judged on
//! a percentile of the runs when the claims file asks for it.

use crate::claim::Outcome;

/// One outcome per claim from `runs` (each a run of the same claims, in
/// the same order: `check --repeat`). Held every time: PASS, each figure
/// given as its median with its min, p95 and max beside it. Never held: the
/// first run's FAIL or ERROR, saying how many runs. Both: FLAKY, with how
/// many runs it held in and the first failure's evidence. A claim whose
/// budgets are on a percentile (`percentile = 95`): a run past a budget and
/// nothing else is weighed with the others, and the claim holds when the
/// percentile of the runs is within the budget (k6's `p(95)<1000`).
pub fn fold_repeats(runs: Vec<Vec<Outcome>>) -> Vec<Outcome> {
    use crate::claim::{Flaky, Verdict};
    use crate::failure::Cause;
    let n = runs.len();
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let all: Vec<&Outcome> = runs.iter().filter_map(|r| r.get(i)).collect();
            let last = all[all.len() - 1];
            let on_percentile: Vec<crate::claim::Budget> = last
                .budgets
                .iter()
                .filter(|b| b.percentile.is_some())
                .cloned()
                .collect();
            let over_budget_only = |o: &Outcome| {
                !on_percentile.is_empty()
                    && matches!(&o.verdict, Verdict::Fail(f) if f.cause == Cause::OverBudget)
            };
            let over = all.iter().filter(|o| over_budget_only(o)).count();
            let held = all
                .iter()
                .filter(|o| o.verdict.passed() || over_budget_only(o))
                .count();
            let millis = all.iter().map(|o| o.millis).max().unwrap_or(0);
            let mut folded = Outcome {
                millis,
                figures: figure_spread(&all),
                ..last.clone()
            };
            if last.verdict.skipped() {
                return folded;
            }
            let failed = all
                .iter()
                .find(|o| !o.verdict.passed() && !over_budget_only(o));
            folded.evidence = format!("held {held} of {n} runs; last: {}", last.evidence);
            if failed.is_none() && !on_percentile.is_empty() {
                return judge_on_percentiles(folded, &all, &on_percentile, over);
            }
            folded.verdict = match failed {
                None => Verdict::Pass,
                Some(f) if held == 0 => f.verdict.clone(),
                Some(f) => Verdict::Flaky(Flaky {
                    held,
                    runs: n,
                    first: f.verdict.failure().cloned().unwrap_or_else(|| {
                        crate::failure::Failure::new("did not hold", f.evidence.clone())
                    }),
                }),
            };
            folded
        })
        .collect()
}

/// A repeated claim whose runs all held but for budgets judged on a
/// percentile: PASS when each budget's percentile of the runs is within
/// it, FAIL (the design's, with the figures) when one is past it.
fn judge_on_percentiles(
    mut folded: Outcome,
    all: &[&Outcome],
    budgets: &[crate::claim::Budget],
    over: usize,
) -> Outcome {
    use crate::claim::Verdict;
    let n = all.len();
    let mut judged = Vec::new();
    for b in budgets {
        let p = b.percentile.unwrap_or(100).clamp(1, 100);
        let mut v: Vec<f64> = all
            .iter()
            .flat_map(|o| {
                o.figures
                    .iter()
                    .filter(|(f, _)| *f == b.figure)
                    .map(|(_, x)| *x)
            })
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let Some(at) = crate::report::percentile(&v, p as f64) else {
            continue;
        };
        let line = format!(
            "p{p} of {} over {n} runs: {at:.0} (budget {:.0}; {} run(s) past it)",
            b.figure,
            b.at_most,
            v.iter().filter(|x| **x > b.at_most).count()
        );
        if at > b.at_most {
            folded.verdict = Verdict::Fail(crate::failure::Failure::new(
                format!("the p{p} of {} was past its budget", b.figure),
                format!("{line}; {}", folded.evidence),
            ));
            return folded;
        }
        judged.push(line);
    }
    folded.verdict = Verdict::Pass;
    folded.evidence = format!(
        "{}; {}{}",
        judged.join("; "),
        folded.evidence,
        if over > 0 {
            format!(" ({over} run(s) past a budget, weighed on the percentile)")
        } else {
            String::new()
        }
    );
    folded
}

/// Each figure of `outcomes` (the same claim's runs): its median, and
/// `min`, `p95` and `max` beside it when there is more than one value.
fn figure_spread(outcomes: &[&Outcome]) -> Vec<(String, f64)> {
    let mut names: Vec<&str> = Vec::new();
    for o in outcomes {
        for (name, _) in &o.figures {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut out = Vec::new();
    for name in names {
        let mut v: Vec<f64> = outcomes
            .iter()
            .flat_map(|o| o.figures.iter().filter(|(n, _)| n == name).map(|(_, x)| *x))
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |pct: f64| crate::report::percentile(&v, pct).unwrap_or(f64::NAN);
        out.push((name.to_string(), at(50.0)));
        if v.len() > 1 {
            out.push((format!("{name} min"), v[0]));
            out.push((format!("{name} p95"), at(95.0)));
            out.push((format!("{name} max"), v[v.len() - 1]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `percentile = 95`: one run in twenty past the budget is weighed with
    /// the others; three are past p95; a run that broke otherwise is FLAKY.
    #[test]
    fn a_budget_on_a_percentile_weighs_a_repeated_claims_runs() {
        use crate::claim::{Budget, Verdict};
        use crate::failure::{Cause, Failure};
        let run = |outage: f64, broke: bool| {
            let over = outage > 1000.0;
            Outcome {
                id: "failover".into(),
                says: String::new(),
                verdict: match (broke, over) {
                    (true, _) => Verdict::Fail(Failure::new("requests kept failing", "")),
                    (false, true) => Verdict::Fail(Failure {
                        cause: Cause::OverBudget,
                        ..Failure::new("failover outage (ms) was past its budget", "")
                    }),
                    (false, false) => Verdict::Pass,
                },
                evidence: format!("outage {outage}"),
                millis: 10,
                figures: vec![("failover outage (ms)".into(), outage)],
                timelines: Vec::new(),
                budgets: vec![Budget {
                    figure: "failover outage (ms)".into(),
                    at_most: 1000.0,
                    percentile: Some(95),
                }],
            }
        };
        let twenty = |past: usize, broke: bool| -> Vec<Vec<Outcome>> {
            (0..20)
                .map(|i| {
                    let outage = if i < past { 1200.0 } else { 300.0 + i as f64 };
                    vec![run(outage, broke && i == 19)]
                })
                .collect()
        };
        let one_past = fold_repeats(twenty(1, false));
        assert!(one_past[0].verdict.passed(), "{:?}", one_past[0].verdict);
        assert!(
            one_past[0].evidence.starts_with(
                "p95 of failover outage (ms) over 20 runs: 319 (budget 1000; 1 run(s) past it)"
            ),
            "{}",
            one_past[0].evidence
        );
        let three_past = fold_repeats(twenty(3, false));
        match &three_past[0].verdict {
            Verdict::Fail(f) => {
                assert_eq!(
                    f.summary,
                    "the p95 of failover outage (ms) was past its budget"
                );
                assert!(
                    f.evidence
                        .starts_with("p95 of failover outage (ms) over 20 runs: 1200"),
                    "{}",
                    f.evidence
                );
            }
            other => panic!("{other:?}"),
        }
        let broke_once = fold_repeats(twenty(1, true));
        assert!(
            matches!(&broke_once[0].verdict, Verdict::Flaky(f) if f.held == 19),
            "{:?}",
            broke_once[0].verdict
        );
        // Without a percentile, a run past the budget is a failure like any other.
        let mut per_run = twenty(1, false);
        for r in &mut per_run {
            r[0].budgets[0].percentile = None;
        }
        assert!(matches!(
            &fold_repeats(per_run)[0].verdict,
            Verdict::Flaky(_)
        ));
    }

    #[test]
    fn repeats_fold_into_pass_flaky_or_the_first_failure_with_the_figures_spread() {
        use crate::claim::Verdict;
        use crate::failure::Failure;
        let o = |id: &str, held: bool, outage: f64| Outcome {
            id: id.into(),
            says: String::new(),
            verdict: if held {
                Verdict::Pass
            } else {
                Verdict::Fail(Failure::new("too slow", format!("outage {outage}")))
            },
            evidence: format!("outage {outage}"),
            millis: 10,
            figures: vec![("outage (ms)".into(), outage)],
            timelines: Vec::new(),
            budgets: Vec::new(),
        };
        let runs = vec![
            vec![
                o("a", true, 300.0),
                o("b", true, 1.0),
                o("c", false, 1500.0),
            ],
            vec![
                o("a", false, 1200.0),
                o("b", true, 2.0),
                o("c", false, 1600.0),
            ],
            vec![
                o("a", true, 400.0),
                o("b", true, 3.0),
                o("c", false, 1700.0),
            ],
        ];
        let folded = fold_repeats(runs);
        match &folded[0].verdict {
            Verdict::Flaky(f) => {
                assert_eq!((f.held, f.runs), (2, 3));
                assert_eq!(f.first.summary, "too slow");
                assert_eq!(f.first.evidence, "outage 1200");
            }
            v => panic!("{v:?}"),
        }
        assert_eq!(folded[0].verdict.label(), "FLAKY");
        assert!(folded[1].verdict.passed());
        assert_eq!(
            folded[1].figures,
            [
                ("outage (ms)".to_string(), 2.0),
                ("outage (ms) min".to_string(), 1.0),
                ("outage (ms) p95".to_string(), 3.0),
                ("outage (ms) max".to_string(), 3.0),
            ]
        );
        assert!(folded[1].evidence.starts_with("held 3 of 3 runs"));
        assert!(folded[2].verdict.failed() && !folded[2].verdict.flaky());
        assert_eq!(crate::claim::exit_code(&folded), 1);
    }
}
