//! What many check kinds share: requests and their failures, the run's DNS,
//! the monitoring server's answers, the servers' own request logs, and
//! faults described by a claim's parameters.

use std::collections::BTreeMap;

use super::{Param, Params, Ty};
use crate::failure::Failure;
use crate::probe;
use crate::stack::{Fault, FaultGuard, Stack};

/// A response header as text ("" when absent).
pub(crate) fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A failed request as a claim failure, with the whole error chain.
pub(crate) fn req_failed(path: &str, e: &reqwest::Error) -> Failure {
    Failure::new(format!("GET {path} failed: {}", probe::error_chain(e)), "")
}

/// Polls `cond` every 50 ms until it holds, at most `deadline`; returns how long that took.
pub(crate) async fn wait_for<F, Fut>(
    deadline: std::time::Duration,
    cond: F,
) -> Option<std::time::Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < deadline {
        if cond().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// Asks the design's monitoring server (the host running `prometheus`) an
/// instant query; returns its result vector. Prometheus not answering our query is
/// a measurement we could not make (ERROR); what it answers is evidence.
pub(crate) async fn prometheus(
    stack: &crate::stack::Stack,
    query: &str,
) -> std::result::Result<Vec<serde_json::Value>, Failure> {
    let monitor = stack
        .hosts_running("prometheus")
        .first()
        .copied()
        .ok_or_else(|| {
            Failure::new(
                "no host of the design runs `prometheus`, so nothing is monitored",
                "",
            )
        })?;
    let url = format!("http://{}:9090/api/v1/query", monitor.main_addr());
    let asked = |e: &reqwest::Error| {
        Failure::not_measured(
            format!(
                "could not ask Prometheus `{query}`: {}",
                probe::error_chain(e)
            ),
            "",
        )
    };
    let answer = stack
        .client
        .fresh
        .get(&url)
        .query(&[("query", query)])
        .send()
        .await
        .map_err(|e| asked(&e))?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.map_err(|e| asked(&e))?;
    if !status.is_success() {
        // Prometheus says why in its own words (a PromQL parse error).
        return Err(Failure::not_measured(
            format!(
                "Prometheus could not run `{query}` ({status}): {}",
                body["error"].as_str().unwrap_or("no reason given")
            ),
            "",
        ));
    }
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The addresses www.foobar.com resolves to, asked of the run's DNS over UDP.
pub(crate) async fn www_addresses(
    stack: &crate::stack::Stack,
) -> std::result::Result<Vec<String>, Failure> {
    use hickory_proto::rr::RecordType;
    let resolver = stack.client.resolver(crate::client::DnsTransport::Udp)?;
    Ok(
        crate::client::query(&resolver, crate::stack::WWW, RecordType::A)
            .await
            .map_err(dns_failure)?
            .iter()
            .filter_map(|r| r.data.ip_addr().map(|i| i.to_string()))
            .collect(),
    )
}

/// A failed DNS query as a claim failure: an answer with no such record is
/// the design's zone (FAIL); no answer at all is our own DNS server or
/// resolver failing (ERROR).
pub(crate) fn dns_failure(e: String) -> Failure {
    let lower = e.to_lowercase();
    if lower.contains("no record") || lower.contains("nxdomain") || lower.contains("no records") {
        Failure::new(format!("DNS: {e}"), "")
    } else {
        Failure::not_measured(format!("could not ask the run's DNS server: {e}"), "")
    }
}

/// A fresh marker for one claim's requests: each claim counts only the
/// requests it marked, so counts never mix between claims.
pub(crate) fn marker(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

/// What a counting claim looks for, said when it found none of its
/// requests although they were answered: each carries `?<mark>-<i>` in its
/// query string, so a log format without the query string hides them all.
pub(crate) fn none_marked(service: &str, mark: &str, among: &[&str]) -> String {
    let hosts = if among.is_empty() {
        "any host".to_string()
    } else {
        among.join(", ")
    };
    let how = match service {
        "php-fpm" => "PHP-FPM: an `access.log` whose `access.format` has `%r%Q%q`",
        "nginx" => {
            "Nginx: no `access_log off`, and a `log_format` with `$request` or `$request_uri`"
        }
        "apache" => "Apache: a `CustomLog` whose format has `%r` or `%q`",
        _ => "a format with the request's query string",
    };
    format!(
        "no request marked `?{mark}-<i>` is in {service}'s access log on {hosts}: the claim finds each of its requests by that mark in the query string, so {service} must log every request with its query string ({how})"
    )
}

/// The access log a service writes one line per request to (its
/// `service.toml` says where); a service with none cannot count requests.
pub(crate) fn access_log<'s>(stack: &'s Stack, service: &str) -> Result<&'s str, Failure> {
    stack
        .service(service)?
        .access_log
        .as_deref()
        .ok_or_else(|| {
            Failure::not_measured(
                format!(
                    "service `{service}` declares no `access_log` in its service.toml, so its requests cannot be counted"
                ),
                "",
            )
        })
}

/// For each of the `n` requests marked `<marker>-<i>`, the hosts whose
/// `service` access log has it (a request counted twice or nowhere shows),
/// among the hosts `among` names (none: every host running it). A claim
/// counts on the backends it names: a balancer running the same web
/// server logs every request too.
/// A log the design does not write is a FAIL naming it, never "0 requests".
pub(crate) async fn counted_by(
    stack: &Stack,
    service: &str,
    among: &[&str],
    marker: &str,
    n: usize,
) -> Result<Vec<Vec<String>>, Failure> {
    let log = access_log(stack, service)?;
    let mut by_request = vec![Vec::new(); n];
    let hosts: Vec<_> = stack
        .hosts_running(service)
        .into_iter()
        .filter(|h| among.is_empty() || among.contains(&h.name.as_str()))
        .collect();
    for &host in &hosts {
        crate::measure::log_lines(host, log).await?;
        let lines = host
            .run(&format!("grep -o '{marker}-[0-9]*' {log} || true"))
            .await?;
        for l in lines.lines() {
            if let Some(i) = l
                .rsplit('-')
                .next()
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|i| *i < n)
            {
                by_request[i].push(host.name.clone());
            }
        }
    }
    Ok(by_request)
}

