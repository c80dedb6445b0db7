//! The run's own authoritative DNS server (hickory), for `foobar.com`.
//!
//! The run's traffic leaves from its probe host (see [`crate::relay`]): the
//! server listens on loopback, and the probe host's port 53 on the design's
//! first network forwards to it ([`crate::relay::Relay::serve`]), so it is
//! reached from inside the run's networks like any other server. With
//! `STACKPROOF_TRAFFIC=local` it listens on that network's gateway instead,
//! on one port for UDP and TCP. The zone comes from the design folder's zone file with
//! `{{ }}` placeholders for the run's addresses; records can be replaced
//! while the run goes on (DNS-based failover needs that).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType, RrKey, rdata::A};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

use crate::client::Net;
use crate::error::{Error, Result};

/// How long a TCP client may stay idle before the server closes it.
const TCP_IDLE: Duration = Duration::from_secs(5);

/// A running DNS server. Dropping it stops it.
pub struct DnsServer {
    /// Where clients reach it, UDP and TCP.
    pub addr: SocketAddr,
    /// Where its health checks connect from.
    net: Net,
    /// The zone's origin, e.g. `foobar.com.`.
    pub origin: Name,
    zone: Arc<InMemoryZoneHandler>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .field("origin", &self.origin)
            .finish()
    }
}

impl DnsServer {
    /// Parses `zone_text` (already rendered) and serves it on `ip`, on a
    /// free port; through the relay of `net`, on loopback, reached at
    /// `relay_at` (the probe host's port 53).
    pub async fn start(
        ip: Ipv4Addr,
        net: &Net,
        relay_at: SocketAddr,
        origin: &str,
        zone_text: &str,
        zone_file: &Path,
    ) -> Result<Self> {
        let invalid = |detail: String| Error::InvalidFixture {
            path: zone_file.to_path_buf(),
            detail,
        };
        let origin_name =
            Name::from_ascii(origin).map_err(|e| invalid(format!("bad origin `{origin}`: {e}")))?;
        let (origin_name, records) = parse_zone(zone_text, zone_file, origin_name)?;
        let zone = InMemoryZoneHandler::new(
            origin_name.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .map_err(invalid)?;
        let zone = Arc::new(zone);
        let mut catalog = Catalog::new();
        catalog.upsert(
            LowerName::new(&origin_name),
            vec![zone.clone() as Arc<dyn ZoneHandler>],
        );

        let dns_err = |addr: String| {
            move |e: std::io::Error| Error::Dns {
                addr,
                source: Box::new(e),
            }
        };
        let ip = match net {
            Net::Direct => ip,
            Net::Relay(_) => Ipv4Addr::LOCALHOST,
        };
        let tcp = TcpListener::bind((ip, 0))
            .await
            .map_err(dns_err(format!("{ip}:0/tcp")))?;
        let addr = tcp.local_addr().map_err(dns_err(format!("{ip}:0/tcp")))?;
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(dns_err(format!("{addr}/udp")))?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, 64 * 1024);
        let shutdown = server.shutdown_token().clone();
        tokio::spawn(async move {
            if let Err(e) = server.block_until_done().await {
                tracing::warn!("the run's DNS server stopped: {e}");
            }
        });
        let addr = match net {
            Net::Direct => addr,
            Net::Relay(relay) => {
                relay.serve(relay_at, addr).await?;
                relay_at
            }
        };
        Ok(DnsServer {
            addr,
            net: net.clone(),
            origin: origin_name,
            zone,
            shutdown,
        })
    }

    /// Replaces every A record of `name` (relative to the origin, or absolute
    /// with a trailing dot) with `addrs`; an empty list removes the name's A records.
    pub async fn set_a(&self, name: &str, addrs: &[Ipv4Addr], ttl: u32) -> Result<()> {
        replace_a(&self.zone, self.fqdn(name)?, addrs, ttl).await;
        Ok(())
    }

