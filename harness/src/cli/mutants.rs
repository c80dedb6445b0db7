//! `stackproof mutants`: the mutation matrix of a design.

use std::process::ExitCode;

use crate::claim;
use crate::design::Design;
use crate::error::Error;
use crate::run::{Plan, Runner, Schedule};

/// Every mutant against every claim, the way mutation-testing tools report:
/// which claims discriminate, which mutants break more than they should.
pub async fn mutants_matrix(located_as: &str, platform: Option<String>) -> Result<ExitCode, Error> {
    let mut loaded = Design::load(located_as)?;
    if let Some(p) = &platform {
        loaded = loaded.on_platform(p)?;
    }
    let (claims, mutants) = (&loaded.claims, &loaded.mutants);
    let design = loaded.name.as_str();
    let short = |id: &str| id.trim_start_matches(&format!("{design}.")).to_string();
    println!(
        "stackproof mutants {design}: {} mutants x {} claims",
        mutants.len(),
        claims.len()
    );
    for (i, c) in claims.iter().enumerate() {
        println!("  {:>2}  {}", i + 1, short(&c.id));
    }
    println!(
        "F = FAIL, . = held, E = ERROR (not measured), - = skipped, S = the design did not start"
    );
    let header: String = (1..=claims.len()).map(|i| format!("{i:>3}")).collect();
    println!("{:<32}{header}  own claim", "mutant");
    let (mut killed, mut over) = (0, 0);
    let mut removals = Vec::new();
    let prewarm = crate::skeleton::Prewarm::start();
    for m in mutants {
        let mutated = Plan::new(located_as)
            .on_platform(platform.clone())
            .with_mutant(Some(m.name.clone()))
            .prepare()
            .await?;
        let row: Vec<char> = match Runner::new(mutated).run(Schedule::InTurn, |_| {}).await {
            Ok(ran) => {
                // The next mutant starts while this one's stacks go.
                removals.extend(ran.removals);
                removals.push(ran.stack.remove_in_background());
                ran.outcomes
                    .iter()
                    .map(|o| match o.verdict {
                        claim::Verdict::Pass => '.',
                        claim::Verdict::Skip(_) => '-',
                        claim::Verdict::Fail(_) => 'F',
                        claim::Verdict::Flaky(_) => '~',
                        claim::Verdict::Error(_) => 'E',
                    })
                    .collect()
            }
            Err(e) => {
                eprintln!(
                    "  mutant {} did not start: {}",
                    m.name,
                    e.chain().lines().next().unwrap_or("")
                );
                vec!['S'; claims.len()]
            }
        };
        let own = claims.iter().position(|c| c.id == m.fails);
        let caught = own.is_some_and(|i| row[i] == 'F');
        killed += usize::from(caught);
        let others = row
            .iter()
            .enumerate()
            .filter(|(i, v)| Some(*i) != own && **v == 'F')
            .count();
        over += usize::from(others > 0);
        println!(
            "{:<32}{}  {} {}{}",
            m.name,
            row.iter().map(|v| format!("{v:>3}")).collect::<String>(),
            own.map(|i| (i + 1).to_string())
                .unwrap_or_else(|| "?".into()),
            if caught { "killed" } else { "SURVIVED" },
            if others > 0 {
                format!(", also breaks {others} other claim(s)")
            } else {
                String::new()
            }
        );
    }
    prewarm.finish().await;
    drop(removals);
    let n = mutants.len().max(1);
    println!(
        "mutation score: {killed} of {} mutants killed by their own claim ({:.0} %); {over} break other claims too",
        mutants.len(),
        killed as f64 * 100.0 / n as f64
    );
    Ok(if killed == mutants.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