/// Lines of `service`'s access log on every host running it, by host.
pub(crate) async fn log_sizes(
    stack: &Stack,
    service: &str,
) -> Result<BTreeMap<String, u64>, Failure> {
    let log = access_log(stack, service)?;
    let mut out = BTreeMap::new();
    for host in stack.hosts_running(service) {
        out.insert(
            host.name.clone(),
            crate::measure::log_lines(host, log).await?,
        );
    }
    Ok(out)
}

/// The faults a claims file can name (`fault = "..."`), each applied to
/// every host of the claim's `hosts`; some take `fault_arg`.
pub const FAULTS: &[&str] = &[
    "stop_host",
    "pause_host",
    "stop_service",
    "kill_service",
    "pause_service",
    "disconnect",
    "partition",
    "slow_link",
    "lose_packets",
    "cpu_quota",
];

/// How the client asks: `http` or `https` (the parameter every kind that
/// sends the site's requests takes).
pub(crate) const SCHEME: Param = Param::optional(
    "scheme",
    Ty::Choice(&["http", "https"]),
    "how the client asks",
    "\"http\"",
);

/// The `fault_arg` parameter every fault-taking kind declares.
pub(crate) const FAULT_ARG_DOC: &str = "what some faults need: the network for `disconnect`, the peer host for `partition`, kbit/s for `slow_link`, the share lost (0.0-1.0) for `lose_packets`, CPUs for `cpu_quota`";

/// The three parameters every fault-taking kind declares: the fault, the
/// service (for the `*_service` faults) and its argument (for those that need one).
pub(crate) const FAULT: Param =
    Param::required("fault", Ty::Choice(FAULTS), "what happens to each host");
pub(crate) const FAULT_SERVICE: Param = Param::optional(
    "service",
    Ty::Text,
    "the service, for the *_service faults",
    "\"\"",
);
pub(crate) const FAULT_ARG: Param = Param::optional("fault_arg", Ty::Text, FAULT_ARG_DOC, "\"\"");

/// A fault as a claim's parameters ([`FAULT`], [`FAULT_SERVICE`], [`FAULT_ARG`]) name it.
pub(crate) struct FaultSpec<'p> {
    action: &'p str,
    service: &'p str,
    arg: &'p str,
}

impl<'p> FaultSpec<'p> {
    /// The fault claim parameters `p` describe.
    pub(crate) fn of(p: &'p Params) -> Self {
        FaultSpec {
            action: p.text("fault"),
            service: p.text("service"),
            arg: p.text("fault_arg"),
        }
    }

