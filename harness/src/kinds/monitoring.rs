//! Monitoring kinds: what the design's monitoring server (the host running
//! `prometheus`) holds, asked with PromQL, and how soon it sees a fault.

use std::time::{Duration, Instant};

use super::common::{
    FAULT, FAULT_ARG, FAULT_SERVICE, FaultSpec, PARSE_LAG, first_scrapes_done, late_wait,
    prometheus, req_failed, restore_all, scraped_since, wait_for,
};
use super::{Kind, Param, Params, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::probe;
use crate::stack::{Fault, Stack, WWW};

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
    check: crate::kind_check!(targets_up),
};

async fn targets_up(stack: &Stack, p: &Params) -> CheckResult {
    let query = format!("up{{job=\"{}\"}}", p.text("job"));
    let mut want: Vec<(String, f64)> = p
        .list("hosts")
        .iter()
        .map(|h| (h.to_string(), 1.0))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    first_scrapes_done(stack, FIRST_SCRAPE).await;
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

async fn series_for_hosts(stack: &Stack, p: &Params) -> CheckResult {
    let mut all: Vec<String> = match p.list("hosts") {
        h if h.is_empty() => stack.hosts.keys().cloned().collect(),
        h => h.into_iter().map(String::from).collect(),
    };
    all.sort();
    let queries = p.list("queries");
    let first = queries.first().copied().unwrap_or_default();
    // A fresh server needs a scrape or two.
    first_scrapes_done(stack, FIRST_SCRAPE).await;
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
        Param::optional(
            "scheme",
            Ty::Choice(&["http", "https"]),
            "how the client asks",
            "\"http\"",
        ),
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

async fn counter_rate(stack: &Stack, p: &Params) -> CheckResult {
    let (query, up_query) = (p.text("query"), p.text("up_query"));
    let (per_status, status_label) = (p.text("per_status"), p.text("status_label"));
    let n = p.int("requests").max(2) as usize;
    let interval = p.ms("interval_ms");
    let tolerance = p.number("tolerance_pct");
    let asks = match p.text("method") {
        "" => super::traffic::mix_without(&p.list("leave_out")),
        method => vec![super::traffic::Ask {
            method: if method == "HEAD" { "HEAD" } else { "GET" },
            path: super::traffic::MIX[0].path,
            status: 200,
            what: "page",
        }],
    };
    let one_path = (!p.text("method").is_empty()).then(|| p.text("path"));
    // Run alone on a new stack, "before" read an absent counter from a
    // Prometheus that had scraped nothing yet.
    first_scrapes_done(stack, FIRST_SCRAPE).await;
    if !up_query.is_empty() {
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
    }
    // A counter with no series yet (nothing counted so far) is a true 0 once its target is up.
    let settled = |v: Option<f64>| v.or(if up_query.is_empty() { None } else { Some(0.0) });
    // "Before" is settled once every target has been scraped after the
    // earlier traffic (and after a parser such as mtail read its log).
    scraped_since(
        stack,
        std::time::SystemTime::now() + PARSE_LAG,
        FIRST_SCRAPE,
    )
    .await;
    let before = settled(counter_value(stack, query).await?);
    let status_before = match per_status {
        "" => Vec::new(),
        q => by_label(stack, q, status_label).await?,
    };
    let mark = super::common::marker("rate");
    let sent =
        super::traffic::send(stack, p.text("scheme"), asks, one_path, &mark, n, interval).await?;
    let span = sent.span.as_secs_f64().max(interval.as_secs_f64());
    // Until a scrape shows every request, or the counter stops growing
    // for longer than a scrape interval (a user's may be 15 s).
    let every = super::common::longest_scrape_interval(stack)
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
    let status_after = match per_status {
        "" => Vec::new(),
        q => by_label(stack, q, status_label).await?,
    };
    // Per status the site answered: sent, and counted by the series
    // whose label stands for it.
    let per: Vec<(u16, usize, f64)> = if per_status.is_empty() {
        Vec::new()
    } else {
        sent.by_status()
            .into_iter()
            .map(|(status, count)| {
                let grew = |series: &[(String, f64)]| -> f64 {
                    series
                        .iter()
                        .filter(|(l, _)| label_means(l, status))
                        .map(|(_, v)| v)
                        .sum()
                };
                (status, count, grew(&status_after) - grew(&status_before))
            })
            .collect()
    };
    let sent_qps = n as f64 / span;
    let counted = match (before, after) {
        (Some(b), Some(a)) => a - b,
        _ => 0.0,
    };
    let monitored_qps = counted / span;
    let error = (monitored_qps - sent_qps).abs() / sent_qps * 100.0;
    stack.recorder.record("monitored rate error (%)", error);
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
    let evidence = format!(
        "sent {n} requests over {span:.2} s ({}; {} answered) = {sent_qps:.1} qps; `{query}` in Prometheus {} → {} = {monitored_qps:.1} qps; error {error:.1} % (allowed {tolerance} %){per_words}",
        sent.words(),
        sent.answered(),
        before
            .map(|v| v.to_string())
            .unwrap_or_else(|| "absent".into()),
        after
            .map(|v| v.to_string())
            .unwrap_or_else(|| "absent".into()),
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

/// `monitoring.detects_down`: a stopped service shows as 0 in time.
pub const DETECTS_DOWN: Kind = Kind {
    name: "monitoring.detects_down",
    doc: "`query` has a series at 1 before; with `fault` applied to `hosts`, some series of it reads 0 within `window_ms`, the design's promise. The running Prometheus's scrape interval for the series' job is printed: it explains the figure but never widens the window, and an interval longer than the window is a FAIL without the fault (a stop just after a scrape would stay unseen that long).",
    params: &[
        Param::required(
            "query",
            Ty::Text,
            "PromQL of the health series (`nginx_up{host=\"web-1\"}`)",
        ),
        FAULT,
        Param::required("hosts", Ty::Hosts, "to which hosts"),
        FAULT_SERVICE,
        FAULT_ARG,
        Param::optional(
            "window_ms",
            Ty::Ms,
            "how soon it must show: the design's promise (\"real-time\": 30 s, which Prometheus's default 15 s scrape meets)",
            "30000",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.detects_down"
says = "monitoring detects a failed web server"
kind = "monitoring.detects_down"
query = "nginx_up{host=\"web-1\"}"
fault = "stop_service"
hosts = ["web-1"]
service = "nginx"
window_ms = 30000"#,
    check: crate::kind_check!(detects_down),
};

async fn detects_down(stack: &Stack, p: &Params) -> CheckResult {
    let (query, fault) = (p.text("query"), FaultSpec::of(p));
    let hosts = p.list("hosts");
    let window = p.ms("window_ms");
    let value = |r: &serde_json::Value| r["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
    // No job scraping more often than the window: no series can meet it
    // (and waiting for first scrapes a minute apart would cost a minute).
    if let Some(fastest) = super::common::shortest_scrape_interval(stack).await
        && fastest > window
    {
        return Err(Failure::new(
            format!(
                "a scrape every {} s cannot show a stop within the {} s promised: a service that stops just after a scrape stays unseen for up to {} s",
                fastest.as_secs_f64(),
                window.as_secs_f64(),
                fastest.as_secs_f64()
            ),
            format!(
                "the running Prometheus scrapes no job more often than every {} ms; window {} ms",
                fastest.as_millis(),
                window.as_millis()
            ),
        ));
    }
    // "Up before" needs a first scrape: run alone on a new stack, this
    // claim read "not up" from a Prometheus that had scraped nothing yet.
    first_scrapes_done(stack, FIRST_SCRAPE).await;
    let up_before = prometheus(stack, query).await?;
    let was_up = up_before.iter().any(|r| value(r) == Some(1.0));
    // The scrape interval of the job that scrapes the series explains the
    // figure; the window is the design's and stays what the claim says.
    let job = up_before
        .first()
        .and_then(|r| r["metric"]["job"].as_str())
        .unwrap_or_default();
    let every = super::common::scrape_interval_of(stack, job).await;
    let scraped = match every {
        Some(every) if job.is_empty() => format!("scraped every {} ms", every.as_millis()),
        Some(every) => format!("job `{job}` scraped every {} ms", every.as_millis()),
        None => "scrape interval unknown".into(),
    };
    let before = format!(
        "{query} before: {}; {scraped}; window {} ms",
        if was_up { "1" } else { "not 1" },
        window.as_millis()
    );
    ensure(
        was_up,
        "monitoring did not show it up before the fault",
        &before,
    )?;
    if let Some(every) = every
        && every > window
    {
        return Err(Failure::new(
            format!(
                "a scrape every {} s cannot show a stop within the {} s promised: a service that stops just after a scrape stays unseen for up to {} s",
                every.as_secs_f64(),
                window.as_secs_f64(),
                every.as_secs_f64()
            ),
            before,
        ));
    }
    let guards = fault.apply(stack, &hosts).await?;
    stack.recorder.waiting_for(&format!(
        "`{query}` to read 0 (window {} ms)",
        window.as_millis()
    ));
    let seen = wait_for(window, || async {
        prometheus(stack, query)
            .await
            .is_ok_and(|v| v.iter().any(|r| value(r) == Some(0.0)))
    })
    .await;
    restore_all(guards).await?;
    if let Some(d) = seen {
        stack
            .recorder
            .record("down detected (ms)", d.as_millis() as f64);
    }
    let evidence = format!(
        "{before}; {}: monitoring showed it down {}",
        fault.words(&hosts),
        seen.map(|d| format!("after {} ms", d.as_millis()))
            .unwrap_or_else(|| format!("NEVER within {} ms", window.as_millis())),
    );
    ensure(
        seen.is_some_and(|d| d <= window),
        "monitoring did not show it down in time",
        &evidence,
    )?;
    Ok(evidence)
}

/// `monitoring.alert_fires`: an alert fires within its rule's window.
pub const ALERT_FIRES: Kind = Kind {
    name: "monitoring.alert_fires",
    doc: "The alert `alert` (for the `host` label of the first of `hosts`) is not firing before; with `fault` applied to `hosts`, Prometheus shows it firing within `window_ms` (scrape interval + the rule's `for` + evaluation + slack).",
    params: &[
        Param::required("alert", Ty::Text, "the alert's name (`HostDown`)"),
        FAULT,
        Param::required("hosts", Ty::Hosts, "to which hosts"),
        FAULT_SERVICE,
        FAULT_ARG,
        Param::optional("window_ms", Ty::Ms, "how soon it must fire", "6000"),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.alert_on_down"
says = "an alert fires when a server goes down"
kind = "monitoring.alert_fires"
alert = "HostDown"
fault = "stop_host"
hosts = ["web-1"]"#,
    check: crate::kind_check!(alert_fires),
};

async fn alert_fires(stack: &Stack, p: &Params) -> CheckResult {
    let (alert, fault) = (p.text("alert"), FaultSpec::of(p));
    let hosts = p.list("hosts");
    let window = p.ms("window_ms");
    let query = format!(
        "ALERTS{{alertname=\"{alert}\",alertstate=\"firing\",host=\"{}\"}}",
        hosts.first().copied().unwrap_or_default()
    );
    let firing = || async {
        prometheus(stack, &query)
            .await
            .map(|r| !r.is_empty())
            .unwrap_or(false)
    };
    // The host must have been seen up before it goes down: run alone on a
    // new stack, the alert took the first scrape's delay longer (7.0 s
    // against a 6 s window) and the claim failed a correct design.
    first_scrapes_done(stack, FIRST_SCRAPE).await;
    // Prometheus must answer before the fault: a query that fails is our
    // measuring failing (ERROR), never an alert that did not fire.
    let quiet_before = prometheus(stack, &query).await?.is_empty();
    // A probe of the site runs through the fault: what users saw until the alert fired.
    let (report, inner) = probe::probe_through(
        &stack.client.probe,
        &format!("http://{WWW}/static/hello.txt"),
        Duration::from_millis(100),
        Duration::from_millis(300),
        2000,
        async {
            let guards = fault.apply(stack, &hosts).await?;
            stack
                .recorder
                .waiting_for(&format!("the {alert} alert to fire"));
            let fired = wait_for(late_wait(window), firing).await;
            restore_all(guards).await?;
            Ok::<_, Failure>(fired)
        },
    )
    .await;
    let fired = inner?;
    if fired.is_none() {
        // "never fired" only counts when Prometheus still answers.
        prometheus(stack, &query).await?;
    }
    let marks: Vec<(Duration, &str)> = fired.map(|d| (d, "alert fired")).into_iter().collect();
    stack
        .recorder
        .record_timeline_marked(&fault.words(&hosts), &report, Some(window), &marks);
    if let Some(d) = fired {
        stack
            .recorder
            .record(&format!("{alert} alert fired (ms)"), d.as_millis() as f64);
    }
    let evidence = format!(
        "{query} {} before; {}: alert {} (window {} ms)",
        if quiet_before {
            "not firing"
        } else {
            "ALREADY firing"
        },
        fault.words(&hosts),
        fired
            .map(|d| format!("firing after {} ms", d.as_millis()))
            .unwrap_or_else(|| "never fired".into()),
        window.as_millis()
    );
    ensure(
        quiet_before,
        "the alert fired before anything was down",
        &evidence,
    )?;
    ensure(
        fired.is_some_and(|d| d <= window),
        "the alert did not fire within the rule's window",
        &evidence,
    )?;
    Ok(evidence)
}

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
        Param::optional(
            "scheme",
            Ty::Choice(&["http", "https"]),
            "how the client asks",
            "\"http\"",
        ),
        Param::optional("budget_ms", Ty::Ms, "how soon a line must arrive", "5000"),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.logs_centralised"
says = "servers send their logs to a central log host"
kind = "monitoring.logs_centralised"
log_host = "mon-1"
servers = ["web-1", "web-2"]"#,
    check: crate::kind_check!(logs_centralised),
};

async fn logs_centralised(stack: &Stack, p: &Params) -> CheckResult {
    let (log_host, dir, scheme) = (p.host("log_host"), p.text("dir"), p.text("scheme"));
    let (servers, tags) = (p.list("servers"), p.list("tags"));
    let budget = p.ms("budget_ms");
    let marker = super::common::marker("central");
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
        stack.recorder.record(
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
        Param::optional(
            "scheme",
            Ty::Choice(&["http", "https"]),
            "how the client asks",
            "\"http\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.monitoring.response_times"
says = "the monitoring collects response times"
kind = "monitoring.response_times"
backends = ["web-1", "web-2"]"#,
    check: crate::kind_check!(response_times),
};

async fn response_series(stack: &Stack, query: &str) -> Result<Vec<(String, f64)>, Failure> {
    Ok(by_label(stack, query, "server")
        .await?
        .into_iter()
        .map(|(s, v)| (s, v * 1000.0))
        .collect())
}

async fn response_times(stack: &Stack, p: &Params) -> CheckResult {
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
    first_scrapes_done(stack, FIRST_SCRAPE).await;
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
    // Concurrent dynamic pages: some go to the slowed server and queue on its link.
    let url = format!("{}://{WWW}/index.php", p.text("scheme"));
    let (answered, _) = probe::burst(&stack.client.fresh, &url, n).await;
    fault.restore().await?;
    let rose = |rows: &[(String, f64)]| matches!((has(rows, slowed), has(&before, slowed)), (Some(a), Some(b)) if a >= b + rise);
    let mut after = response_series(stack, query).await?;
    let started = Instant::now();
    while !rose(&after) && started.elapsed() < scrapes_wait {
        tokio::time::sleep(Duration::from_millis(250)).await;
        after = response_series(stack, query).await?;
    }
    let evidence = format!(
        "series before: [{}]; {slowed}'s link cut to {kbit} kbit/s, {n} concurrent dynamic pages ({answered} answered); series after: [{}]",
        shown(&before),
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
