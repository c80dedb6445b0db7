//! Monitoring kinds: what the design's monitoring server (the host running
//! `prometheus`) holds, asked with PromQL, and how soon it sees a fault.

use std::time::{Duration, Instant};

use super::common::{first_scrapes_done, prometheus, wait_for};
use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::probe;
use crate::recorder::Recorder;
use crate::stack::{Fault, Stack, WWW};

mod logs;
mod rate;
mod timely;

pub use logs::LOGS_CENTRALISED;
pub use rate::COUNTER_RATE;
pub use timely::{ALERT_FIRES, DETECTS_DOWN};

/// The value of each series of `query` by its `label`, sorted by label.
async fn by_label(stack: &Stack, query: &str, label: &str) -> Result<Vec<(String, f64)>, Failure> {
    let mut out: Vec<(String, f64)> = prometheus(stack, query)
        .await?
        .iter()
        .filter_map(|r| {
            let key = r["metric"][label].as_str()?.to_string();
            let value = r["value"][1].as_str()?.parse().ok()?;
            Some((key, value))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// How long a fresh stack's Prometheus may take to have scraped every
/// target: it throttles target discovery for about 5 s after its start
/// (Prometheus 2.42), then scrapes every second.
const FIRST_SCRAPE: Duration = Duration::from_secs(10);

/// How long, once every target has been scraped, a state may still take
/// to show (a collector that was down at its first scrape and is up at
/// the next): three scrape intervals of the designs' 1 s. A target the
/// configuration does not have never shows; waiting FIRST_SCRAPE for it
/// cost a mutant 10 s.
const AFTER_FIRST_SCRAPE: Duration = Duration::from_secs(3);

/// `monitoring.targets_up`: the collectors of these hosts are up.
pub const TARGETS_UP: Kind = Kind {
    name: "monitoring.targets_up",
    doc: "The monitoring server's `up{job=\"<job>\"}` has one series per host of `hosts` (by its `host` label), each 1, and no other (waiting up to 10 s for a fresh server's first scrapes).",
    params: &[
        Param::required("hosts", Ty::Hosts, "the hosts whose collectors must be up"),
        Param::optional("job", Ty::Text, "the scrape job", "\"node\""),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.clients_up"
says = "monitoring clients on all servers"
kind = "monitoring.targets_up"
hosts = ["lb-1", "web-1", "web-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(targets_up),
};

async fn targets_up(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let query = format!("up{{job=\"{}\"}}", p.text("job"));
    let mut want: Vec<(String, f64)> = p
        .list("hosts")
        .iter()
        .map(|h| (h.to_string(), 1.0))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    first_scrapes_done(stack, rec, FIRST_SCRAPE).await;
    let _ = wait_for(AFTER_FIRST_SCRAPE, || async {
        by_label(stack, &query, "host")
            .await
            .is_ok_and(|v| v == want)
    })
    .await;
    let seen = by_label(stack, &query, "host").await?;
    let evidence = format!(
        "Prometheus, {query}: {}",
        seen.iter()
            .map(|(h, v)| format!("{h}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure_eq("collectors up", want, seen, &evidence)?;
    Ok(evidence)
}

/// `monitoring.series_for_hosts`: every host has each kind of series.
pub const SERIES_FOR_HOSTS: Kind = Kind {
    name: "monitoring.series_for_hosts",
    doc: "For each of `queries`, the monitoring server holds series for exactly the hosts of `hosts` (by their `host` label; every host of the design when `hosts` is empty).",
    params: &[
        Param::required(
            "queries",
            Ty::Texts,
            "PromQL queries, one per kind of resource",
        ),
        Param::optional(
            "hosts",
            Ty::Hosts,
            "the hosts (empty: every host of the design)",
            "[]",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.resources"
says = "monitor CPU, memory and disk on every host"
kind = "monitoring.series_for_hosts"
queries = ["count by (host) (node_cpu_seconds_total)", "node_memory_MemAvailable_bytes"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(series_for_hosts),
};

async fn hosts_with(stack: &Stack, query: &str) -> Result<Vec<String>, Failure> {
    let mut hosts: Vec<String> = prometheus(stack, query)
        .await?
        .iter()
        .filter_map(|r| r["metric"]["host"].as_str().map(str::to_string))
        .collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

async fn series_for_hosts(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let mut all: Vec<String> = match p.list("hosts") {
        h if h.is_empty() => stack.hosts.keys().cloned().collect(),
        h => h.into_iter().map(String::from).collect(),
    };
    all.sort();
    let queries = p.list("queries");
    let first = queries.first().copied().unwrap_or_default();
    // A fresh server needs a scrape or two.
    first_scrapes_done(stack, rec, FIRST_SCRAPE).await;
    let _ = wait_for(AFTER_FIRST_SCRAPE, || async {
        hosts_with(stack, first).await.is_ok_and(|h| h == all)
    })
    .await;
    let mut seen = Vec::new();
    for q in &queries {
        seen.push((*q, hosts_with(stack, q).await?));
    }
    let evidence = seen
        .iter()
        .map(|(q, h)| format!("`{q}`: {} hosts [{}]", h.len(), h.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    for (q, hosts) in &seen {
        ensure_eq(
            &format!("hosts with series for `{q}`"),
            &all,
            hosts,
            &evidence,
        )?;
    }
    Ok(evidence)
}

/// `monitoring.response_times`: the monitored response time rises with a slow backend.
pub const RESPONSE_TIMES: Kind = Kind {
    name: "monitoring.response_times",
    doc: "The monitoring server holds a response-time series (`query`, seconds, by its `server` label) for every backend; with the first backend's link cut to `kbit` kbit/s (tc TBF: this kernel has no netem), `requests` concurrent dynamic pages make its series rise by `rise_ms` or more, above the second backend's.",
    params: &[
        Param::required("backends", Ty::Hosts, "the backends; the first is slowed"),
        Param::optional(
            "query",
            Ty::Text,
            "PromQL of the per-backend series, in seconds",
            "\"haproxy_server_total_time_average_seconds{proxy=\\\"web\\\"}\"",
        ),
        Param::optional("kbit", Ty::Int, "the slowed link's rate", "32"),
        Param::optional(
            "requests",
            Ty::Int,
            "concurrent dynamic pages while slowed",
            "20",
        ),
        Param::optional("rise_ms", Ty::Number, "how much its series must rise", "5"),
        crate::kinds::common::SCHEME,
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.response_times"
says = "the monitoring collects response times"
kind = "monitoring.response_times"
backends = ["web-1", "web-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(response_times),
};

/// How long a page from the slowed backend is waited for: its link's
/// queue, at the default 32 kbit/s and 20 pages, takes seconds to drain.
const SLOWED_PAGE_WAIT: Duration = Duration::from_secs(30);

async fn response_series(stack: &Stack, query: &str) -> Result<Vec<(String, f64)>, Failure> {
    Ok(by_label(stack, query, "server")
        .await?
        .into_iter()
        .map(|(s, v)| (s, v * 1000.0))
        .collect())
}

async fn response_times(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let backends = p.list("backends");
    let query = p.text("query");
    let (kbit, n, rise) = (
        p.int("kbit") as u32,
        p.int("requests") as usize,
        p.number("rise_ms"),
    );
    let (slowed, other) = (backends[0], backends.get(1).copied().unwrap_or(backends[0]));
    // A scrape or two, however often the running Prometheus scrapes.
    let every = super::common::longest_scrape_interval(stack)
        .await
        .unwrap_or(Duration::from_secs(1));
    let scrapes_wait = Duration::from_secs(5).max(every * 2 + Duration::from_secs(1));
    first_scrapes_done(stack, rec, FIRST_SCRAPE).await;
    let _ = wait_for(scrapes_wait, || async {
        response_series(stack, query)
            .await
            .is_ok_and(|r| r.len() >= backends.len())
    })
    .await;
    let before = response_series(stack, query).await?;
    let has = |rows: &[(String, f64)], s: &str| rows.iter().find(|(n, _)| n == s).map(|(_, v)| *v);
    let shown = |rows: &[(String, f64)]| {
        rows.iter()
            .map(|(s, v)| format!("{s} {v:.0} ms"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let missing: Vec<&str> = backends
        .iter()
        .copied()
        .filter(|s| has(&before, s).is_none())
        .collect();
    if before.is_empty() {
        // Nothing to compare: say what Prometheus does scrape, not "[]".
        let mut up = std::collections::BTreeMap::<String, f64>::new();
        for (job, v) in by_label(stack, "up", "job").await.unwrap_or_default() {
            let worst = up.entry(job).or_insert(1.0);
            *worst = worst.min(v);
        }
        return Err(Failure::new(
            format!(
                "the monitoring server holds no response-time series at all: none of its scrape targets exports `{query}` (for HAProxy: a frontend with `http-request use-service prometheus-exporter`, scraped by Prometheus)"
            ),
            format!(
                "`{query}` returns nothing; jobs Prometheus scrapes: {}",
                if up.is_empty() {
                    "none".to_string()
                } else {
                    up.iter()
                        .map(|(job, v)| {
                            format!("{job} ({})", if *v == 1.0 { "up" } else { "down" })
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ));
    }
    ensure(
        missing.is_empty(),
        format!("the monitoring server holds no response-time series for {missing:?}"),
        &format!("series before: [{}]", shown(&before)),
    )?;
    let fault = stack.apply(Fault::SlowLink(slowed, kbit)).await?;
    // Concurrent dynamic pages: some go to the slowed server and queue on
    // its link. HAProxy counts a session's time once it ends, so the pages
    // are waited for (the client's own 5 s abandoned the ones queued last,
    // and the few that came back moved the average by 2-64 ms) while the
    // series is read, until it rises or every page has ended.
    let url = format!("{}://{WWW}/index.php", p.text("scheme"));
    let rose = |rows: &[(String, f64)]| matches!((has(rows, slowed), has(&before, slowed)), (Some(a), Some(b)) if a >= b + rise);
    let mut pages: futures::stream::FuturesUnordered<_> = (0..n)
        .map(|_| probe::burst_within(&stack.client.fresh, &url, 1, Some(SLOWED_PAGE_WAIT)))
        .collect();
    let (mut answered, mut ended) = (0, 0);
    let mut after = before.clone();
    let mut read_at = Instant::now();
    while ended < n && !rose(&after) {
        tokio::select! {
            Some((ok, _)) = futures::StreamExt::next(&mut pages) => {
                answered += ok;
                ended += 1;
            }
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        if read_at.elapsed() >= Duration::from_millis(250) {
            after = response_series(stack, query).await?;
            read_at = Instant::now();
        }
    }
    drop(pages);
    fault.restore().await?;
    let started = Instant::now();
    while !rose(&after) && started.elapsed() < scrapes_wait {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = response_series(stack, query).await?;
    }
    let evidence = format!(
        "series before: [{}]; {slowed}'s link cut to {kbit} kbit/s, {n} concurrent dynamic pages ({answered} answered{}); series after: [{}]",
        shown(&before),
        if ended < n {
            format!(", {} still queued when the series rose", n - ended)
        } else {
            String::new()
        },
        shown(&after)
    );
    ensure(
        answered > 0,
        "the site answered no request while one backend was slowed",
        &evidence,
    )?;
    ensure(
        rose(&after),
        format!(
            "the monitored response time of {slowed} did not rise by {rise} ms while its link was slowed"
        ),
        &evidence,
    )?;
    ensure(
        has(&after, slowed) > has(&after, other),
        format!("the slowed {slowed} does not look slower than {other} in the monitoring"),
        &evidence,
    )?;
    Ok(evidence)
}
