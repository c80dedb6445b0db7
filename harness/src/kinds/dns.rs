//! DNS kinds: what the run's DNS server answers for the site's name.

use hickory_proto::rr::{RData, RecordType};

use super::{Facts, Kind, Param, Params, Ty};
use crate::client::{self, DnsTransport};
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::recorder::{Figure, Recorder};
use crate::stack::{Stack, ZONE};

/// How long a dead address kept being returned through a caching resolver.
const DEAD_DROPPED: Figure = Figure::new("DNS failover: dead address dropped (ms)");

/// `dns.a_record`: a name resolves to exactly one address, the one named.
pub const A_RECORD: Kind = Kind {
    name: "dns.a_record",
    doc: "Over UDP and over TCP, `name` has exactly one A record (no CNAME), equal to the address of `points_at`: a host (its address on its first network) or a design address such as `public.vip`.",
    params: &[
        Param::required(
            "points_at",
            Ty::Text,
            "a host of the design, or an address name of the run (`public.vip`, `lb-1.public`)",
        ),
        Param::optional(
            "name",
            Ty::Text,
            "the name asked, relative to the zone (foobar.com)",
            "\"www\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.dns.www"
says = "DNS resolves www to the load balancer"
kind = "dns.a_record"
points_at = "lb-1""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(a_record),
};

/// The address `points_at` means: a host's main address, or a run address name.
pub(crate) fn address_of(stack: &Stack, points_at: &str) -> Result<String, Failure> {
    if let Ok(h) = stack.host(points_at) {
        return Ok(h.main_addr().to_string());
    }
    stack.vars.get(points_at).cloned().ok_or_else(|| {
        Failure::not_measured(
            format!(
                "`{points_at}` is neither a host nor an address of the run (hosts: {}; addresses look like `lb-1.public`, `public.vip`)",
                stack.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            "",
        )
    })
}

async fn a_record(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let points_at = p.text("points_at");
    let fqdn = format!("{}.{ZONE}", p.text("name"));
    let expected = address_of(stack, points_at)?;
    let mut evidence = Vec::new();
    for transport in [DnsTransport::Udp, DnsTransport::Tcp] {
        let resolver = stack.client.resolver(transport)?;
        let answers = client::query(&resolver, &fqdn, RecordType::A)
            .await
            .map_err(|e| {
                let mut f =
                    super::common::dns_failure(format!("{transport:?} query for {fqdn}: {e}"));
                f.evidence = evidence.join("; ");
                f
            })?;
        let seen: Vec<String> = answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => format!("A {a}"),
                RData::CNAME(c) => format!("CNAME {}", c.0),
                other => format!("{:?} {other}", r.record_type()),
            })
            .collect();
        evidence.push(format!(
            "{transport:?} {} → {}",
            stack.dns.addr,
            seen.join(", ")
        ));
        ensure_eq(
            &format!("{fqdn} over {transport:?}"),
            vec![format!("A {expected}")],
            seen,
            &evidence.join("; "),
        )?;
    }
    Ok(format!(
        "{fqdn}: {}; {points_at} is {expected}",
        evidence.join("; ")
    ))
}

/// `dns.health_checked_failover`: a dead address leaves the answers in time.
pub const HEALTH_CHECKED_FAILOVER: Kind = Kind {
    name: "dns.health_checked_failover",
    doc: "The run's DNS serves `name` as the addresses of `hosts`, health-checked as the design's `config` file says (port, interval, timeout, TTL); seen through a caching resolver, the record carries that TTL, and with the first host stopped its address stops being returned within `budget_ms`, the design's promise. The file's TTL + check interval + check timeout explain the figure and never widen the budget: timers that alone exceed it are a FAIL without the fault.",
    params: &[
        Param::required(
            "hosts",
            Ty::Hosts,
            "the addresses behind the name; the first is stopped",
        ),
        Param::optional(
            "config",
            Ty::Text,
            "the design's health-check file (`name`, `port`, `interval_ms`, `timeout_ms`, `ttl`)",
            "\"dns-health.toml\"",
        ),
        Param::optional(
            "budget_ms",
            Ty::Ms,
            "how soon a dead address must stop being returned: the design's promise",
            "60000",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.remedy.dns_failover"
says = "use DNS-based failover"
kind = "dns.health_checked_failover"
hosts = ["lb-1", "lb-2"]"#,
    facts: Facts::PLAIN.timed(),
    check: crate::kind_check!(health_checked_failover),
};

async fn health_checked_failover(stack: &Stack, p: &Params, rec: &Recorder) -> CheckResult {
    use crate::stack::{Fault, WWW};
    use std::time::Duration;
    let hosts = p.list("hosts");
    let budget = p.ms("budget_ms");
    let (file, text) = stack.fixtures_now().read(p.text("config"))?;
    let text = crate::fixtures::render(&text, &stack.vars, &file)?;
    let check: crate::dns::HealthCheck =
        toml::from_str(&text).map_err(|e| Failure::new(format!("{}: {e}", file.display()), ""))?;
    // What the design's own timers let a cached dead address live: they
    // explain the figure, the budget is the promise.
    let timers = Duration::from_secs(u64::from(check.ttl))
        + Duration::from_millis(check.interval_ms + check.timeout_ms);
    let summary = format!(
        "design: TTL {} s, checks every {} ms (timeout {} ms) on port {}: a cached dead address may live {} ms; budget {} ms",
        check.ttl,
        check.interval_ms,
        check.timeout_ms,
        check.port,
        timers.as_millis(),
        budget.as_millis()
    );
    let (ttl, check_interval_ms, check_timeout_ms) =
        (check.ttl, check.interval_ms, check.timeout_ms);
    ensure(
        timers <= budget,
        format!(
            "the design's TTL and health checks let a resolver keep a dead address for up to {} s, past the {} s promised",
            timers.as_secs_f64(),
            budget.as_secs_f64()
        ),
        &summary,
    )?;
    let mut addrs = Vec::new();
    for h in &hosts {
        addrs.push(stack.host(h)?.main_addr());
    }
    let (dead, dead_addr) = (hosts[0], addrs[0].to_string());
    let direct = stack.client.resolver(DnsTransport::Udp)?;
    let cached = stack.client.caching_resolver()?;
    let answer = |r: &'_ client::DnsClient| {
        let r = r.clone();
        async move {
            let records = client::query(&r, WWW, RecordType::A)
                .await
                .unwrap_or_default();
            (
                records
                    .iter()
                    .filter_map(|r| r.data.ip_addr())
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>(),
                records.first().map(|r| r.ttl),
            )
        }
    };
    let all: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    // The zone's own records come back when the claim ends, whatever happens.
    let records = stack
        .apply(Fault::DnsRecords(&check.name.clone(), &addrs, check.ttl))
        .await?;
    let guard = stack.dns.health_check(check)?;
    // A precondition: its wait follows the design's own check interval.
    let first_checks = Duration::from_secs(5).max(Duration::from_millis(
        2 * check_interval_ms + check_timeout_ms,
    ));
    let every = super::common::wait_for(first_checks, || async {
        let (a, _) = answer(&direct).await;
        all.iter().all(|x| a.contains(x))
    })
    .await;
    let (before, served_ttl) = answer(&direct).await;
    // Warm the cache: from now on the caching resolver answers from memory until the TTL runs out.
    let _ = answer(&cached).await;
    let stopped = stack.apply(Fault::StopHost(dead)).await?;
    rec.waiting_for(&format!(
        "{dead}'s address to leave the answers (budget {} ms)",
        budget.as_millis()
    ));
    let gone = super::common::wait_for(super::common::late_wait(budget), || async {
        !answer(&cached).await.0.contains(&dead_addr)
    })
    .await;
    let (after, _) = answer(&cached).await;
    guard.stop().await;
    records.restore().await?;
    stopped.restore().await?;
    if let Some(d) = gone {
        rec.measured(DEAD_DROPPED, d.as_millis() as f64);
    }
    let evidence = format!(
        "{summary}; www → [{}] with all up{}, served with TTL {}; {dead} stopped: through a caching resolver its address {}; then www → [{}]",
        before.join(", "),
        if every.is_some() { "" } else { " (never all)" },
        served_ttl
            .map(|t| format!("{t} s"))
            .unwrap_or_else(|| "-".into()),
        match gone {
            Some(d) => format!("stopped being returned after {} ms", d.as_millis()),
            None => "was STILL returned".into(),
        },
        after.join(", "),
    );
    ensure(
        every.is_some(),
        "health-checked DNS never returned every address",
        &evidence,
    )?;
    ensure_eq("TTL of the served record", Some(ttl), served_ttl, &evidence)?;
    ensure(
        gone.is_some(),
        "a dead address kept being returned, even well past the budget",
        &evidence,
    )?;
    ensure_eq(
        &format!("www with {dead} down"),
        all[1..].to_vec(),
        after,
        &evidence,
    )?;
    // Judged by the runner: on this run, or on a percentile of a repeated
    // claim's runs (`percentile` in the claims file).
    rec.budget(DEAD_DROPPED, budget.as_millis() as f64);
    Ok(evidence)
}
