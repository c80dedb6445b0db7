//! `lb.health_check`: HAProxy's health checks take a dead backend out in
//! time and let it rejoin, read against the running configuration's
//! timers and the design's promise.

use std::time::{Duration, Instant};

use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::kinds::common::{counted_by, marker};
use crate::kinds::{Facts, Kind, Param, Params, ServerView, Ty};
use crate::measure::{self, http};
use crate::probe;
use crate::recorder::{Figure, Recorder};
use crate::stack::{Fault, Stack};

/// `lb.health_check`: a dead backend is taken out in time and rejoins.
pub const HEALTH_CHECK: Kind = Kind {
    name: "lb.health_check",
    doc: "With `service` stopped on `backend`, HAProxy on `lb` marks it DOWN within inter × fall (+ slack), read from its running configuration (HAProxy's defaults 2 s, 3, 2 where unset), and never later than `eject_within_ms`, the design's promise; then `requests` requests all succeed and none is served by `backend`; started again, it is UP within rise × inter (+ slack) and `rejoin_within_ms`. The file's timers can only shorten the promise: timers that exceed it are a FAIL without the fault.",
    params: &[
        Param::required("lb", Ty::Host, "the host running HAProxy"),
        Param::required("backend", Ty::Host, "the backend taken down"),
        Param::required(
            "service",
            Ty::Service,
            "the service stopped on it (its access log counts)",
        ),
        Param::optional(
            "server_name",
            Ty::Text,
            "the backend's `server` name in haproxy.cfg (default: the host's name)",
            "\"\"",
        ),
        Param::optional(
            "config",
            Ty::Text,
            "where HAProxy's configuration is on `lb`",
            "\"/etc/haproxy/haproxy.cfg\"",
        ),
        Param::optional(
            "slack_ms",
            Ty::Ms,
            "slack over the configured times (our polling, one check interval of phase)",
            "700",
        ),
        Param::optional("requests", Ty::Int, "requests sent while it is out", "10"),
        Param::optional(
            "eject_within_ms",
            Ty::Ms,
            "the promise: a dead server takes no more traffic after this long (HAProxy's default checks take 6 s)",
            "20000",
        ),
        Param::optional(
            "rejoin_within_ms",
            Ty::Ms,
            "the promise: a started server takes traffic again within this long",
            "60000",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.lb.health_check"
says = "HAProxy stops sending traffic to a failed server"
kind = "lb.health_check"
lb = "lb-1"
backend = "web-1"
service = "nginx""#,
    facts: Facts::PLAIN
        .timed()
        .reads(&[ServerView::new("lb", "haproxy", "HAProxy")]),
    check: crate::kind_check!(health_check),
};

/// Where HAProxy's configuration is on a load balancer of the library's services.
pub(crate) const HAPROXY_CONFIG: &str = "/etc/haproxy/haproxy.cfg";

/// HAProxy's check timing for `server` from the running configuration:
/// (inter, fall, rise), with HAProxy's defaults (2 s, 3, 2) where unset.
pub(crate) async fn check_timing(
    stack: &Stack,
    lb: &str,
    config: &str,
    server: &str,
) -> Result<(Duration, u32, u32), Failure> {
    let cfg = stack.host(lb)?.run(&format!("cat {config}")).await?;
    let (mut inter, mut fall, mut rise) = (Duration::from_secs(2), 3, 2);
    for line in cfg.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let applies = words.first() == Some(&"default-server")
            || (words.first() == Some(&"server") && words.get(1) == Some(&server));
        if !applies {
            continue;
        }
        for pair in words.windows(2) {
            match pair[0] {
                "inter" => inter = parse_haproxy_time(pair[1]).unwrap_or(inter),
                "fall" => fall = pair[1].parse().unwrap_or(fall),
                "rise" => rise = pair[1].parse().unwrap_or(rise),
                _ => {}
            }
        }
    }
    Ok((inter, fall, rise))
}

/// An HAProxy time: "2000" (milliseconds), or with units ("500ms", "2s", "1m").
fn parse_haproxy_time(t: &str) -> Option<Duration> {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().ok().map(Duration::from_millis);
    }
    crate::kinds::common::duration_with_units(t)
}