    /// Applies it to each of `hosts`; the guards undo it.
    pub(crate) async fn apply<'s>(
        &self,
        stack: &'s Stack,
        hosts: &[&str],
    ) -> Result<Vec<FaultGuard<'s>>, Failure> {
        let (action, service, arg) = (self.action, self.service, self.arg);
        let bad_arg = |what: &str| {
            Failure::not_measured(
                format!("fault `{action}` needs `fault_arg` = {what}, got `{arg}`"),
                "",
            )
        };
        let number = |what: &str| arg.parse::<f64>().map_err(|_| bad_arg(what));
        let mut guards = Vec::new();
        for &host in hosts {
            let fault = match action {
                "stop_host" => Fault::StopHost(host),
                "pause_host" => Fault::PauseHost(host),
                "stop_service" => Fault::StopService(host, service),
                "kill_service" => Fault::KillService(host, service),
                "pause_service" => Fault::PauseService(host, service),
                "disconnect" if !arg.is_empty() => Fault::Disconnect(host, arg),
                "disconnect" => return Err(bad_arg("a network")),
                "partition" if stack.host(arg).is_ok() => Fault::Partition(host, arg, None),
                "partition" => return Err(bad_arg("a host of the design")),
                "slow_link" => Fault::SlowLink(host, number("kbit/s")? as u32),
                "lose_packets" => Fault::LosePackets(host, number("a share from 0.0 to 1.0")?),
                "cpu_quota" => Fault::CpuQuota(host, number("a number of CPUs")?),
                other => {
                    return Err(Failure::not_measured(
                        format!("unknown fault `{other}`; faults: {}", FAULTS.join(", ")),
                        "",
                    ));
                }
            };
            guards.push(stack.apply(fault).await?);
        }
        Ok(guards)
    }

    /// What it is, in words, for evidence: "stop_service nginx on server-1".
    pub(crate) fn words(&self, hosts: &[&str]) -> String {
        let on = hosts.join(", ");
        match self.action {
            a if a.ends_with("_service") => format!("{a} {} on {on}", self.service),
            a if self.arg.is_empty() => format!("{a} {on}"),
            a => format!("{a} {on} ({})", self.arg),
        }
    }
}

/// Undoes `guards` (see [`FaultGuard::restore_all`]), returning the first error.
pub(crate) async fn restore_all(guards: Vec<FaultGuard<'_>>) -> Result<(), Failure> {
    FaultGuard::restore_all(guards).await.map_err(Failure::from)
}

/// How long an event due within `window` is waited for: half as long
/// again, at most 10 s more, so the evidence says how late a late one was
/// (the verdict is the window's). Every wait past the window is paid in
/// full by a mutant whose event never comes (an alert rule with `for: 1m`,
/// DNS health checks on a dead port): hence the cap.
pub(crate) fn late_wait(window: std::time::Duration) -> std::time::Duration {
    window + (window / 2).min(std::time::Duration::from_secs(10))
}

/// How long a log parser (mtail) may take to count a line after it is
/// written, before a scrape can show it.
pub(crate) const PARSE_LAG: std::time::Duration = std::time::Duration::from_millis(300);

/// Waits, at most `within`, until Prometheus has scraped every target
/// after `since`: the oldest of the targets' last `up` samples
/// (`min(timestamp(up))`) is newer. What was counted by then shows in a
/// query. Replaces a fixed two-second sleep.
pub(crate) async fn scraped_since(
    stack: &crate::stack::Stack,
    rec: &crate::recorder::Recorder,
    since: std::time::SystemTime,
    within: std::time::Duration,
) {
    if stack.hosts_running("prometheus").is_empty() {
        return;
    }
    let within = match longest_scrape_interval(stack).await {
        Some(every) => within.max(every * 3 / 2),
        None => within,
    };
    rec.waiting_for("a scrape of every target after the earlier traffic");
    let since = since
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let scraped = || async {
        prometheus(stack, "min(timestamp(up))")
            .await
            .ok()
            .and_then(|r| r.first()?["value"][1].as_str()?.parse::<f64>().ok())
            .is_some_and(|oldest| oldest > since)
    };
    let took = wait_for(within, scraped).await;
    tracing::debug!(?took, "every target scraped since");
}

/// The configuration the running Prometheus loaded, as its status API
/// writes it out (every job's interval resolved, before any target is
/// discovered), or None when there is none or it does not answer.
async fn loaded_prometheus_config(stack: &crate::stack::Stack) -> Option<String> {
    let monitor = stack.hosts_running("prometheus").first().copied()?;
    let url = format!("http://{}:9090/api/v1/status/config", monitor.main_addr());
    let body: serde_json::Value = stack
        .client
        .fresh
        .get(&url)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(body["data"]["yaml"].as_str()?.to_string())
}

/// The longest scrape interval of the running Prometheus, or None.
pub(crate) async fn longest_scrape_interval(
    stack: &crate::stack::Stack,
) -> Option<std::time::Duration> {
    scrape_intervals(stack).await?.into_iter().max()
}

/// The shortest scrape interval of the running Prometheus, or None.
pub(crate) async fn shortest_scrape_interval(
    stack: &crate::stack::Stack,
) -> Option<std::time::Duration> {
    scrape_intervals(stack).await?.into_iter().min()
}

