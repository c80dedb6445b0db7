//! Load-balancer kinds: how requests spread over the backends, counted in
//! the backends' own access logs, and what HAProxy's health checks do.

use std::time::{Duration, Instant};

use super::common::{counted_by, marker, req_failed};
use super::{Facts, Kind, Param, Params, ServerView, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq, ensure_measured};
use crate::measure::{self, http};
use crate::probe;
use crate::recorder::{Figure, Recorder};
use crate::stack::{Fault, Stack, WWW};

/// The backends a balancing claim names, and their web server: the
/// parameters every balancing kind starts with.
pub(crate) const BACKENDS: Param = Param::required(
    "backends",
    Ty::Hosts,
    "the backends, as the load balancer lists them",
);
/// The backends' web server, whose access log counts.
pub(crate) const WEB: Param = Param::required(
    "web",
    Ty::Service,
    "the backends' web server (its access log counts)",
);

/// `lb.round_robin`: requests go to the backends in turn.
pub const ROUND_ROBIN: Kind = Kind {
    name: "lb.round_robin",
    doc: "`requests` marked requests on fresh connections, one after another: each is found in exactly one backend's `web` access log, each backend served N/backends ± 1, and consecutive requests went to different backends. Then, with one request held open on a backend (its body left unfinished), `requests` more: the busy backend still gets its N/backends ± 1, as taking turns gives and sending to the least busy server (`balance leastconn`) does not. Then one browser-like session (it opens `/`, keeps the cookies the site sets and its connection alive) sends `requests` more: they too are split N/backends ± 1 and in turn, which a persistence cookie (HAProxy's `cookie SERVERID insert`) or a TCP-mode balancer under keep-alive breaks; the cookies the site set are reported.",
    params: &[
        BACKENDS,
        WEB,
        crate::kinds::common::SCHEME,
        Param::optional(
            "path",
            Ty::Text,
            "the page asked for",
            "\"/static/hello.txt\"",
        ),
        Param::optional(
            "requests",
            Ty::Int,
            "requests sent per phase (a multiple of the number of backends: each gets N/backends ± 1)",
            "10",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.lb.round_robin"
says = "HAProxy distributes requests round-robin"
kind = "lb.round_robin"
backends = ["web-1", "web-2"]
web = "nginx""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(round_robin),
};

async fn round_robin(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    round_robin_over(
        stack,
        &p.list("backends"),
        p.text("web"),
        p.text("scheme"),
        p.text("path"),
        p.int("requests").max(2) as usize,
    )
    .await
}

/// The round-robin check itself (also used by kinds that run it over a variant).
pub(crate) async fn round_robin_over(
    stack: &Stack,
    backends: &[&str],
    web: &str,
    scheme: &str,
    path: &str,
    n: usize,
) -> CheckResult {
    let mark = marker("rr");
    let held = in_turn_then_busy(stack, scheme, path, &mark, n).await?;
    let browser_mark = marker("rrb");
    let cookies = browser_session(stack, scheme, path, &browser_mark, n).await?;
    let held = held.map_err(|e| {
        Failure::not_measured(
            format!("the request held open failed, so the busy case is not measured: {e}"),
            "",
        )
    })?;
    // The held request is logged once its body is in: wait for it.
    let mut counted = counted_by(stack, web, backends, &mark, 2 * n + 1).await?;
    let waiting = Instant::now();
    while counted[2 * n].is_empty() && waiting.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        counted = counted_by(stack, web, backends, &mark, 2 * n + 1).await?;
    }
    let seen = Turns {
        backends,
        web,
        mark: &mark,
        n,
        order: one_backend_each(counted),
        session: one_backend_each(counted_by(stack, web, backends, &browser_mark, n).await?),
        cookies,
        answered_while_held: held.answered_while_held,
    };
    let evidence = seen.evidence(web, scheme);
    seen.judge_fresh(stack, &evidence).await?;
    seen.judge_busy(&evidence)?;
    seen.judge_session(&evidence)?;
    Ok(evidence)
}

/// Requests mark-0 .. mark-(n-1) one after another on fresh connections;
/// then, with request mark-2n held open, mark-n .. mark-(2n-1). Returns the
/// held request once released.
async fn in_turn_then_busy(
    stack: &Stack,
    scheme: &str,
    path: &str,
    mark: &str,
    n: usize,
) -> Result<std::result::Result<Held, String>, Failure> {
    let send = |i: usize| {
        let url = format!("{path}?{mark}-{i}");
        async move {
            stack
                .client
                .fresh
                .get(format!("{scheme}://{WWW}{url}"))
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map(drop)
                .map_err(|e| req_failed(&url, &e))
        }
    };
    for i in 0..n {
        send(i).await?;
    }
    let held = HeldRequest::send(stack, &format!("{scheme}://{WWW}{path}?{mark}-{}", 2 * n));
    // Until the load balancer has passed it on (or surely buffers it).
    tokio::time::sleep(Duration::from_millis(150)).await;
    let busy_phase = async {
        for i in n..2 * n {
            send(i).await?;
        }
        Ok::<_, Failure>(())
    }
    .await;
    let held = held.release().await;
    busy_phase?;
    Ok(held)
}

/// One browser-like session: it opens the front page (not counted), then
/// sends mark-0 .. mark-(n-1), keeping the cookies the site sets (a
/// persistence cookie pins it to one server) and its connection. Returns
/// the names of the cookies set.
async fn browser_session(
    stack: &Stack,
    scheme: &str,
    path: &str,
    mark: &str,
    n: usize,
) -> Result<std::collections::BTreeSet<String>, Failure> {
    let browser = stack
        .client
        .browser()
        .map_err(|e| Failure::not_measured(e.to_string(), ""))?;
    let mut cookies = std::collections::BTreeSet::new();
    for i in 0..=n {
        let url = match i {
            0 => "/".to_string(),
            i => format!("{path}?{mark}-{}", i - 1),
        };
        let answer = browser.get(format!("{scheme}://{WWW}{url}")).send().await;
        if let Ok(r) = &answer {
            cookies.extend(
                r.headers()
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .filter_map(|c| c.to_str().ok()?.split('=').next().map(str::to_string)),
            );
        }
        if i > 0 {
            answer
                .and_then(|r| r.error_for_status())
                .map_err(|e| req_failed(&url, &e))?;
        }
    }
    Ok(cookies)
}

/// The backend that logged each request: its name, `none`, or `a+b` when
/// more than one did.
fn one_backend_each(counted: Vec<Vec<String>>) -> Vec<String> {
    counted
        .iter()
        .map(|hosts| match hosts.as_slice() {
            [one] => one.clone(),
            [] => "none".into(),
            many => many.join("+"),
        })
        .collect()
}

/// What the backends' logs say of the three phases.
struct Turns<'a> {
    backends: &'a [&'a str],
    /// The service whose access logs count, and the fresh requests' mark.
    web: &'a str,
    mark: &'a str,
    n: usize,
    /// The 2n+1 marked requests' backends: in turn, while busy, the held one.
    order: Vec<String>,
    /// The browser session's n requests' backends.
    session: Vec<String>,
    cookies: std::collections::BTreeSet<String>,
    answered_while_held: bool,
}

