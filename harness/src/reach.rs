//! Who can reach what: the listening ports of a host, read from the host
//! itself (`ss`), probed from every other host of the design on every
//! network they share. Firewall claims derive what to probe from this, not
//! from a fixed port list: a port that nobody listens on proves nothing,
//! and a listener nobody thought of is probed all the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::failure::Failure;
use crate::host::Host;
use crate::stack::Stack;

/// How long a probe waits for a port that drops packets before calling it closed.
const PROBE_WAIT_S: u32 = 1;

/// A TCP port a host listens on beyond loopback, and the process behind it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// The port.
    pub port: u16,
    /// The process name as `ss -p` shows it (`nginx`, `haproxy`...).
    pub process: String,
}

/// The TCP ports `host` listens on for other hosts (loopback-only ones
/// are left out: nobody else can reach them, whatever the firewall says).
pub async fn listeners(host: &Host) -> Result<Vec<Listener>, Failure> {
    let out = host.run("ss -Hltnp").await?;
    let mut found: Vec<Listener> = out
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let local = *words.get(3)?;
            let (addr, port) = local.rsplit_once(':')?;
            if addr.starts_with("127.") || addr == "[::1]" {
                return None;
            }
            let process = line
                .split("((\"")
                .nth(1)
                .and_then(|p| p.split('"').next())
                .unwrap_or("?")
                .to_string();
            Some(Listener {
                port: port.parse().ok()?,
                process,
            })
        })
        .collect();
    found.sort();
    found.dedup_by_key(|l| l.port);
    Ok(found)
}

/// One probe's result: could `from` open a TCP connection to `to`'s `port`
/// on any network they share?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// The host the connection came from.
    pub from: String,
    /// The host it went to.
    pub to: String,
    /// The port.
    pub port: u16,
    /// Whether any path accepted it.
    pub open: bool,
}

/// Probes every `(target, port)` from every other host of the design, on
/// each network the two share (only `on` when given: what comes from that
/// network, not what the same hosts send over another), all at once (one
/// shell per vantage host, each probe waiting at most a second). A stopped
/// host is no vantage point.
pub async fn matrix(
    stack: &Stack,
    targets: &[(&str, Vec<u16>)],
    on: Option<&str>,
) -> Result<Vec<Reach>, Failure> {
    // vantage host → [(target, port, address)]
    let mut plan: BTreeMap<String, Vec<(String, u16, Ipv4Addr)>> = BTreeMap::new();
    for (target, ports) in targets {
        let to = stack.host(target)?;
        for from in stack.hosts.values().filter(|h| h.name != *target) {
            for (net, addr) in &to.addrs {
                if from.addr(net).is_none() || on.is_some_and(|on| on != net.as_str()) {
                    continue;
                }
                for port in ports {
                    plan.entry(from.name.clone()).or_default().push((
                        target.to_string(),
                        *port,
                        *addr,
                    ));
                }
            }
        }
    }
    let runs = plan.iter().map(|(from, probes)| async move {
        let mut script = String::new();
        for (i, (_, port, addr)) in probes.iter().enumerate() {
            let _ = write!(
                script,
                "(nc -z -w {PROBE_WAIT_S} {addr} {port} && echo {i}) & "
            );
        }
        script.push_str("wait");
        let out = stack.host(from)?.exec(&script).await?;
        let open: Vec<usize> = out
            .stdout
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        Ok::<_, Failure>(
            probes
                .iter()
                .enumerate()
                .map(|(i, (to, port, _))| (from.clone(), to.clone(), *port, open.contains(&i)))
                .collect::<Vec<_>>(),
        )
    });
    let mut merged: BTreeMap<(String, String, u16), bool> = BTreeMap::new();
    for rows in futures::future::try_join_all(runs).await? {
        for (from, to, port, open) in rows {
            *merged.entry((to, from, port)).or_default() |= open;
        }
    }
    Ok(merged
        .into_iter()
        .map(|((to, from, port), open)| Reach {
            from,
            to,
            port,
            open,
        })
        .collect())
}

/// The matrix as text, one line per target and vantage host:
/// `client → lb-1: 80 open, 443 open, 8405 closed`.
pub fn table(rows: &[Reach]) -> String {
    let mut lines: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in rows {
        lines
            .entry((r.to.clone(), r.from.clone()))
            .or_default()
            .push(format!(
                "{} {}",
                r.port,
                if r.open { "open" } else { "closed" }
            ));
    }
    lines
        .into_iter()
        .map(|((to, from), ports)| format!("{from} → {to}: {}", ports.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The rows whose result differs from `allowed(from, to, port)`, printed.
pub fn unexpected(rows: &[Reach], allowed: impl Fn(&Reach) -> bool) -> Vec<String> {
    rows.iter()
        .filter(|r| r.open != allowed(r))
        .map(|r| {
            format!(
                "{} → {}:{} {} (should be {})",
                r.from,
                r.to,
                r.port,
                if r.open { "open" } else { "closed" },
                if r.open { "closed" } else { "open" }
            )
        })
        .collect()
}
