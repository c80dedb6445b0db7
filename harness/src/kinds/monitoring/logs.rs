//! `monitoring.logs_centralised`: log lines reach the central log host.

use crate::kinds::Facts;
use std::time::{Duration, Instant};

use crate::failure::{CheckResult, ensure};
use crate::kinds::common::req_failed;
use crate::kinds::{Kind, Param, Params, Ty};
use crate::recorder::Recorder;
use crate::stack::{Stack, WWW};

/// `monitoring.logs_centralised`: log lines reach the central log host.
pub const LOGS_CENTRALISED: Kind = Kind {
    name: "monitoring.logs_centralised",
    doc: "Marked requests (a page and a missing page, twice each, so each web server gets one of each) are answered; on `log_host`, `<dir>/<server>.log` holds, within `budget_ms`, a line of every tag of `tags` for every server of `servers`, each from the server that wrote it.",
    params: &[
        Param::required("log_host", Ty::Host, "the central log host"),
        Param::required(
            "servers",
            Ty::Hosts,
            "the web servers whose logs must arrive",
        ),
        Param::optional(
            "tags",
            Ty::Texts,
            "the syslog tags of their access and error logs",
            "[\"nginx-access\", \"nginx-error\"]",
        ),
        Param::optional(
            "dir",
            Ty::Text,
            "where the log host files each sender's lines",
            "\"/var/log/central\"",
        ),
        crate::kinds::common::SCHEME,
        Param::optional("budget_ms", Ty::Ms, "how soon a line must arrive", "5000"),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.logs_centralised"
says = "servers send their logs to a central log host"
kind = "monitoring.logs_centralised"
log_host = "mon-1"
servers = ["web-1", "web-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(logs_centralised),
};

async fn logs_centralised(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (log_host, dir, scheme) = (p.host("log_host"), p.text("dir"), p.text("scheme"));
    let (servers, tags) = (p.list("servers"), p.list("tags"));
    let budget = p.ms("budget_ms");
    let marker = crate::kinds::common::marker("central");
    let mut answered = Vec::new();
    for path in [
        format!("/static/hello.txt?{marker}"),
        format!("/static/hello.txt?{marker}"),
        format!("/static/missing-{marker}.txt"),
        format!("/static/missing-{marker}.txt"),
    ] {
        let status = stack
            .client
            .fresh
            .get(format!("{scheme}://{WWW}{path}"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| req_failed(&path, &e))?;
        answered.push(status);
    }
    let central = stack.host(log_host)?;
    let wanted: Vec<(&str, &str)> = servers
        .iter()
        .flat_map(|s| tags.iter().map(move |t| (*s, *t)))
        .collect();
    let started = Instant::now();
    let mut found: Vec<Option<Duration>> = vec![None; wanted.len()];
    while started.elapsed() < budget && found.iter().any(Option::is_none) {
        let lines = central
            .run(&format!(
                "grep -H '{marker}' {dir}/*.log 2>/dev/null || true"
            ))
            .await?;
        for (i, (server, tag)) in wanted.iter().enumerate() {
            let file = format!("{dir}/{server}.log:");
            if found[i].is_none()
                && lines
                    .lines()
                    .any(|l| l.starts_with(&file) && l.contains(&format!("{tag}:")))
            {
                found[i] = Some(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(slowest) = found.iter().flatten().max() {
        rec.record(
            "central log: last line arrived (ms)",
            slowest.as_millis() as f64,
        );
    }
    let evidence = format!(
        "requests answered {answered:?}; on {log_host}'s central log: {}",
        wanted
            .iter()
            .zip(&found)
            .map(|((s, t), f)| format!(
                "{s} {t} {}",
                f.map(|d| format!("after {} ms", d.as_millis()))
                    .unwrap_or_else(|| "MISSING".into())
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure(
        answered.iter().filter(|s| **s == 200).count() == 2,
        "the site did not serve the marked pages, so there was nothing to log",
        &evidence,
    )?;
    let missing: Vec<String> = wanted
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|((s, t), _)| format!("{s} {t}"))
        .collect();
    ensure(
        missing.is_empty(),
        format!(
            "log lines written now never reached the central log host within {} ms: {}",
            budget.as_millis(),
            missing.join(", ")
        ),
        &evidence,
    )?;
    Ok(evidence)
}
