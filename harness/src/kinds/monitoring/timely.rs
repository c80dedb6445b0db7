//! How soon the monitoring sees a fault: a series reading down, an alert firing.

use crate::kinds::Facts;
use std::time::Duration;

use super::FIRST_SCRAPE;
use crate::failure::{CheckResult, Failure, ensure};
use crate::kinds::common::{
    FAULT, FAULT_ARG, FAULT_SERVICE, FaultSpec, first_scrapes_done, late_wait, prometheus,
    restore_all, wait_for,
};
use crate::kinds::{Kind, Param, Params, Ty};
use crate::probe;
use crate::recorder::{Figure, Recorder};
use crate::stack::{Stack, WWW};

/// How long monitoring took to show a stopped target down.
const DOWN_DETECTED: Figure = Figure::new("down detected (ms)");

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
    facts: Facts::PLAIN,
    check: crate::kind_check!(detects_down),
};

async fn detects_down(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (query, fault) = (p.text("query"), FaultSpec::of(p));
    let hosts = p.list("hosts");
    let window = p.ms("window_ms");
    let value = |r: &serde_json::Value| r["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
    // No job scraping more often than the window: no series can meet it
    // (and waiting for first scrapes a minute apart would cost a minute).
    if let Some(fastest) = crate::kinds::common::shortest_scrape_interval(stack).await
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
    first_scrapes_done(stack, rec, FIRST_SCRAPE).await;
    let up_before = prometheus(stack, query).await?;
    let was_up = up_before.iter().any(|r| value(r) == Some(1.0));
    // The scrape interval of the job that scrapes the series explains the
    // figure; the window is the design's and stays what the claim says.
    let job = up_before
        .first()
        .and_then(|r| r["metric"]["job"].as_str())
        .unwrap_or_default();
    let every = crate::kinds::common::scrape_interval_of(stack, job).await;
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
    rec.waiting_for(&format!(
        "`{query}` to read 0 (window {} ms)",
        window.as_millis()
    ));
    let seen = wait_for(crate::kinds::common::late_wait(window), || async {
        prometheus(stack, query)
            .await
            .is_ok_and(|v| v.iter().any(|r| value(r) == Some(0.0)))
    })
    .await;
    restore_all(guards).await?;
    if let Some(d) = seen {
        rec.measured(DOWN_DETECTED, d.as_millis() as f64);
    }
    let evidence = format!(
        "{before}; {}: monitoring showed it down {}",
        fault.words(&hosts),
        seen.map(|d| format!("after {} ms", d.as_millis()))
            .unwrap_or_else(|| format!(
                "NEVER within {} ms",
                crate::kinds::common::late_wait(window).as_millis()
            )),
    );
    ensure(
        seen.is_some(),
        "monitoring did not show it down, even well past the window",
        &evidence,
    )?;
    // Judged by the runner: on this run, or on a percentile of a repeated
    // claim's runs (`percentile` in the claims file).
    rec.budget(DOWN_DETECTED, window.as_millis() as f64);
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
    facts: Facts::PLAIN,
    check: crate::kind_check!(alert_fires),
};

async fn alert_fires(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
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
    first_scrapes_done(stack, rec, FIRST_SCRAPE).await;
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
            rec.waiting_for(&format!("the {alert} alert to fire"));
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
    rec.record_timeline_marked(&fault.words(&hosts), &report, Some(window), &marks);
    if let Some(d) = fired {
        rec.record(&format!("{alert} alert fired (ms)"), d.as_millis() as f64);
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
