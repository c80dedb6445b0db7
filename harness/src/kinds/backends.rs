//! `lb.skips_dead_backend`: a load balancer of any make (HAProxy, Nginx,
//! Apache...) stops sending requests to a dead backend and takes it back,
//! judged only from the traffic and the backends' own access logs.

use std::time::{Duration, Instant};

use super::common::{counted_by, marker};
use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, ensure, ensure_eq};
use crate::recorder::Recorder;
use crate::stack::{Fault, Stack, WWW};

/// `lb.skips_dead_backend`: a dead backend gets no more requests, in time, and comes back.
pub const SKIPS_DEAD_BACKEND: Kind = Kind {
    name: "lb.skips_dead_backend",
    doc: "For any load balancer, from the traffic and the backends' own `web` access logs: `requests` requests all succeed and `backend` serves some; with `service` stopped on `backend`, the site answers `requests` requests in a row within `within_ms` (the design's promise; requests failing before that are counted), each served by one of the other backends; started again, `backend` serves a request again within `rejoin_within_ms`. Works with N backends.",
    params: &[
        super::lb::BACKENDS,
        super::lb::WEB,
        Param::required("backend", Ty::Host, "the backend taken down"),
        Param::optional(
            "service",
            Ty::Text,
            "the service stopped on it (\"\": `web`)",
            "\"\"",
        ),
        Param::optional(
            "path",
            Ty::Text,
            "the page asked for",
            "\"/static/hello.txt\"",
        ),
        crate::kinds::common::SCHEME,
        Param::optional(
            "requests",
            Ty::Int,
            "requests in a row that must succeed",
            "10",
        ),
        Param::optional(
            "within_ms",
            Ty::Ms,
            "the promise: a dead backend takes no more traffic after this long",
            "20000",
        ),
        Param::optional(
            "rejoin_within_ms",
            Ty::Ms,
            "the promise: a started backend takes traffic again within this long",
            "60000",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.lb.skips_dead_backend"
says = "traffic goes to servers that can take it"
kind = "lb.skips_dead_backend"
backends = ["web-1", "web-2", "web-3"]
web = "nginx"
backend = "web-1""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(skips_dead_backend),
};

async fn skips_dead_backend(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (backends, web, dead) = (p.list("backends"), p.text("web"), p.host("backend"));
    let service = match p.text("service") {
        "" => web,
        s => s,
    };
    let n = p.int("requests").max(1) as usize;
    let (within, rejoin_within) = (p.ms("within_ms"), p.ms("rejoin_within_ms"));
    let url =
        |mark: &str, i: usize| format!("{}://{WWW}{}?{mark}-{i}", p.text("scheme"), p.text("path"));
    let get = |u: String| async move {
        stack
            .client
            .fresh
            .get(u)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    let listed = |counted: &[Vec<String>]| {
        backends
            .iter()
            .map(|b| {
                format!(
                    "{b} {}",
                    counted
                        .iter()
                        .filter(|c| c.len() == 1 && c[0] == *b)
                        .count()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Before: the site works and the backend to stop takes its share.
    let before_mark = marker("dead0");
    let mut ok_before = 0;
    for i in 0..n {
        ok_before += usize::from(get(url(&before_mark, i)).await);
    }
    let before = counted_by(stack, web, &backends, &before_mark, n).await?;
    let before_words = format!(
        "{ok_before} of {n} answered with every backend up ({})",
        listed(&before)
    );
    ensure_eq(
        "requests answered with every backend up",
        n,
        ok_before,
        &before_words,
    )?;
    ensure(
        before.iter().any(|c| c.iter().any(|h| h == dead)),
        format!(
            "{dead} served none of {n} requests with every backend up, so taking it out proves nothing"
        ),
        &before_words,
    )?;
    // Down: requests until `n` in a row succeed, at most `within`.
    let fault = stack.apply(Fault::StopService(dead, service)).await?;
    rec.waiting_for(&format!("{n} requests in a row to succeed without {dead}"));
    let down_mark = marker("dead1");
    let stopped = Instant::now();
    let (mut sent, mut failed, mut in_a_row, mut run_start) = (0usize, 0usize, 0usize, None);
    let mut run = Vec::new();
    while in_a_row < n && stopped.elapsed() < within {
        let at = stopped.elapsed();
        let ok = get(url(&down_mark, sent)).await;
        if ok {
            if in_a_row == 0 {
                run_start = Some(at);
                run.clear();
            }
            in_a_row += 1;
            run.push(sent);
        } else {
            failed += 1;
            in_a_row = 0;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent += 1;
    }
    let out_after = (in_a_row >= n).then_some(run_start).flatten();
    let counted = counted_by(stack, web, &backends, &down_mark, sent).await?;
    let run_counted: Vec<Vec<String>> = run.iter().map(|i| counted[*i].clone()).collect();
    let via_others = run_counted
        .iter()
        .filter(|c| c.len() == 1 && c[0] != dead)
        .count();
    // Up again: until the backend's own log shows a request, at most `rejoin_within`.
    let restarted = fault.restore().await;
    rec.waiting_for(&format!("{dead} to take requests again"));
    let up_mark = marker("dead2");
    let started = Instant::now();
    let mut back_after = None;
    let mut i = 0;
    'rejoin: while started.elapsed() < rejoin_within {
        for _ in 0..backends.len() {
            get(url(&up_mark, i)).await;
            i += 1;
        }
        let seen = counted_by(stack, web, &[dead], &up_mark, i).await?;
        if seen.iter().any(|c| !c.is_empty()) {
            back_after = Some(started.elapsed());
            break 'rejoin;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    restarted?;
    if let Some(d) = out_after {
        rec.record("dead backend out (ms)", d.as_millis() as f64);
    }
    if let Some(d) = back_after {
        rec.record("backend back (ms)", d.as_millis() as f64);
    }
    let ms = |d: Option<Duration>| {
        d.map_or("never".to_string(), |d| {
            format!("after {} ms", d.as_millis())
        })
    };
    let evidence = format!(
        "{before_words}; {service} stopped on {dead}: {failed} of {sent} requests failed, {n} in a row succeeded {} (promised within {} ms), served by: {}; started again: {dead} served a request {} (promised within {} ms)",
        ms(out_after),
        within.as_millis(),
        listed(&run_counted),
        ms(back_after),
        rejoin_within.as_millis()
    );
    ensure(
        out_after.is_some(),
        format!(
            "with {dead} down, the site did not answer {n} requests in a row within {} ms: the load balancer keeps sending requests to the dead backend",
            within.as_millis()
        ),
        &evidence,
    )?;
    ensure_eq(
        "requests served by the backends still up",
        n,
        via_others,
        &evidence,
    )?;
    ensure(
        back_after.is_some(),
        format!(
            "{dead} took no request within {} ms of starting again: the load balancer did not take it back",
            rejoin_within.as_millis()
        ),
        &evidence,
    )?;
    Ok(evidence)
}