/// Every scrape interval of the running Prometheus's loaded configuration
/// (the global one and each job's, resolved).
async fn scrape_intervals(stack: &crate::stack::Stack) -> Option<Vec<std::time::Duration>> {
    Some(
        loaded_prometheus_config(stack)
            .await?
            .lines()
            .filter_map(|l| l.trim().strip_prefix("scrape_interval:"))
            .filter_map(|v| duration_with_units(v.trim()))
            .collect(),
    )
}

/// How often the running Prometheus scrapes the job `job`, or None.
pub(crate) async fn scrape_interval_of(
    stack: &crate::stack::Stack,
    job: &str,
) -> Option<std::time::Duration> {
    job_scrape_interval(&loaded_prometheus_config(stack).await?, job)
}

/// In a Prometheus configuration as its status API writes it: `job`'s
/// scrape interval, else the global one.
fn job_scrape_interval(yaml: &str, job: &str) -> Option<std::time::Duration> {
    let (mut global, mut current) = (None, None::<&str>);
    for line in yaml.lines().map(str::trim) {
        if let Some(name) = line.trim_start_matches("- ").strip_prefix("job_name:") {
            current = Some(name.trim().trim_matches(['\'', '"']));
        } else if let Some(v) = line.strip_prefix("scrape_interval:") {
            let every = duration_with_units(v.trim());
            match current {
                None => global = every,
                Some(j) if j == job => return every,
                Some(_) => {}
            }
        }
    }
    global
}

/// A duration with units as Prometheus and HAProxy write them (`15s`,
/// `1m30s`, `500ms`, `100us`) as a Duration.
pub(crate) fn duration_with_units(text: &str) -> Option<std::time::Duration> {
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        if &rest[..unit_len] == "us" {
            total += std::time::Duration::from_micros(n);
            rest = &rest[unit_len..];
            continue;
        }
        let ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        total += std::time::Duration::from_millis(n * ms);
        rest = &rest[unit_len..];
    }
    (!text.is_empty()).then_some(total)
}

/// Waits until the design's Prometheus has scraped each of its targets at
/// least once (none left with health `unknown`), for at most `within`. A
/// fresh Prometheus scrapes nothing for about 5 s (it throttles target
/// discovery), so a claim that compares "before" with "after" a fault on
/// a new stack would otherwise measure Prometheus's own start. Returns
/// quietly when it cannot tell: the claim's own queries then decide.
pub(crate) async fn first_scrapes_done(
    stack: &crate::stack::Stack,
    rec: &crate::recorder::Recorder,
    within: std::time::Duration,
) {
    let Some(monitor) = stack.hosts_running("prometheus").first().copied() else {
        return;
    };
    let url = format!("http://{}:9090/api/v1/targets", monitor.main_addr());
    // A user's Prometheus may scrape every 15 s or more: its first scrapes
    // are spread over that long, after the 5 s discovery throttle.
    let within = match longest_scrape_interval(stack).await {
        Some(every) => within.max(std::time::Duration::from_secs(5) + every * 3 / 2),
        None => within,
    };
    rec.waiting_for("Prometheus's first scrape of every target");
    let scraped = || async {
        let Ok(resp) = stack.client.fresh.get(&url).send().await else {
            return false;
        };
        let Ok(body) = resp.json::<serde_json::Value>().await else {
            return false;
        };
        body["data"]["activeTargets"]
            .as_array()
            .is_some_and(|targets| {
                !targets.is_empty()
                    && targets
                        .iter()
                        .all(|t| t["health"].as_str() != Some("unknown"))
            })
    };
    let _ = wait_for(within, scraped).await;
}

#[cfg(test)]
mod tests {
    use super::duration_with_units;
    use std::time::Duration;

    #[test]
    fn a_jobs_scrape_interval_or_the_global_one() {
        let yaml = "global:\n  scrape_interval: 15s\n  scrape_timeout: 10s\nscrape_configs:\n- job_name: node\n  scrape_interval: 15s\n- job_name: nginx\n  scrape_interval: 5s\n";
        assert_eq!(
            super::job_scrape_interval(yaml, "nginx"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            super::job_scrape_interval(yaml, "node"),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            super::job_scrape_interval(yaml, "other"),
            Some(Duration::from_secs(15))
        );
    }

    #[test]
    fn duration_with_unitss_read_as_prometheus_writes_them() {
        assert_eq!(duration_with_units("15s"), Some(Duration::from_secs(15)));
        assert_eq!(duration_with_units("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(
            duration_with_units("500ms"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(duration_with_units("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(
            duration_with_units("1500us"),
            Some(Duration::from_micros(1500))
        );
        assert_eq!(duration_with_units(""), None);
        assert_eq!(duration_with_units("15"), None);
        assert_eq!(duration_with_units("fast"), None);
    }
}
