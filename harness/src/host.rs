//! A host: one container standing for one server, with its own addresses.
//!
//! Hosts idle under `tini` (PID 1 reaps what services leave) and their
//! services are started by exec, so stopping one service, or the whole host,
//! is a real operation on a real process tree. Every exec has a deadline.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use testcontainers::bollard::Docker;
use testcontainers::bollard::body_full;
use testcontainers::bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkConnectRequest,
    NetworkingConfig,
};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};

use crate::docker::RunId;
use crate::error::{Error, Result};
use crate::network::Network;

mod shell;

/// How long one exec may run unless the caller says otherwise.
pub const EXEC_DEADLINE: Duration = Duration::from_secs(60);

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit code.
    pub code: i64,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ExecOutput {
    /// Standard output then standard error.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A running host.
#[derive(Debug, Clone)]
pub struct Host {
    /// The design's name (`server-1`).
    pub name: String,
    /// The engine's container name (`sp-<run>-server-1`).
    pub container: String,
    /// Its address on each network it is on.
    pub addrs: BTreeMap<String, Ipv4Addr>,
    /// The network it was created on (its main address).
    pub main_network: String,
    docker: Docker,
    /// Shells kept open for its commands, shared by every copy.
    shells: std::sync::Arc<shell::Shells>,
}

impl Host {
    /// Creates and starts a host on `networks` (first = main), with the
    /// given address on each. It idles until services are started on it.
    pub async fn create(
        docker: &Docker,
        run: &RunId,
        image: &str,
        name: &str,
        networks: &[(&Network, Ipv4Addr)],
        memory_mib: Option<u64>,
    ) -> Result<Host> {
        let container = run.name(name);
        let (main, main_addr) = networks.first().expect("a host is on at least one network");
        let endpoint = |addr: Ipv4Addr| EndpointSettings {
            ipam_config: Some(EndpointIpamConfig {
                ipv4_address: Some(addr.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            hostname: Some(name.to_string()),
            cmd: Some(vec![
                "tini".into(),
                "-s".into(),
                "--".into(),
                "sleep".into(),
                "infinity".into(),
            ]),
            labels: Some(run.labels()),
            host_config: Some(HostConfig {
                network_mode: Some(main.docker_name.clone()),
                // iptables, tcpdump and keepalived's VIPs need these; nothing more.
                cap_add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                memory: memory_mib.map(|m| (m * 1024 * 1024) as i64),
                memory_swap: memory_mib.map(|m| (m * 1024 * 1024) as i64),
                // The run's DNS lives on the gateway; a container never gets the machine's resolvers.
                dns: Some(vec![main.gateway().to_string()]),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    main.docker_name.clone(),
                    endpoint(*main_addr),
                )])),
            }),
            ..Default::default()
        };
        // After Ctrl-C the interrupt handler is sweeping: create nothing more.
        if crate::docker::interrupted() {
            return Err(Error::Io {
                action: format!("create host `{name}`"),
                source: std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"),
            });
        }
        let opts = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        docker
            .create_container(Some(opts), body)
            .await
            .map_err(Error::docker(format!("create host `{name}`")))?;
        for (net, addr) in &networks[1..] {
            let request = NetworkConnectRequest {
                container: container.clone(),
                endpoint_config: Some(endpoint(*addr)),
            };
            docker
                .connect_network(&net.docker_name, request)
                .await
                .map_err(Error::docker(format!(
                    "connect host `{name}` to network `{}`",
                    net.name
                )))?;
        }
        docker
            .start_container(&container, None::<StartContainerOptions>)
            .await
            .map_err(Error::docker(format!("start host `{name}`")))?;
        Ok(Host {
            name: name.to_string(),
            container,
            addrs: networks.iter().map(|(n, a)| (n.name.clone(), *a)).collect(),
            main_network: main.name.clone(),
            docker: docker.clone(),
            shells: Default::default(),
        })
    }

    /// Creates and starts a host on no network at all (`network_mode:
    /// none`): for running a user's install script, which must reach nothing.
    pub async fn create_isolated(
        docker: &Docker,
        run: &RunId,
        image: &str,
        name: &str,
    ) -> Result<Host> {
        let container = run.name(name);
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            hostname: Some(name.to_string()),
            cmd: Some(vec![
                "tini".into(),
                "-s".into(),
                "--".into(),
                "sleep".into(),
                "infinity".into(),
            ]),
            labels: Some(run.labels()),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::new()
            .name(&container)
            .build();
        docker
            .create_container(Some(opts), body)
            .await
            .map_err(Error::docker(format!("create host `{name}`")))?;
        docker
            .start_container(&container, None::<StartContainerOptions>)
            .await
            .map_err(Error::docker(format!("start host `{name}`")))?;
        Ok(Host {
            name: name.to_string(),
            container,
            addrs: BTreeMap::new(),
            main_network: String::new(),
            docker: docker.clone(),
            shells: Default::default(),
        })
    }

    /// Its address on `network`.
    pub fn addr(&self, network: &str) -> Option<Ipv4Addr> {
        self.addrs.get(network).copied()
    }

    /// Its main address (on the first network it was put on).
    pub fn main_addr(&self) -> Ipv4Addr {
        self.addrs[&self.main_network]
    }

    /// Runs `sh -c cmd` and returns how it ended, within a deadline (`EXEC_DEADLINE`, a minute).
    pub async fn exec(&self, cmd: &str) -> Result<ExecOutput> {
        self.exec_within(cmd, EXEC_DEADLINE).await
    }

    /// Runs `sh -c cmd` within `deadline`, on a shell kept open on the host
    /// (see `host/shell.rs`): the command sees what a fresh exec would.
    pub async fn exec_within(&self, cmd: &str, deadline: Duration) -> Result<ExecOutput> {
        let run = async {
            loop {
                let (mut sh, reused) = match self.shells.take() {
                    Some(sh) => (sh, true),
                    None => (
                        shell::Shell::open(&self.docker, &self.container)
                            .await
                            .map_err(|e| self.shell_error(cmd, e))?,
                        false,
                    ),
                };
                match sh.run(cmd).await {
                    Ok(out) => {
                        self.shells.put_back(sh);
                        return Ok(out);
                    }
                    // A kept shell that died since (the host was stopped and
                    // started) ends before the command prints anything: the
                    // command goes to another one.
                    Err(shell::ShellError::Ended { quiet: true, .. }) if reused => continue,
                    // As an exec whose process was killed with the host: it
                    // ended, with no status of its own.
                    Err(shell::ShellError::Ended { partial, .. }) => return Ok(partial),
                    Err(e) => return Err(self.shell_error(cmd, e)),
                }
            }
        };
        match tokio::time::timeout(deadline, run).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                host: self.name.clone(),
                service: "exec".into(),
                what: format!("finish `{cmd}`"),
                waited: deadline,
                logs: String::new(),
            }),
        }
    }

    fn shell_error(&self, cmd: &str, e: shell::ShellError) -> Error {
        match e {
            shell::ShellError::Open(e) => {
                Error::docker(format!("run `{cmd}` on host `{}`", self.name))(e)
            }
            shell::ShellError::Ended { .. } => Error::Io {
                action: format!("run `{cmd}` on host `{}`", self.name),
                source: std::io::Error::other("the engine started its shell detached"),
            },
        }
    }

    /// Runs `sh -c cmd` and returns its standard output; a non-zero exit is an error.
    pub async fn run(&self, cmd: &str) -> Result<String> {
        let out = self.exec(cmd).await?;
        if out.code != 0 {
            return Err(Error::Exec {
                host: self.name.clone(),
                command: cmd.into(),
                code: out.code,
                output: out.combined(),
            });
        }
        Ok(out.stdout)
    }

    /// Writes files into the container (path → (bytes, mode)), making folders as needed.
    pub async fn put_files(&self, files: &[(String, Vec<u8>, u32)]) -> Result<()> {
        let mut archive = tar::Builder::new(Vec::new());
        for (path, bytes, mode) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(*mode);
            header.set_mtime(0);
            header.set_cksum();
            archive
                .append_data(&mut header, path.trim_start_matches('/'), bytes.as_slice())
                .map_err(Error::io(format!("pack files for host `{}`", self.name)))?;
        }
        let archive = archive
            .into_inner()
            .map_err(Error::io(format!("pack files for host `{}`", self.name)))?;
        let opts = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker
            .upload_to_container(&self.container, Some(opts), body_full(archive.into()))
            .await
            .map_err(Error::docker(format!("copy files to host `{}`", self.name)))
    }

    /// The last `n` lines of each file, headed by its name; missing files say so.
    pub async fn tail(&self, files: &[String], n: usize) -> String {
        let mut out = String::new();
        for f in files {
            let cmd = format!("tail -n {n} {f} 2>&1");
            match self.exec_within(&cmd, Duration::from_secs(10)).await {
                Ok(o) => out.push_str(&format!("--- {}:{f}\n{}", self.name, o.combined())),
                Err(e) => out.push_str(&format!("--- {}:{f}: {e}\n", self.name)),
            }
        }
        out
    }

    /// Takes every network interface but loopback down (hosts run with
    /// NET_ADMIN). Best effort: a host whose exec fails is stopped all the same.
    async fn go_silent(&self) {
        let down =
            "for i in $(ls /sys/class/net); do [ \"$i\" = lo ] || ip link set \"$i\" down; done";
        if let Err(e) = self.exec_within(down, Duration::from_secs(5)).await {
            tracing::debug!(host = %self.name, "interfaces not taken down before the stop: {e}");
        }
    }

    /// Stops the whole host (SIGTERM, then SIGKILL after 2 s): the server is
    /// off. Its network interfaces go down first, as a server that loses
    /// power goes silent at once: a stopped container's network namespace
    /// outlives its processes (150 ms measured here, more under load) with
    /// its addresses, a VIP among them, still answering connections with
    /// resets and ARP requests for them, which no failed server does (a
    /// failover over a TCP engine counted 1.8 s of resets and timeouts as
    /// its outage while the backup held the VIP).
    pub async fn stop(&self) -> Result<()> {
        self.go_silent().await;
        self.shells.close_all();
        let opts = StopContainerOptionsBuilder::new().t(2).build();
        self.docker
            .stop_container(&self.container, Some(opts))
            .await
            .map_err(Error::docker(format!("stop host `{}`", self.name)))
    }

    /// Kills the whole host at once (power cut): silent first, as [`Host::stop`].
    pub async fn kill(&self) -> Result<()> {
        self.go_silent().await;
        self.shells.close_all();
        let opts = KillContainerOptionsBuilder::new().signal("KILL").build();
        self.docker
            .kill_container(&self.container, Some(opts))
            .await
            .map_err(Error::docker(format!("kill host `{}`", self.name)))
    }

    /// Starts a stopped host again (its services are the caller's to start).
    pub async fn start(&self) -> Result<()> {
        self.docker
            .start_container(&self.container, None::<StartContainerOptions>)
            .await
            .map_err(Error::docker(format!("start host `{}`", self.name)))
    }

    /// Removes the host (a host added at run time, when its claim is done).
    pub async fn remove(&self) -> Result<()> {
        use testcontainers::bollard::query_parameters::RemoveContainerOptionsBuilder;
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        self.docker
            .remove_container(&self.container, Some(opts))
            .await
            .map_err(Error::docker(format!("remove host `{}`", self.name)))
    }

    /// Whether the container is running.
    pub async fn is_running(&self) -> Result<bool> {
        let info = self
            .docker
            .inspect_container(&self.container, None)
            .await
            .map_err(Error::docker(format!("inspect host `{}`", self.name)))?;
        Ok(info.state.and_then(|s| s.running).unwrap_or(false))
    }

    /// Resident memory of the host as the engine counts it, in bytes.
    pub async fn memory_bytes(&self) -> Result<u64> {
        use testcontainers::bollard::query_parameters::StatsOptionsBuilder;
        let opts = StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stats = self.docker.stats(&self.container, Some(opts));
        let s = stats
            .next()
            .await
            .transpose()
            .map_err(Error::docker(format!(
                "read memory of host `{}`",
                self.name
            )))?;
        Ok(s.and_then(|s| s.memory_stats)
            .and_then(|m| m.usage)
            .unwrap_or(0))
    }
}