/// Polls HAProxy on `lb` until `server` is in a state starting with `want`
/// (and not in transition, `DOWN 1/2`), within `deadline`.
pub(crate) async fn wait_status(
    stack: &Stack,
    lb: &str,
    server: &str,
    want: &str,
    deadline: Duration,
) -> Result<Option<Duration>, Failure> {
    let lb = stack.host(lb)?;
    let started = Instant::now();
    while started.elapsed() < deadline {
        let states = measure::haproxy_status(lb).await?;
        if states
            .iter()
            .any(|(_, s, st)| s == server && st.starts_with(want) && !st.contains('/'))
        {
            return Ok(Some(started.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(None)
}

/// How long HAProxy took to take the dead server out, and to bring it back.
const EJECT: Figure = Figure::new("health check: eject (ms)");
const REJOIN: Figure = Figure::new("health check: rejoin (ms)");

async fn health_check(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    let (lb, backend, service) = (p.host("lb"), p.host("backend"), p.text("service"));
    let server = match p.text("server_name") {
        "" => backend,
        s => s,
    };
    let n = p.int("requests").max(1) as usize;
    let budgets = HealthBudgets::read(stack, p, lb, server).await?;
    server_up_before(stack, lb, server).await?;
    let at = HealthFault {
        lb,
        backend,
        service,
        server,
        n,
    };
    // A probe of the site runs through it all: what users saw while the
    // dead server was still being sent requests, and after.
    let (report, watched) = probe::probe_through(
        &stack.client.probe,
        &http("/static/hello.txt"),
        Duration::from_millis(50),
        Duration::from_millis(300),
        4000,
        at.stop_and_watch(stack, rec, &budgets),
    )
    .await;
    let w = watched?;
    let mut marks: Vec<(Duration, &str)> = vec![(w.restarted_at, "started again")];
    if w.ejected.is_some() {
        marks.push((w.ejected_at, "ejected"));
    }
    if w.rejoined.is_some() {
        marks.push((w.rejoined_at, "rejoined"));
    }
    rec.record_timeline_marked(
        &format!("{service} stopped on {backend}"),
        &report,
        Some(budgets.eject),
        &marks,
    );
    if let Some(e) = w.ejected {
        rec.measured(EJECT, e.as_millis() as f64);
    }
    if let Some(r) = w.rejoined {
        rec.measured(REJOIN, r.as_millis() as f64);
    }
    let evidence = at.evidence(&w, &budgets);
    ensure(
        w.ejected.is_some(),
        "HAProxy did not take the stopped server out, even well past its budget",
        &evidence,
    )?;
    ensure_eq(
        "requests that succeeded after the ejection",
        n,
        w.ok,
        &evidence,
    )?;
    ensure_eq(
        "requests served by the other backends",
        n,
        at.via_others(&w),
        &evidence,
    )?;
    ensure(
        w.rejoined.is_some(),
        "the server did not rejoin, even well past its budget",
        &evidence,
    )?;
    // Judged by the runner: on this run, or on a percentile of a repeated
    // claim's runs (`percentile` in the claims file).
    rec.budget(EJECT, budgets.eject.as_millis() as f64);
    rec.budget(REJOIN, budgets.rejoin.as_millis() as f64);
    Ok(evidence)
}

/// How long HAProxy may take to take a dead server out and bring it back:
/// the promise, shortened (never lengthened) by the file's own timers.
struct HealthBudgets {
    eject: Duration,
    rejoin: Duration,
    /// The file's timers against the promise, in words.
    timers: String,
}

impl HealthBudgets {
    async fn read(stack: &Stack, p: &Params, lb: &str, server: &str) -> Result<Self, Failure> {
        let (inter, fall, rise) = check_timing(stack, lb, p.text("config"), server).await?;
        let (eject_within, rejoin_within) = (p.ms("eject_within_ms"), p.ms("rejoin_within_ms"));
        let timers = format!(
            "inter {} ms, fall {fall}, rise {rise}: out after {} ms, back after {} ms (promised: {} ms and {} ms)",
            inter.as_millis(),
            (inter * fall).as_millis(),
            (inter * rise).as_millis(),
            eject_within.as_millis(),
            rejoin_within.as_millis()
        );
        // The file's timers explain the figure and may make the budget
        // shorter, never longer than the promise.
        ensure(
            inter * fall <= eject_within,
            format!(
                "HAProxy's checks on {server} take {} s to take a dead server out, past the {} s promised: it keeps getting requests until then",
                (inter * fall).as_secs_f64(),
                eject_within.as_secs_f64()
            ),
            &timers,
        )?;
        ensure(
            inter * rise <= rejoin_within,
            format!(
                "HAProxy's checks on {server} take {} s to bring a started server back, past the {} s promised",
                (inter * rise).as_secs_f64(),
                rejoin_within.as_secs_f64()
            ),
            &timers,
        )?;
        Ok(HealthBudgets {
            eject: (inter * fall + p.ms("slack_ms")).min(eject_within),
            rejoin: (inter * rise + p.ms("slack_ms")).min(rejoin_within),
            timers,
        })
    }
}

/// The design must check the server and see it UP first ("no check" is a
/// server HAProxy never health-checks): the design's doing, so a FAIL.
async fn server_up_before(stack: &Stack, lb: &str, server: &str) -> Result<(), Failure> {
    let before = measure::haproxy_status(stack.host(lb)?).await?;
    let state = before
        .iter()
        .find(|(_, s, _)| s == server)
        .map(|(_, _, st)| st.clone())
        .unwrap_or_else(|| "not in HAProxy's servers".into());
    ensure(
        state == "UP",
        format!(
            "before the fault, HAProxy on {lb} shows {server} as `{state}`, not UP after a health check"
        ),
        &format!("HAProxy before: {before:?}"),
    )
}

/// The backend whose web server the health-check claim stops.
struct HealthFault<'a> {
    lb: &'a str,
    backend: &'a str,
    service: &'a str,
    /// The backend's name in HAProxy's file.
    server: &'a str,
    /// Requests sent once it is out.
    n: usize,
}

/// What the balancer did while the backend was stopped and started again.
struct Watched {
    ejected: Option<Duration>,
    rejoined: Option<Duration>,
    /// Requests that succeeded once it was out, and the backends that logged each.
    ok: usize,
    counted: Vec<Vec<String>>,
    /// Since the stop: ejected, started again, rejoined.
    ejected_at: Duration,
    restarted_at: Duration,
    rejoined_at: Duration,
}

impl HealthFault<'_> {
    /// Stops the backend's web server, waits for HAProxy to mark it DOWN,
    /// sends requests, starts it again and waits for it to be UP.
    async fn stop_and_watch(
        &self,
        stack: &Stack,
        rec: &Recorder,
        budgets: &HealthBudgets,
    ) -> Result<Watched, Failure> {
        let (lb, server) = (self.lb, self.server);
        let stopped_at = Instant::now();
        let fault = stack
            .apply(Fault::StopService(self.backend, self.service))
            .await?;
        rec.waiting_for(&format!("HAProxy on {lb} to mark {server} DOWN"));
        let result = async {
            let late = crate::kinds::common::late_wait(budgets.eject);
            let ejected = wait_status(stack, lb, server, "DOWN", late).await?;
            let ejected_at = stopped_at.elapsed();
            let (ok, counted) = self.requests_while_out(stack).await?;
            Ok::<_, Failure>((ejected, ejected_at, ok, counted))
        }
        .await;
        let restarted_at = stopped_at.elapsed();
        let restarted = fault.restore().await;
        let (ejected, ejected_at, ok, counted) = result?;
        restarted?;
        let late = crate::kinds::common::late_wait(budgets.rejoin);
        let rejoined = wait_status(stack, lb, server, "UP", late).await?;
        Ok(Watched {
            ejected,
            rejoined,
            ok,
            counted,
            ejected_at,
            restarted_at,
            rejoined_at: stopped_at.elapsed(),
        })
    }

    /// `n` marked requests: how many succeeded, and which backends logged each.
    async fn requests_while_out(
        &self,
        stack: &Stack,
    ) -> Result<(usize, Vec<Vec<String>>), Failure> {
        let mark = marker("hc");
        let urls = (0..self.n).map(|i| http(&format!("/static/hello.txt?{mark}-{i}")));
        let ok = probe::successes(&stack.client.fresh, urls).await;
        // Every host running the web server but the balancer itself.
        let backends: Vec<&str> = stack
            .hosts_running(self.service)
            .iter()
            .map(|h| h.name.as_str())
            .filter(|h| *h != self.lb)
            .collect();
        let counted = counted_by(stack, self.service, &backends, &mark, self.n).await?;
        Ok((ok, counted))
    }

    fn via_others(&self, w: &Watched) -> usize {
        w.counted
            .iter()
            .filter(|c| c.len() == 1 && c[0] != self.backend)
            .count()
    }

    fn evidence(&self, w: &Watched, budgets: &HealthBudgets) -> String {
        let (backend, service, n) = (self.backend, self.service, self.n);
        let ms = |d: Option<Duration>| {
            d.map(|d| format!("{} ms", d.as_millis()))
                .unwrap_or_else(|| "never".into())
        };
        let via_down = w
            .counted
            .iter()
            .filter(|c| c.iter().any(|h| h == backend))
            .count();
        format!(
            "{}; {service} stopped on {backend}: marked DOWN after {} (budget {} ms); \
             then {} of {n} requests succeeded, {} via the other backends, {via_down} via {backend}; {service} started: UP after {} (budget {} ms)",
            budgets.timers,
            ms(w.ejected),
            budgets.eject.as_millis(),
            w.ok,
            self.via_others(w),
            ms(w.rejoined),
            budgets.rejoin.as_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::parse_haproxy_time;
    use std::time::Duration;

    #[test]
    fn haproxy_times_read_with_and_without_units() {
        assert_eq!(parse_haproxy_time("2000"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_haproxy_time("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_haproxy_time("2s"), Some(Duration::from_secs(2)));
        // A minute was read as nothing, and the budget fell back to 2 s.
        assert_eq!(parse_haproxy_time("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_haproxy_time("fast"), None);
    }
}