impl Turns<'_> {
    fn in_turn(&self) -> &[String] {
        &self.order[..self.n]
    }

    fn busy(&self) -> &[String] {
        &self.order[self.n..2 * self.n]
    }

    fn held_on(&self) -> &str {
        &self.order[2 * self.n]
    }

    /// N/backends: what each backend serves when they take turns.
    fn fair(&self) -> usize {
        self.n / self.backends.len().max(1)
    }

    /// How many of `part` each backend served, in the backends' order.
    fn tally(&self, part: &[String]) -> Vec<usize> {
        self.backends
            .iter()
            .map(|b| part.iter().filter(|o| o == b).count())
            .collect()
    }

    fn listed(&self, part: &[String]) -> String {
        self.backends
            .iter()
            .zip(self.tally(part))
            .map(|(b, c)| format!("{b} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn cookies_set(&self) -> String {
        self.cookies.iter().cloned().collect::<Vec<_>>().join(", ")
    }

    fn evidence(&self, web: &str, scheme: &str) -> String {
        let n = self.n;
        format!(
            "{n} {scheme} requests on fresh connections; {web} access logs: {}; order {}; \
             then {n} more while one request was held open on {} ({}): {}; \
             then {n} from one browser-like session (cookies kept, connection kept alive; cookies set: {}): {}; order {}",
            self.listed(self.in_turn()),
            self.in_turn().join(","),
            self.held_on(),
            if self.answered_while_held {
                "answered before its body ended"
            } else {
                "not answered before its body ended, so it may have waited at the load balancer"
            },
            self.listed(self.busy()),
            if self.cookies.is_empty() {
                "none".to_string()
            } else {
                self.cookies_set()
            },
            self.listed(&self.session),
            self.session.join(","),
        )
    }

    /// Fresh connections: every request in one log, N/backends ± 1 each, in turn.
    async fn judge_fresh(&self, stack: &Stack, evidence: &str) -> Result<(), Failure> {
        let (n, backends, turns) = (self.n, self.backends, self.in_turn());
        let uncounted: Vec<usize> = (0..2 * n)
            .filter(|i| !backends.contains(&self.order[*i].as_str()))
            .collect();
        // None found at all: say what the claim looks for, not a list of numbers.
        ensure(
            self.order[..2 * n].iter().any(|o| o != "none"),
            super::common::none_marked(self.web, self.mark, self.backends),
            evidence,
        )?;
        ensure(
            uncounted.is_empty(),
            format!(
                "requests {uncounted:?} of {} are in no backend's log, or in more than one",
                2 * n
            ),
            evidence,
        )?;
        let fair = self.fair();
        let counts = self.tally(turns);
        let alternating = turns.windows(2).all(|w| w[0] != w[1]);
        // An Nginx balancer keeping one turn per worker says so here.
        let why = if alternating && counts.iter().all(|c| c.abs_diff(fair) <= 1) {
            String::new()
        } else {
            nginx_per_worker_turns(stack, backends)
                .await
                .unwrap_or_default()
        };
        for (b, c) in backends.iter().zip(&counts) {
            ensure(
                c.abs_diff(fair) <= 1,
                format!("{b} served {c} of {n}, not {fair} ± 1{why}"),
                evidence,
            )?;
        }
        ensure(
            alternating,
            format!("the backends did not take requests in turn{why}"),
            evidence,
        )
    }

    /// While one backend is busy it still gets its turn (leastconn would not).
    fn judge_busy(&self, evidence: &str) -> Result<(), Failure> {
        let (n, fair, held_on) = (self.n, self.fair(), self.held_on());
        ensure_measured(
            self.backends.contains(&held_on),
            format!(
                "the request held open is in no backend's log, or in more than one ({held_on}), so the busy case is not measured"
            ),
            evidence,
        )?;
        // The busy backend first: its count is what tells the two policies apart.
        let busy_counts = self.tally(self.busy());
        let mut busy_first: Vec<(&&str, &usize)> = self.backends.iter().zip(&busy_counts).collect();
        busy_first.sort_by_key(|(b, _)| **b != held_on);
        for (b, c) in busy_first {
            ensure(
                c.abs_diff(fair) <= 1,
                if *b == held_on {
                    format!(
                        "while {b} was busy with a request held open it got {c} of {n}, not {fair} ± 1: \
                         requests go to the least busy server (as `balance leastconn` does), not in turn"
                    )
                } else {
                    format!("while {held_on} was busy, {b} served {c} of {n}, not {fair} ± 1")
                },
                evidence,
            )?;
        }
        Ok(())
    }

    /// One browser session (cookies kept, connection kept alive) is spread too.
    fn judge_session(&self, evidence: &str) -> Result<(), Failure> {
        let (n, fair) = (self.n, self.fair());
        let pinned = if self.cookies.is_empty() {
            // Fresh connections alternated, one kept-alive connection did not.
            " (no cookie was set: its kept-alive connection stayed with one server, as a balancer in TCP mode, or with `option prefer-last-server`, keeps it)".to_string()
        } else {
            format!(
                " (the site set the cookie {}: a persistence cookie pins a browser to one server)",
                self.cookies_set()
            )
        };
        ensure(
            self.session
                .iter()
                .all(|o| self.backends.contains(&o.as_str())),
            "a browser session's requests are in no backend's log, or in more than one",
            evidence,
        )?;
        for (b, c) in self.backends.iter().zip(self.tally(&self.session)) {
            ensure(
                c.abs_diff(fair) <= 1,
                format!("one browser session sent {n}: {b} served {c}, not {fair} ± 1{pinned}"),
                evidence,
            )?;
        }
        ensure(
            self.session.windows(2).all(|w| w[0] != w[1]),
            format!("one browser session's requests did not go to the backends in turn{pinned}"),
            evidence,
        )
    }
}

/// Why an Nginx balancer may not alternate: with several worker processes
/// and an `upstream` with no shared `zone`, each worker keeps its own turn,
/// so requests landing on different workers can go to the same server.
/// Said in words when a host that is not a backend runs such an Nginx.
async fn nginx_per_worker_turns(stack: &Stack, backends: &[&str]) -> Option<String> {
    for host in stack
        .hosts
        .values()
        .filter(|h| !backends.contains(&h.name.as_str()))
    {
        let Ok(out) = host
            // The configuration the running master was started with (`-c`).
            .run("pgrep -c -f '^nginx: worker' 2>/dev/null || exit 0; conf=$(ps -o args= -C nginx | sed -n 's/.*master process.* -c \\([^ ]*\\).*/\\1/p' | head -n 1); nginx -T ${conf:+-c $conf} 2>/dev/null || true")
            .await
        else {
            continue;
        };
        let mut lines = out.lines();
        let workers: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        let config: Vec<&str> = lines
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .collect();
        let (mut in_upstream, mut unzoned) = (None::<String>, Vec::new());
        let mut has_zone = false;
        for l in &config {
            if let Some(rest) = l.strip_prefix("upstream ") {
                in_upstream = Some(rest.trim_end_matches('{').trim().to_string());
                has_zone = false;
            } else if in_upstream.is_some() && l.starts_with("zone ") {
                has_zone = true;
            } else if *l == "}"
                && let Some(name) = in_upstream.take()
                && !has_zone
            {
                unzoned.push(name);
            }
        }
        if workers > 1 && !unzoned.is_empty() {
            return Some(format!(
                ": Nginx on {} runs {workers} worker processes and its upstream `{}` has no shared `zone`, so each worker keeps its own turn and two requests in a row can reach the same server; add `zone {} 64k;` to the upstream (or set `worker_processes 1;`)",
                host.name, unzoned[0], unzoned[0]
            ));
        }
    }
    None
}

/// A request kept open at whichever backend takes it: its body is sent
/// but for its last byte, so the load balancer's connection to that
/// backend stays busy until [`HeldRequest::release`] sends the rest.
struct HeldRequest {
    finish: tokio::sync::oneshot::Sender<()>,
    sent: tokio::task::JoinHandle<Result<(u16, Instant), String>>,
}

/// How a held request ended.
struct Held {
    /// Whether its answer came before its body ended (a web server that
    /// answers a GET at once; one that reads the body first does not).
    answered_while_held: bool,
}

impl HeldRequest {
    fn send(stack: &Stack, url: &str) -> HeldRequest {
        let (finish, rest) = tokio::sync::oneshot::channel::<()>();
        let first = futures::stream::once(async { Ok::<_, std::io::Error>(b"a".to_vec()) });
        let last = futures::stream::once(async move {
            let _ = rest.await;
            Ok(b"b".to_vec())
        });
        let request = stack
            .client
            .fresh
            .get(url)
            .header(reqwest::header::CONTENT_LENGTH, 2)
            .body(reqwest::Body::wrap_stream(futures::StreamExt::chain(
                first, last,
            )));
        let sent = tokio::spawn(async move {
            let response = request.send().await.map_err(|e| probe::error_chain(&e))?;
            let answered = Instant::now();
            let status = response.status().as_u16();
            // Read to the end: the request is only done once its body is in.
            response.bytes().await.map_err(|e| probe::error_chain(&e))?;
            Ok((status, answered))
        });
        HeldRequest { finish, sent }
    }

    /// Sends the last byte and waits for the answer (a 2xx).
    async fn release(self) -> Result<Held, String> {
        let released = Instant::now();
        let _ = self.finish.send(());
        let (status, answered) = match tokio::time::timeout(Duration::from_secs(5), self.sent).await
        {
            Ok(Ok(r)) => r?,
            Ok(Err(e)) => return Err(format!("its task ended: {e}")),
            Err(_) => return Err("no answer within 5 s of its body ending".into()),
        };
        if !(200..300).contains(&status) {
            return Err(format!("answered {status}"));
        }
        Ok(Held {
            answered_while_held: answered < released,
        })
    }
}

/// `lb.active_active`: every backend serves during one burst.
pub const ACTIVE_ACTIVE: Kind = Kind {
    name: "lb.active_active",
    doc: "A burst of `requests` concurrent marked requests: all are answered, each is found in exactly one backend's `web` access log, and every backend served some of them.",
    params: &[
        Param::required(
            "backends",
            Ty::Hosts,
            "the backends that must all be active",
        ),
        Param::required(
            "web",
            Ty::Service,
            "the backends' web server (its access log counts)",
        ),
        Param::optional(
            "path",
            Ty::Text,
            "the page asked for",
            "\"/static/hello.txt\"",
        ),
        Param::optional("requests", Ty::Int, "concurrent requests", "20"),
    ],
    example: r#"
[[claim]]
id = "my_site.lb.active_active"
says = "both servers serve traffic at the same time"
kind = "lb.active_active"
backends = ["web-1", "web-2"]
web = "nginx""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(active_active),
};

async fn active_active(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (backends, web, path) = (p.list("backends"), p.text("web"), p.text("path"));
    let n = p.int("requests").max(1) as usize;
    let mark = marker("aa");
    let sends = (0..n).map(|i| {
        stack
            .client
            .fresh
            .get(http(&format!("{path}?{mark}-{i}")))
            .send()
    });
    let results = futures::future::join_all(sends).await;
    let ok = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status().is_success()))
        .count();
    let counted = counted_by(stack, web, &backends, &mark, n).await?;
    let split: Vec<(String, usize)> = backends
        .iter()
        .map(|b| {
            (
                b.to_string(),
                counted.iter().filter(|c| c.iter().any(|h| h == b)).count(),
            )
        })
        .collect();
    let evidence = format!(
        "{n} concurrent requests, {ok} answered; {web} access logs: {}",
        split
            .iter()
            .map(|(b, c)| format!("{b} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    ensure_eq("answered", n, ok, &evidence)?;
    ensure(
        counted.iter().any(|c| !c.is_empty()),
        super::common::none_marked(web, &mark, &backends),
        &evidence,
    )?;
    ensure_eq(
        "times each request is in a backend's log",
        vec![1; n],
        counted.iter().map(Vec::len).collect(),
        &evidence,
    )?;
    ensure(
        split.iter().all(|(_, c)| *c > 0),
        "not every backend served part of the burst",
        &evidence,
    )?;
    Ok(evidence)
}

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
    super::common::duration_with_units(t)
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
            let late = super::common::late_wait(budgets.eject);
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
        let late = super::common::late_wait(budgets.rejoin);
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
