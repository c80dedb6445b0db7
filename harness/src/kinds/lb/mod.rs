//! Load-balancer kinds: how requests spread over the backends, counted in
//! the backends' own access logs (here), and what HAProxy's health checks
//! do (health.rs).

use std::time::{Duration, Instant};

use super::common::{counted_by, marker, req_failed};
use super::{Facts, Kind, Param, Params, Ty};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq, ensure_measured};
use crate::measure::http;
use crate::probe;
use crate::recorder::Recorder;
use crate::stack::{Stack, WWW};

mod health;
pub use health::HEALTH_CHECK;
pub(crate) use health::{HAPROXY_CONFIG, check_timing, wait_status};

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