    /// Serves `check.name` health-checked: every `interval`, each address
    /// whose `port` accepts a TCP connection within `timeout` is returned,
    /// the others are not (all are, when none answers). Stops when the
    /// returned guard is dropped; the records stay as last set.
    pub fn health_check(&self, check: HealthCheck) -> Result<HealthGuard> {
        let fqdn = self.fqdn(&check.name)?;
        let zone = self.zone.clone();
        let net = self.net.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(check.interval_ms));
            loop {
                tick.tick().await;
                let probes = check.addresses.iter().map(|a| {
                    let (net, wait) = (&net, Duration::from_millis(check.timeout_ms));
                    async move {
                        net.connect(SocketAddr::from((*a, check.port)), wait)
                            .await
                            .is_ok()
                    }
                });
                let up = futures::future::join_all(probes).await;
                let healthy: Vec<Ipv4Addr> = check
                    .addresses
                    .iter()
                    .zip(&up)
                    .filter(|(_, up)| **up)
                    .map(|(a, _)| *a)
                    .collect();
                let serve = if healthy.is_empty() {
                    check.addresses.clone()
                } else {
                    healthy
                };
                replace_a(&zone, fqdn.clone(), &serve, check.ttl).await;
            }
        });
        Ok(HealthGuard { task })
    }

    /// Serves `zone_text` (rendered; from `zone_file`) instead of the
    /// zone's records now: a mutant of the zone on a running stack. The
    /// caller keeps a [`DnsServer::snapshot`] to put the design's back.
    pub async fn load_zone(&self, zone_text: &str, zone_file: &Path) -> Result<()> {
        let (_, records) = parse_zone(zone_text, zone_file, self.origin.clone())?;
        *self.zone.records_mut().await = records
            .into_iter()
            .map(|(k, set)| (k, Arc::new(set)))
            .collect();
        Ok(())
    }

    /// The zone's records as they are now, to put back with [`DnsServer::put_back`].
    pub async fn snapshot(&self) -> ZoneSnapshot {
        let records = self.zone.records().await.clone();
        ZoneSnapshot {
            lines: zone_lines(&records),
            records,
        }
    }

    /// Puts the zone back as `snapshot` holds it when its records differ
    /// (names, types, TTLs, data), and says what differed: a claim must
    /// leave the zone as it found it, and one that did not would have the
    /// claims after it measure another design.
    pub async fn put_back(&self, snapshot: &ZoneSnapshot) -> Option<String> {
        let mut records = self.zone.records_mut().await;
        let now = zone_lines(&records);
        if now == snapshot.lines {
            return None;
        }
        let gone: Vec<&String> = snapshot.lines.iter().filter(|l| !now.contains(l)).collect();
        let new: Vec<&String> = now.iter().filter(|l| !snapshot.lines.contains(l)).collect();
        *records = snapshot.records.clone();
        Some(format!(
            "records missing: [{}]; records added: [{}]",
            gone.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            new.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }

    /// The A records of `name` as the zone holds them now.
    pub async fn a_records(&self, name: &str) -> Result<Vec<IpAddr>> {
        let fqdn = self.fqdn(name)?;
        let key = RrKey::new(LowerName::new(&fqdn), RecordType::A);
        let records = self.zone.records().await;
        Ok(records
            .get(&key)
            .map(|set| {
                set.records_without_rrsigs()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(IpAddr::V4(a.0)),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The TTL of `name`'s A records as the zone holds them now (`None` when it has none).
    pub async fn a_ttl(&self, name: &str) -> Result<Option<u32>> {
        let fqdn = self.fqdn(name)?;
        let key = RrKey::new(LowerName::new(&fqdn), RecordType::A);
        let records = self.zone.records().await;
        Ok(records.get(&key).map(|set| set.ttl()))
    }

    fn fqdn(&self, name: &str) -> Result<Name> {
        let parsed = Name::from_ascii(name).map_err(|e| Error::Unknown {
            kind: "DNS name",
            name: format!("{name} ({e})"),
            known: format!("names under {}", self.origin),
        })?;
        Ok(if name.ends_with('.') {
            parsed
        } else {
            parsed.append_domain(&self.origin).expect("short name")
        })
    }
}

async fn replace_a(zone: &InMemoryZoneHandler, fqdn: Name, addrs: &[Ipv4Addr], ttl: u32) {
    let key = RrKey::new(LowerName::new(&fqdn), RecordType::A);
    let mut records = zone.records_mut().await;
    if addrs.is_empty() {
        records.remove(&key);
        return;
    }
    let serial = 1;
    let mut set = RecordSet::new(fqdn.clone(), RecordType::A, serial);
    for a in addrs {
        set.insert(
            Record::from_rdata(fqdn.clone(), ttl, RData::A(A(*a))),
            serial,
        );
    }
    records.insert(key, Arc::new(set));
}

/// Parses a zone file's text (rendered) under `origin`.
fn parse_zone(text: &str, file: &Path, origin: Name) -> Result<(Name, BTreeMap<RrKey, RecordSet>)> {
    Parser::new(text, Some(file.to_path_buf()), Some(origin))
        .parse()
        .map_err(|e| Error::InvalidFixture {
            path: file.to_path_buf(),
            detail: format!("not a valid zone file: {e}"),
        })
}

/// A copy of the zone's records (see [`DnsServer::snapshot`]).
#[derive(Debug, Clone)]
pub struct ZoneSnapshot {
    records: BTreeMap<RrKey, Arc<RecordSet>>,
    lines: Vec<String>,
}

/// Every record as one sorted line (`name TTL type data`), serials left out:
/// a record set put back by hand carries another serial but the same answers.
fn zone_lines(records: &BTreeMap<RrKey, Arc<RecordSet>>) -> Vec<String> {
    let mut lines: Vec<String> = records
        .values()
        .flat_map(|set| set.records_without_rrsigs())
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect();
    lines.sort();
    lines
}

/// A health-checked name, as the design's `dns-health.toml` describes it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The name, relative to the zone (`www`).
    pub name: String,
    /// The candidate addresses.
    pub addresses: Vec<Ipv4Addr>,
    /// The TCP port that must answer.
    pub port: u16,
    /// How often every address is checked, in ms.
    pub interval_ms: u64,
    /// How long a check may take, in ms.
    pub timeout_ms: u64,
    /// The TTL of the records served.
    pub ttl: u32,
}

/// Stops a health check when dropped.
#[derive(Debug)]
pub struct HealthGuard {
    task: tokio::task::JoinHandle<()>,
}

impl HealthGuard {
    /// Stops the checks and returns once the task has ended, so no late
    /// check writes the name after the caller puts the zone's records back.
    /// (Only cancelling it let a check that was still waiting on a dead
    /// address's connect write its answer after the restore: www stayed on
    /// lb-2's own address, and later claims on that stack bypassed the VIP.)
    pub async fn stop(mut self) {
        self.task.abort();
        // Aborted is the expected end; the guard's drop then aborts again, harmlessly.
        let _ = (&mut self.task).await;
    }
}

impl Drop for HealthGuard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The zone a claim changed is put back between claims, and the
    /// change is named (the claim runner then discards the stack).
    #[tokio::test]
    async fn a_changed_zone_is_put_back_and_named() {
        let zone = "$TTL 60\n@ IN SOA ns.foobar.com. admin.foobar.com. 1 7200 3600 1209600 60\n\
                    @ IN NS ns.foobar.com.\nns IN A 10.0.0.53\nwww IN A 10.0.0.80\n";
        let dns = DnsServer::start(
            Ipv4Addr::LOCALHOST,
            &Net::Direct,
            "127.0.0.1:0".parse().unwrap(),
            "foobar.com.",
            zone,
            Path::new("dns.zone"),
        )
        .await
        .unwrap();
        let design = dns.snapshot().await;
        assert_eq!(dns.put_back(&design).await, None, "nothing changed yet");
        dns.set_a("www", &[Ipv4Addr::new(172, 28, 0, 99)], 5)
            .await
            .unwrap();
        let changed = dns.put_back(&design).await.expect("the change is named");
        assert!(changed.contains("172.28.0.99"), "{changed}");
        assert_eq!(
            dns.a_records("www").await.unwrap(),
            vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 80))]
        );
    }
}
