//! Faults a claim applies to a running stack (a stopped host, a killed
//! service, a cut link...), each returned as a guard that undoes it, and
//! the undo of whatever a claim left applied when it ended.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Instant;

use super::{InPlace, Stack};
use crate::error::{Error, Result};
use crate::host::Host;
use crate::spec::HostSpec;

impl Stack {
    /// Applies a fault and returns the guard that undoes it. Undo it with
    /// the guard's `restore` where the claim wants the design whole again;
    /// whatever way a claim ends instead (an error, `?`, its deadline, a
    /// panic), the claim runner undoes what is left ([`Stack::restore_faults`]).
    pub async fn apply(&self, fault: Fault<'_>) -> Result<FaultGuard<'_>> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.apply_now(fault).await;
        }
        // A mutant's fault prints its files: formatted only when traced.
        let started = Instant::now();
        let what = format!("{fault:?}");
        let guard = self.apply_now(fault).await;
        tracing::debug!(
            ms = started.elapsed().as_millis(),
            ok = guard.is_ok(),
            "applied {what}"
        );
        guard
    }

    async fn apply_now(&self, fault: Fault<'_>) -> Result<FaultGuard<'_>> {
        // A service fault on a host the design does not put it on is the
        // design's doing (its primary moved elsewhere), not a failed stop.
        if let Fault::StopService(h, s) | Fault::KillService(h, s) | Fault::PauseService(h, s) =
            fault
            && !self.hosts_running(s).iter().any(|host| host.name == h)
        {
            return Err(Error::NotOnHost {
                service: s.to_string(),
                host: h.to_string(),
                on: self
                    .hosts_running(s)
                    .iter()
                    .map(|h| h.name.clone())
                    .collect(),
            });
        }
        let undo = match fault {
            Fault::StopHost(h) => {
                self.stop_host(h).await?;
                Undo::StartHost(h.to_string())
            }
            Fault::StopService(h, s) => {
                self.stop_service(h, s).await?;
                Undo::StartService(h.to_string(), s.to_string())
            }
            Fault::KillService(h, s) => {
                self.kill_service(h, s).await?;
                Undo::StartService(h.to_string(), s.to_string())
            }
            Fault::Reconfigure(h, s, overrides) => {
                // Registered first: a rejected file must be put back too.
                let id = self.register(Undo::Reconfigure(h.to_string(), s.to_string()));
                self.reconfigure(h, s, overrides).await?;
                return Ok(FaultGuard { stack: self, id });
            }
            Fault::Mutant(mutant) => {
                let id = self.lay(mutant).await?;
                return Ok(FaultGuard { stack: self, id });
            }
            Fault::AddHost(spec, overrides) => {
                let host = self.add_host(spec, overrides).await?;
                Undo::RemoveHost(host)
            }
            Fault::DnsRecords(name, addrs, ttl) => self.replace_a_records(name, addrs, ttl).await?,
            Fault::PauseHost(h) => {
                let host = self.host(h)?;
                self.docker
                    .pause_container(&host.container)
                    .await
                    .map_err(Error::docker(format!("pause host `{h}`")))?;
                Undo::Unpause(h.to_string())
            }
            Fault::PauseService(h, s) => {
                self.signal_service(h, s, "STOP").await?;
                Undo::ContinueService(h.to_string(), s.to_string())
            }
            Fault::Partition(a, b, proto) => self.cut_between(a, b, proto, None).await?,
            Fault::CutOn(a, b, net) => self.cut_between(a, b, None, Some(net)).await?,
            Fault::Disconnect(h, net) => self.disconnect(h, net).await?,
            Fault::SlowLink(h, kbit) => self.slow_link(h, kbit).await?,
            Fault::LosePackets(h, share) => {
                let tag = format!("stackproof-fault-{}", rand::random::<u32>());
                let rule = format!(
                    "INPUT -m statistic --mode random --probability {:.4} -m comment --comment {tag} -j DROP",
                    share.clamp(0.0, 1.0)
                );
                self.host(h)?.run(&format!("iptables -w -I {rule}")).await?;
                Undo::Commands(vec![(h.to_string(), format!("iptables -w -D {rule}"))])
            }
            Fault::CpuQuota(h, cpus) => self.cpu_quota(h, cpus).await?,
        };
        Ok(FaultGuard {
            stack: self,
            id: self.register(undo),
        })
    }

    /// Replaces `name`'s A records; the undo puts the old ones back.
    async fn replace_a_records(&self, name: &str, addrs: &[Ipv4Addr], ttl: u32) -> Result<Undo> {
        let old: Vec<Ipv4Addr> = self
            .dns
            .a_records(name)
            .await?
            .into_iter()
            .filter_map(|a| match a {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })
            .collect();
        let old_ttl = self.dns.a_ttl(name).await?.unwrap_or(ttl);
        self.dns.set_a(name, addrs, ttl).await?;
        Ok(Undo::DnsRecords(name.to_string(), old, old_ttl))
    }

    /// Drops every packet between `a` and `b` (of protocol `proto`, or all;
    /// on network `only_on`, or every one they share), both ways, with
    /// rules tagged so their counters prove the cut took effect.
    async fn cut_between(
        &self,
        a: &str,
        b: &str,
        proto: Option<&str>,
        only_on: Option<&str>,
    ) -> Result<Undo> {
        let tag = format!("stackproof-fault-{}", rand::random::<u32>());
        if let Some(net) = only_on
            && (self.host(a)?.addr(net).is_none() || self.host(b)?.addr(net).is_none())
        {
            return Err(Error::Unknown {
                kind: "network shared by both hosts",
                name: format!("{net} (between `{a}` and `{b}`)"),
                known: self.networks.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        let proto = proto.map(|p| format!("-p {p} ")).unwrap_or_default();
        let mut undo = Vec::new();
        for (me, peer) in [(a, b), (b, a)] {
            let peer = self.host(peer)?;
            let addrs = peer
                .addrs
                .iter()
                .filter(|(net, _)| only_on.is_none_or(|on| on == net.as_str()))
                .map(|(_, addr)| addr);
            for addr in addrs {
                for rule in [
                    format!("INPUT -s {addr} {proto}-m comment --comment {tag} -j DROP"),
                    format!("OUTPUT -d {addr} {proto}-m comment --comment {tag} -j DROP"),
                ] {
                    // What was added before a failure is undone too.
                    if let Err(e) = self.host(me)?.run(&format!("iptables -w -I {rule}")).await {
                        self.register(Undo::Commands(undo));
                        return Err(e);
                    }
                    undo.push((me.to_string(), format!("iptables -w -D {rule}")));
                }
            }
        }
        Ok(Undo::Commands(undo))
    }

    /// Takes host `h` off network `net`.
    async fn disconnect(&self, h: &str, net: &str) -> Result<Undo> {
        use testcontainers::bollard::models::NetworkDisconnectRequest;
        let host = self.host(h)?;
        let network = self.networks.get(net).ok_or_else(|| Error::Unknown {
            kind: "network",
            name: net.to_string(),
            known: self.networks.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        self.docker
            .disconnect_network(
                &network.docker_name,
                NetworkDisconnectRequest {
                    container: host.container.clone(),
                    force: Some(true),
                },
            )
            .await
            .map_err(Error::docker(format!("disconnect host `{h}` from `{net}`")))?;
        Ok(Undo::Reconnect(h.to_string(), net.to_string()))
    }

    /// Limits every interface of `h` to `kbit` kbit/s.
    async fn slow_link(&self, h: &str, kbit: u32) -> Result<Undo> {
        let host = self.host(h)?;
        let mut undo = Vec::new();
        for dev in interfaces(host).await? {
            undo.push((h.to_string(), format!("tc qdisc del dev {dev} root")));
            let add =
                format!("tc qdisc add dev {dev} root tbf rate {kbit}kbit burst 16kbit latency 2s");
            if let Err(e) = host.run(&add).await {
                undo.pop();
                self.register(Undo::Commands(undo));
                return Err(e);
            }
        }
        Ok(Undo::Commands(undo))
    }

    /// Limits `h` to `cpus` CPUs.
    async fn cpu_quota(&self, h: &str, cpus: f64) -> Result<Undo> {
        use testcontainers::bollard::models::ContainerUpdateBody;
        let host = self.host(h)?;
        let period = 100_000;
        self.docker
            .update_container(
                &host.container,
                ContainerUpdateBody {
                    cpu_period: Some(period),
                    cpu_quota: Some(((cpus * period as f64) as i64).max(1000)),
                    ..Default::default()
                },
            )
            .await
            .map_err(Error::docker(format!("limit the CPU of host `{h}`")))?;
        Ok(Undo::CpuUnlimited(h.to_string()))
    }

    /// How many packets the cuts now applied (partitions, packet loss) have
    /// dropped on `hosts`, as their own iptables counters say: the proof on
    /// the receiving side that a cut took effect, whatever protocol the
    /// traffic it meant to stop uses.
    pub async fn packets_dropped_by_faults(&self, hosts: &[&str]) -> Result<u64> {
        let mut dropped = 0;
        for h in hosts {
            let listing = self
                .host(h)?
                .run("iptables -w -L -v -x -n 2>/dev/null || true")
                .await?;
            // "  12   1008 DROP  all  --  *  *  172.28.1.11  0.0.0.0/0  /* stackproof-fault-1 */"
            dropped += listing
                .lines()
                .filter(|l| l.contains("stackproof-fault-"))
                .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
                .sum::<u64>();
        }
        Ok(dropped)
    }

    /// Sends `signal` (STOP, CONT...) to every process of `service` on `host`.
    async fn signal_service(&self, host: &str, service: &str, signal: &str) -> Result<()> {
        let names = self.service(service)?.processes.join("|");
        self.host(host)?
            .run(&format!("pkill -{signal} -x '{names}'"))
            .await
            .map(drop)
    }

    pub(super) fn register(&self, undo: Undo) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.faults.lock().expect("faults lock").push((id, undo));
        id
    }

    /// Undoes one fault; a host or service started again is waited for
    /// until the stack settles (see [`Stack::settle_all`]) unless `settle`
    /// is false, for a caller that settles once after several.
    async fn undo(&self, undo: Undo, settle: bool) -> Result<()> {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.undo_now(undo, settle).await;
        }
        let started = Instant::now();
        let what = format!("{undo:?}");
        let undone = self.undo_now(undo, settle).await;
        let ms = started.elapsed().as_millis();
        tracing::debug!(ms, ok = undone.is_ok(), "undid {what}");
        undone
    }

    async fn undo_now(&self, undo: Undo, settle: bool) -> Result<()> {
        match undo {
            Undo::StartHost(h) => {
                self.start_host(&h).await?;
                if settle {
                    self.settle_all().await;
                }
                Ok(())
            }
            Undo::StartService(h, s) => {
                // A killed service may have left processes or pid files.
                if !self.pids(&h, &s).await?.is_empty() {
                    return Ok(());
                }
                self.start_service(&h, &s).await?;
                if settle {
                    self.settle_all().await;
                }
                Ok(())
            }
            Undo::Reconfigure(h, s) => self.reconfigure(&h, &s, &BTreeMap::new()).await,
            Undo::Mutant(users, zone) => {
                *self.laid.lock().expect("laid lock") = None;
                if let Some(zone) = zone {
                    self.dns.put_back(&zone).await;
                }
                self.restart_with(&self.fixtures, &users, &BTreeMap::new())
                    .await
                    .map(drop)
            }
            Undo::RemoveHost(host) => self.remove_host(host).await,
            Undo::DnsRecords(name, addrs, ttl) => self.dns.set_a(&name, &addrs, ttl).await,
            Undo::Unpause(h) => self
                .docker
                .unpause_container(&self.host(&h)?.container)
                .await
                .map_err(Error::docker(format!("unpause host `{h}`"))),
            Undo::ContinueService(h, s) => self.signal_service(&h, &s, "CONT").await,
            Undo::Commands(commands) => {
                for (h, cmd) in commands {
                    self.host(&h)?.run(&cmd).await?;
                }
                Ok(())
            }
            Undo::Reconnect(h, net) => {
                use testcontainers::bollard::models::{
                    EndpointIpamConfig, EndpointSettings, NetworkConnectRequest,
                };
                let host = self.host(&h)?;
                let addr = host.addr(&net).expect("the host was on this network");
                self.docker
                    .connect_network(
                        &self.networks[&net].docker_name,
                        NetworkConnectRequest {
                            container: host.container.clone(),
                            endpoint_config: Some(EndpointSettings {
                                ipam_config: Some(EndpointIpamConfig {
                                    ipv4_address: Some(addr.to_string()),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                        },
                    )
                    .await
                    .map_err(Error::docker(format!("reconnect host `{h}` to `{net}`")))
            }
            Undo::CpuUnlimited(h) => {
                use testcontainers::bollard::models::ContainerUpdateBody;
                self.docker
                    .update_container(
                        &self.host(&h)?.container,
                        ContainerUpdateBody {
                            cpu_quota: Some(-1),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(Error::docker(format!("lift the CPU limit of host `{h}`")))
            }
        }
    }

    /// Undoes every fault still applied, newest first. When one cannot be
    /// undone the stack is marked tainted (see [`Stack::tainted`]).
    pub async fn restore_faults(&self) -> Result<()> {
        let mut first_error = None;
        // One at a time, so each undo sees which faults are still applied.
        loop {
            let next = self.faults.lock().expect("faults lock").pop();
            let Some((_, undo)) = next else { break };
            let what = format!("{undo:?}");
            if let Err(e) = self.undo(undo, true).await {
                tracing::warn!("could not undo {what}: {}", e.chain());
                self.taint();
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A fault a claim applies to the running stack (see [`Stack::apply`]).
#[derive(Debug, Clone)]
pub enum Fault<'a> {
    /// Stop a whole host: the server is off.
    StopHost(&'a str),
    /// Stop one service on a host cleanly (its own stop command).
    StopService(&'a str, &'a str),
    /// Kill one service's processes outright, as a crash would.
    KillService(&'a str, &'a str),
    /// Re-render a service's files with these variables and reload it.
    Reconfigure(&'a str, &'a str, &'a BTreeMap<String, String>),
    /// Lay a mutant on the running stack: the files it changes installed
    /// and their services restarted, its zone served (see [`Stack::in_place`]).
    Mutant(&'a InPlace),
    /// Add a host the design file does not have (and remove it afterwards).
    AddHost(&'a HostSpec, &'a BTreeMap<String, String>),
    /// Replace a name's A records in the run's DNS (name, addresses, TTL).
    DnsRecords(&'a str, &'a [Ipv4Addr], u32),
    /// Freeze every process of a host (the engine's pause): it keeps its
    /// addresses and sockets but answers nothing, like a hung server.
    PauseHost(&'a str),
    /// Freeze one service's processes (SIGSTOP) on a host.
    PauseService(&'a str, &'a str),
    /// Drop the traffic between two hosts, both ways, on every network they
    /// share (iptables on both); `Some("112")` (a protocol number, or a
    /// name the host's /etc/protocols knows) drops that protocol only, e.g.
    /// VRRP, so a pair stops hearing itself while clients still reach both.
    Partition(&'a str, &'a str, Option<&'a str>),
    /// Drop every packet between two hosts on one network, both ways
    /// (iptables on both), whatever protocol carries it (VRRP's 112, AH's
    /// 51 when keepalived authenticates with AH, multicast or unicast),
    /// while the other networks they share carry the rest.
    CutOn(&'a str, &'a str, &'a str),
    /// Take a host off one network (it keeps its address for the return).
    Disconnect(&'a str, &'a str),
    /// Limit every interface of a host to this rate, in kbit/s (tc TBF:
    /// this kernel has no netem, so delay comes from queueing, not a knob).
    SlowLink(&'a str, u32),
    /// Drop this share (0.0 to 1.0) of the packets a host receives
    /// (iptables `statistic`), as a lossy link would.
    LosePackets(&'a str, f64),
    /// Limit a host to this many CPUs (the engine's CPU quota): a slow server.
    CpuQuota(&'a str, f64),
}

/// How to undo one applied fault.
#[derive(Debug)]
pub(super) enum Undo {
    /// Put the design's own files back on these (host, service) and
    /// restart them; put the zone back when there is a snapshot.
    Mutant(Vec<(String, String)>, Option<crate::dns::ZoneSnapshot>),
    StartHost(String),
    StartService(String, String),
    Reconfigure(String, String),
    RemoveHost(Host),
    DnsRecords(String, Vec<Ipv4Addr>, u32),
    Unpause(String),
    ContinueService(String, String),
    /// Commands that undo it, per host (iptables -D ..., tc qdisc del ...).
    Commands(Vec<(String, String)>),
    Reconnect(String, String),
    CpuUnlimited(String),
}

/// An applied fault. [`FaultGuard::restore`] undoes it now; dropping it
/// leaves the undo to the claim runner, which does it when the claim ends.
#[must_use = "restore the fault, or let the claim runner do it when the claim ends"]
#[derive(Debug)]
pub struct FaultGuard<'a> {
    stack: &'a Stack,
    id: u64,
}

impl FaultGuard<'_> {
    /// Undoes the fault now. On failure the stack is marked tainted.
    pub async fn restore(self) -> Result<()> {
        let undo = {
            let mut faults = self.stack.faults.lock().expect("faults lock");
            let i = faults.iter().position(|(id, _)| *id == self.id);
            i.map(|i| faults.remove(i).1)
        };
        let Some(undo) = undo else { return Ok(()) };
        let r = self.stack.undo(undo, true).await;
        if r.is_err() {
            self.stack.taint();
        }
        r
    }

    /// Undoes several faults, returning the first error. Hosts or services
    /// stopped on different hosts (a pair of load balancers) start side by
    /// side and the stack settles once, as machines brought back together
    /// would: one after the other, each waited for, took a second more.
    /// Anything else is undone one at a time, newest first. On failure the
    /// stack is marked tainted.
    pub async fn restore_all(guards: Vec<FaultGuard<'_>>) -> Result<()> {
        let Some(stack) = guards.first().map(|g| g.stack) else {
            return Ok(());
        };
        // Taken out of the list only when they start side by side: one at a
        // time, each undo must still see the faults left (settle_all waits
        // only once none is).
        let together: Option<Vec<Undo>> = {
            let mut faults = stack.faults.lock().expect("faults lock");
            let mut hosts = Vec::new();
            for g in &guards {
                match faults.iter().find(|(id, _)| *id == g.id) {
                    Some((_, Undo::StartHost(h) | Undo::StartService(h, _))) => hosts.push(h),
                    _ => break,
                }
            }
            let n = hosts.len();
            hosts.sort_unstable();
            hosts.dedup();
            (n > 1 && n == guards.len() && hosts.len() == n).then(|| {
                guards
                    .iter()
                    .filter_map(|g| {
                        let i = faults.iter().position(|(id, _)| *id == g.id)?;
                        Some(faults.remove(i).1)
                    })
                    .collect()
            })
        };
        let Some(undos) = together else {
            let mut first_error = Ok(());
            for g in guards.into_iter().rev() {
                if let Err(e) = g.restore().await
                    && first_error.is_ok()
                {
                    first_error = Err(e);
                }
            }
            return first_error;
        };
        let started = futures::future::join_all(undos.into_iter().map(|u| stack.undo(u, false)));
        let first_error = started.await.into_iter().find_map(|r| r.err());
        match first_error {
            Some(e) => {
                stack.taint();
                Err(e)
            }
            None => {
                stack.settle_all().await;
                Ok(())
            }
        }
    }

    /// A host this fault added (for [`Fault::AddHost`]).
    pub fn added_host(&self) -> Option<Host> {
        let faults = self.stack.faults.lock().expect("faults lock");
        faults
            .iter()
            .find(|(id, _)| *id == self.id)
            .and_then(|(_, u)| match u {
                Undo::RemoveHost(h) => Some(h.clone()),
                _ => None,
            })
    }
}

/// The network interfaces of a host, loopback left out.
async fn interfaces(host: &Host) -> Result<Vec<String>> {
    Ok(host
        .run("ip -o link show")
        .await?
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|d| d.trim().split('@').next().unwrap_or("").to_string())
        .filter(|d| !d.is_empty() && d != "lo")
        .collect())
}
