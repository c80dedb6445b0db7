//! `monitoring.counter_rate`: the monitored request rate against the sent one.

use crate::kinds::Facts;
use std::time::{Duration, Instant};

use super::{AFTER_FIRST_SCRAPE, FIRST_SCRAPE, by_label};
use crate::failure::{CheckResult, Failure, ensure};
use crate::kinds::common::{PARSE_LAG, first_scrapes_done, prometheus, scraped_since, wait_for};
use crate::kinds::{Kind, Param, Params, Ty};
use crate::recorder::Recorder;
use crate::stack::Stack;

/// `monitoring.counter_rate`: the monitored rate matches the sent rate.
pub const COUNTER_RATE: Kind = Kind {
    name: "monitoring.counter_rate",
    doc: "`requests` requests, one every `interval_ms`, raise the counter `query` in the monitoring server by a rate within `tolerance_pct` % of the sent rate. The requests are a representative mix (GET, HEAD and POST; answers 200, 301 and 404; static and dynamic pages) less the kinds `leave_out` names, or, with `method` set, that one method on `path`. With `per_status` (PromQL summed by the status label `status_label`), each status the site answered is compared too, by code (`404`) or class (`4xx`). When `up_query` is set, a scrape target it names must be up first (a counter with no target is not monitored).",
    params: &[
        Param::required(
            "query",
            Ty::Text,
            "PromQL for the counter (one series: `sum(...)`)",
        ),
        Param::optional(
            "up_query",
            Ty::Text,
            "PromQL whose series must be 1 before measuring (\"\": none)",
            "\"\"",
        ),
        crate::kinds::common::SCHEME,
        Param::optional(
            "leave_out",
            Ty::Texts,
            "kinds of the mix not sent, as `METHOD STATUS` (`[\"GET 200\"]` when the load balancers' health checks are counted too)",
            "[]",
        ),
        Param::optional(
            "per_status",
            Ty::Text,
            "PromQL of the counter by status (`sum by (status) (...)`); \"\": the total only",
            "\"\"",
        ),
        Param::optional(
            "status_label",
            Ty::Text,
            "the label of `per_status` holding the status (`status`, or HAProxy's `code`)",
            "\"status\"",
        ),
        Param::optional(
            "method",
            Ty::Choice(&["", "GET", "HEAD"]),
            "one method on `path` instead of the mix (\"\": the mix)",
            "\"\"",
        ),
        Param::optional(
            "path",
            Ty::Text,
            "the page asked for with `method`",
            "\"/static/hello.txt\"",
        ),
        Param::optional("requests", Ty::Int, "requests sent", "42"),
        Param::optional("interval_ms", Ty::Ms, "the time between requests", "50"),
        Param::optional(
            "tolerance_pct",
            Ty::Number,
            "allowed error of the monitored rate, in %",
            "10",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.qps"
says = "the monitoring collects QPS"
kind = "monitoring.counter_rate"
query = "sum(haproxy_frontend_http_requests_total{proxy=\"www\"})"
per_status = "sum by (code) (haproxy_frontend_http_responses_total{proxy=\"www\"})"
status_label = "code"
scheme = "https""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(counter_rate),
};

async fn counter_value(stack: &Stack, query: &str) -> Result<Option<f64>, Failure> {
    Ok(prometheus(stack, query)
        .await?
        .first()
        .and_then(|v| v["value"][1].as_str()?.parse::<f64>().ok()))
}

/// Whether a status label's value (`404`, `4xx`) stands for `status`.
fn label_means(value: &str, status: u16) -> bool {
    let code = status.to_string();
    value == code || value.eq_ignore_ascii_case(&format!("{}xx", &code[..1]))
}

/// Waits (up to a scrape after the first) for a target of `up_query` to be
/// up: a counter whose target is down is not monitored, a FAIL.
async fn target_is_up(stack: &Stack, up_query: &str) -> Result<(), Failure> {
    let up = || async {
        prometheus(stack, up_query)
            .await
            .is_ok_and(|r| r.iter().any(|s| s["value"][1].as_str() == Some("1")))
    };
    if wait_for(AFTER_FIRST_SCRAPE, up).await.is_none() {
        return Err(Failure::new(
            format!("no scrape target of `{up_query}` is up: the counter is not monitored"),
            format!("{up_query}: {:?}", prometheus(stack, up_query).await?),
        ));
    }
    Ok(())
}

/// The counter once a scrape shows every one of `n` requests, or once it
/// stops growing for longer than a scrape interval (a user's may be 15 s).
async fn counted_in_the_end(
    stack: &Stack,
    query: &str,
    before: Option<f64>,
    n: usize,
    settled: impl Fn(Option<f64>) -> Option<f64>,
) -> Result<Option<f64>, Failure> {
    let every = crate::kinds::common::longest_scrape_interval(stack)
        .await
        .unwrap_or(Duration::from_secs(1));
    let (poll_for, still_for) = (
        Duration::from_secs(5).max(every * 2 + Duration::from_secs(1)),
        Duration::from_secs(3).max(every + Duration::from_secs(1)),
    );
    let mut after = before;
    let polling = Instant::now();
    while polling.elapsed() < poll_for {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = settled(counter_value(stack, query).await?);
        let done = match (before, now) {
            (Some(b), Some(a)) => {
                a - b >= n as f64 || (now == after && polling.elapsed() > still_for)
            }
            _ => false,
        };
        after = now;
        if done {
            break;
        }
    }
    Ok(after)
}

/// Per status the site answered: how many were sent, and how much the
/// series whose label stands for it grew.
fn per_status_growth(
    sent: &crate::kinds::traffic::Sent,
    before: &[(String, f64)],
    after: &[(String, f64)],
) -> Vec<(u16, usize, f64)> {
    sent.by_status()
        .into_iter()
        .map(|(status, count)| {
            let sum = |series: &[(String, f64)]| -> f64 {
                series
                    .iter()
                    .filter(|(l, _)| label_means(l, status))
                    .map(|(_, v)| v)
                    .sum()
            };
            (status, count, sum(after) - sum(before))
        })
        .collect()
}

async fn counter_rate(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (query, up_query) = (p.text("query"), p.text("up_query"));
    let (per_status, status_label) = (p.text("per_status"), p.text("status_label"));
    let n = p.int("requests").max(2) as usize;
    let interval = p.ms("interval_ms");
    let tolerance = p.number("tolerance_pct");
    let asks = match p.text("method") {
        "" => crate::kinds::traffic::mix_without(&p.list("leave_out")),
        method => vec![crate::kinds::traffic::Ask {
            method: if method == "HEAD" { "HEAD" } else { "GET" },
            path: crate::kinds::traffic::MIX[0].path,
            status: 200,
            what: "page",
        }],
    };
    let one_path = (!p.text("method").is_empty()).then(|| p.text("path"));
    // Run alone on a new stack, "before" read an absent counter from a
    // Prometheus that had scraped nothing yet.
    first_scrapes_done(stack, rec, FIRST_SCRAPE).await;
    if !up_query.is_empty() {
        target_is_up(stack, up_query).await?;
    }
    // A counter with no series yet (nothing counted so far) is a true 0 once its target is up.
    let settled = |v: Option<f64>| v.or(if up_query.is_empty() { None } else { Some(0.0) });
    // "Before" is settled once every target has been scraped after the
    // earlier traffic (and after a parser such as mtail read its log).
    scraped_since(
        stack,
        rec,
        std::time::SystemTime::now() + PARSE_LAG,
        FIRST_SCRAPE,
    )
    .await;
    let before = settled(counter_value(stack, query).await?);
    let status_before = match per_status {
        "" => Vec::new(),
        q => by_label(stack, q, status_label).await?,
    };
    let mark = crate::kinds::common::marker("rate");
    let sent =
        crate::kinds::traffic::send(stack, p.text("scheme"), asks, one_path, &mark, n, interval)
            .await?;
    let span = sent.span.as_secs_f64().max(interval.as_secs_f64());
    let after = counted_in_the_end(stack, query, before, n, settled).await?;
    let status_after = match per_status {
        "" => Vec::new(),
        q => by_label(stack, q, status_label).await?,
    };
    let per = if per_status.is_empty() {
        Vec::new()
    } else {
        per_status_growth(&sent, &status_before, &status_after)
    };
    let sent_qps = n as f64 / span;
    let counted = match (before, after) {
        (Some(b), Some(a)) => a - b,
        _ => 0.0,
    };
    let monitored_qps = counted / span;
    let error = (monitored_qps - sent_qps).abs() / sent_qps * 100.0;
    rec.record("monitored rate error (%)", error);
    let per_words = if per.is_empty() {
        String::new()
    } else {
        format!(
            "; by `{status_label}`: {}",
            per.iter()
                .map(|(s, sent, counted)| format!("{s} sent {sent}, counted {counted}"))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let value = |v: Option<f64>| v.map_or_else(|| "absent".into(), |v| v.to_string());
    let evidence = format!(
        "sent {n} requests over {span:.2} s ({}; {} answered) = {sent_qps:.1} qps; `{query}` in Prometheus {} → {} = {monitored_qps:.1} qps; error {error:.1} % (allowed {tolerance} %){per_words}",
        sent.words(),
        sent.answered(),
        value(before),
        value(after),
    );
    ensure(
        sent.answered() > 0,
        "the site answered none of the requests, so there was nothing to count",
        &evidence,
    )?;
    ensure(
        before.is_some() && after.is_some(),
        format!("Prometheus has no series for `{query}`"),
        &evidence,
    )?;
    // Per status first: it names what the monitoring misses.
    for (status, sent, counted) in &per {
        let off = (counted - *sent as f64).abs() / *sent as f64 * 100.0;
        ensure(
            off <= tolerance.max(100.0 / *sent as f64),
            format!(
                "{sent} requests answered {status} raised the counter by {counted}: the monitoring miscounts them"
            ),
            &evidence,
        )?;
    }
    ensure(
        error <= tolerance,
        format!("the monitored rate is off by more than {tolerance} %"),
        &evidence,
    )?;
    Ok(evidence)
}
