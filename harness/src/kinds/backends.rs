//! `lb.skips_dead_backend`: a load balancer of any make (HAProxy, Nginx,
//! Apache...) stops sending requests to a dead backend and takes it back,
//! judged only from the traffic and the backends' own access logs.

use std::time::{Duration, Instant};

use super::common::{counted_by, marker};
use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
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
    let (web, dead) = (p.text("web"), p.host("backend"));
    let service = match p.text("service") {
        "" => web,
        s => s,
    };
    let (within, rejoin_within) = (p.ms("within_ms"), p.ms("rejoin_within_ms"));
    let site = DeadBackend {
        stack,
        backends: p.list("backends"),
        web,
        dead,
        n: p.int("requests").max(1) as usize,
        scheme: p.text("scheme"),
        path: p.text("path"),
    };
    let n = site.n;
    let before_words = site.with_every_backend_up().await?;
    let fault = stack.apply(Fault::StopService(dead, service)).await?;
    rec.waiting_for(&format!("{n} requests in a row to succeed without {dead}"));
    let down = site.until_in_a_row(within).await?;
    let restarted = fault.restore().await;
    rec.waiting_for(&format!("{dead} to take requests again"));
    let back_after = site.until_back(rejoin_within).await?;
    restarted?;
    if let Some(d) = down.out_after {
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
    let via_others = down
        .run_counted
        .iter()
        .filter(|c| c.len() == 1 && c[0] != dead)
        .count();
    let evidence = format!(
        "{before_words}; {service} stopped on {dead}: {} of {} requests failed, {n} in a row succeeded {} (promised within {} ms), served by: {}; started again: {dead} served a request {} (promised within {} ms)",
        down.failed,
        down.sent,
        ms(down.out_after),
        within.as_millis(),
        site.listed(&down.run_counted),
        ms(back_after),
        rejoin_within.as_millis()
    );
    ensure(
        down.out_after.is_some(),
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

/// The site, its backends, and the one the claim stops.
struct DeadBackend<'a> {
    stack: &'a Stack,
    backends: Vec<&'a str>,
    web: &'a str,
    dead: &'a str,
    /// Requests in a row that must succeed.
    n: usize,
    scheme: &'a str,
    path: &'a str,
}

/// What the requests sent while the backend was down found.
struct WhileDown {
    sent: usize,
    failed: usize,
    /// When the run of `n` successes began, if one came.
    out_after: Option<Duration>,
    /// The backends that logged each request of that run.
    run_counted: Vec<Vec<String>>,
}

impl DeadBackend<'_> {
    fn url(&self, mark: &str, i: usize) -> String {
        format!("{}://{WWW}{}?{mark}-{i}", self.scheme, self.path)
    }

    async fn get(&self, url: String) -> bool {
        self.stack
            .client
            .fresh
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// Each backend and how many of `counted` it alone logged.
    fn listed(&self, counted: &[Vec<String>]) -> String {
        self.backends
            .iter()
            .map(|b| {
                let served = counted
                    .iter()
                    .filter(|c| c.len() == 1 && c[0] == *b)
                    .count();
                format!("{b} {served}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Before: the site works and the backend to stop takes its share.
    async fn with_every_backend_up(&self) -> Result<String, Failure> {
        let (n, dead) = (self.n, self.dead);
        let mark = marker("dead0");
        let mut ok = 0;
        for i in 0..n {
            ok += usize::from(self.get(self.url(&mark, i)).await);
        }
        let before = counted_by(self.stack, self.web, &self.backends, &mark, n).await?;
        let words = format!(
            "{ok} of {n} answered with every backend up ({})",
            self.listed(&before)
        );
        ensure_eq("requests answered with every backend up", n, ok, &words)?;
        ensure(
            before.iter().any(|c| !c.is_empty()),
            super::common::none_marked(self.web, &mark, &self.backends),
            &words,
        )?;
        ensure(
            before.iter().any(|c| c.iter().any(|h| h == dead)),
            format!(
                "{dead} served none of {n} requests with every backend up, so taking it out proves nothing"
            ),
            &words,
        )?;
        Ok(words)
    }

    /// Down: requests until `n` in a row succeed, at most `within`.
    async fn until_in_a_row(&self, within: Duration) -> Result<WhileDown, Failure> {
        let mark = marker("dead1");
        let stopped = Instant::now();
        let (mut sent, mut failed, mut in_a_row, mut run_start) = (0usize, 0usize, 0usize, None);
        let mut run = Vec::new();
        while in_a_row < self.n && stopped.elapsed() < within {
            let at = stopped.elapsed();
            if self.get(self.url(&mark, sent)).await {
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
        let counted = counted_by(self.stack, self.web, &self.backends, &mark, sent).await?;
        Ok(WhileDown {
            sent,
            failed,
            out_after: (in_a_row >= self.n).then_some(run_start).flatten(),
            run_counted: run.iter().map(|i| counted[*i].clone()).collect(),
        })
    }

    /// Up again: until the backend's own log shows a request, at most `rejoin_within`.
    async fn until_back(&self, rejoin_within: Duration) -> Result<Option<Duration>, Failure> {
        let mark = marker("dead2");
        let started = Instant::now();
        let mut i = 0;
        while started.elapsed() < rejoin_within {
            for _ in 0..self.backends.len() {
                self.get(self.url(&mark, i)).await;
                i += 1;
            }
            let seen = counted_by(self.stack, self.web, &[self.dead], &mark, i).await?;
            if seen.iter().any(|c| !c.is_empty()) {
                return Ok(Some(started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(None)
    }
}
