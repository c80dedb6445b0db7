//! Networks the run creates: `internal` bridges with their own small subnets.
//!
//! The engine's default address pools run out when many networks are made,
//! and two parallel runs must never overlap, so each network gets a /24
//! picked at random from 172.28.0.0/14 and retried on overlap. Addresses are
//! assigned by us, not by the engine: hosts from .10 up, virtual addresses
//! (VIPs) from .200 up, so a host keeps its address across a stop and start.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use testcontainers::bollard::Docker;
use testcontainers::bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};

use crate::docker::RunId;
use crate::error::{Error, Result};

/// First host address in each subnet (.1 is the gateway: this machine).
pub const FIRST_HOST: u8 = 10;
/// First virtual address (VIP) in each subnet.
pub const FIRST_VIP: u8 = 200;
/// How many random subnets to try before giving up.
const SUBNET_TRIES: usize = 40;

/// A network of the run. Removal is the run's job ([`crate::docker::RunGuard`]).
#[derive(Debug, Clone)]
pub struct Network {
    /// The design's name for it (`public`, `private`).
    pub name: String,
    /// The engine's name for it (`sp-<run>-public`).
    pub docker_name: String,
    /// The first three octets of its /24.
    pub prefix: [u8; 3],
}

impl Network {
    /// Creates an internal network named `name` for the run.
    pub async fn create(docker: &Docker, run: &RunId, name: &str) -> Result<Network> {
        let docker_name = run.name(name);
        if crate::docker::interrupted() {
            return Err(Error::Io {
                action: format!("create network `{docker_name}`"),
                source: std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"),
            });
        }
        let mut last_err = None;
        for _ in 0..SUBNET_TRIES {
            let prefix = [172, rand::random_range(28..32), rand::random_range(0..=255)];
            let subnet = format!("{}.{}.{}.0/24", prefix[0], prefix[1], prefix[2]);
            let gateway = format!("{}.{}.{}.1", prefix[0], prefix[1], prefix[2]);
            let request = NetworkCreateRequest {
                name: docker_name.clone(),
                driver: Some("bridge".into()),
                internal: Some(true),
                labels: Some(run.labels()),
                ipam: Some(Ipam {
                    config: Some(vec![IpamConfig {
                        subnet: Some(subnet),
                        gateway: Some(gateway),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                options: Some(HashMap::from([(
                    // Containers on it reach each other; the harness reaches them by address.
                    "com.docker.network.bridge.enable_icc".to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            };
            match docker.create_network(request).await {
                Ok(_) => {
                    return Ok(Network {
                        name: name.to_string(),
                        docker_name,
                        prefix,
                    });
                }
                Err(e) if e.to_string().contains("overlap") => last_err = Some(e),
                Err(e) => return Err(Error::docker(format!("create network `{docker_name}`"))(e)),
            }
        }
        Err(Error::docker(format!(
            "find a free subnet for network `{docker_name}` in 172.28.0.0/14"
        ))(last_err.expect("tried at least once")))
    }

    /// The address with last octet `n`.
    pub fn address(&self, n: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], self.prefix[2], n)
    }

    /// The gateway: this machine's own address on this network.
    pub fn gateway(&self) -> Ipv4Addr {
        self.address(1)
    }
}
