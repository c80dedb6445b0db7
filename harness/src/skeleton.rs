//! A run's skeleton: its networks and idle hosts (the probe host too),
//! before any service is installed. The engine takes about 1.2 s to make
//! scale_up's; a process that starts stack after stack (a suite's mutants,
//! `grade`, `mutants`, `bench`) has the next one made while the current
//! one runs its claims ([`Prewarm`]), so a later stack starts with its
//! hosts already there. A spare is labelled as a run of this process like
//! every other resource, and removed when the prewarm ends, on panic
//! (its guard) and on Ctrl-C (the sweep of this process's runs).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use testcontainers::bollard::Docker;

use crate::docker::{RunGuard, RunId};
use crate::error::Result;
use crate::host::Host;
use crate::network::{FIRST_HOST, Network};
use crate::relay::{PROBE_HOST, PROBE_OCTET};
use crate::spec::DesignSpec;

/// What a skeleton must match to serve a design: the same image, traffic
/// mode, networks, and hosts in the same order (addresses follow from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    image: String,
    relayed: bool,
    networks: Vec<String>,
    /// Each host: name, networks (first = main), memory limit in MiB.
    hosts: Vec<(String, Vec<String>, Option<u64>)>,
}

impl Shape {
    pub(crate) fn of(spec: &DesignSpec, image: &str, relayed: bool) -> Shape {
        Shape {
            image: image.to_string(),
            relayed,
            networks: spec.networks.iter().map(|n| n.name.clone()).collect(),
            hosts: spec
                .hosts
                .iter()
                .map(|h| (h.name.clone(), h.networks.clone(), h.memory_mib))
                .collect(),
        }
    }
}

/// A run's networks and started, idle hosts.
#[derive(Debug)]
pub(crate) struct Skeleton {
    pub(crate) run: RunId,
    pub(crate) guard: RunGuard,
    pub(crate) networks: BTreeMap<String, Network>,
    pub(crate) hosts: BTreeMap<String, Host>,
    /// The probe host, when the claims' traffic leaves from a container.
    pub(crate) probe: Option<Host>,
}

/// Creates the networks at once, then every host at once.
async fn create(docker: &Docker, shape: &Shape) -> Result<Skeleton> {
    // Before anything of the run exists: a SIGKILL from here on leaves nothing.
    crate::reaper::ensure(docker, &shape.image).await;
    let run = RunId::new();
    let guard = RunGuard::new(&run);
    // The networks at once: each is a round trip to the engine.
    let creating = shape
        .networks
        .iter()
        .map(|n| Network::create(docker, &run, n));
    let networks: BTreeMap<String, Network> = futures::future::try_join_all(creating)
        .await?
        .into_iter()
        .map(|n| (n.name.clone(), n))
        .collect();
    let creating = shape
        .hosts
        .iter()
        .enumerate()
        .map(|(i, (name, nets, memory))| {
            let octet = FIRST_HOST + u8::try_from(i).expect("fewer than 190 hosts");
            let nets: Vec<(&Network, Ipv4Addr)> = nets
                .iter()
                .map(|n| (&networks[n], networks[n].address(octet)))
                .collect();
            let (run, image) = (&run, &shape.image);
            async move { Host::create(docker, run, image, name, &nets, *memory).await }
        });
    // The probe host: a leg on every network, as this machine's gateways
    // have locally.
    let probing = async {
        if !shape.relayed {
            return Ok(None);
        }
        let nets: Vec<(&Network, Ipv4Addr)> = shape
            .networks
            .iter()
            .map(|n| (&networks[n], networks[n].address(PROBE_OCTET)))
            .collect();
        Host::create(docker, &run, &shape.image, PROBE_HOST, &nets, None)
            .await
            .map(Some)
    };
    let (hosts, probe) =
        futures::future::try_join(futures::future::try_join_all(creating), probing).await?;
    Ok(Skeleton {
        run,
        guard,
        networks,
        hosts: hosts.into_iter().map(|h| (h.name.clone(), h)).collect(),
        probe,
    })
}

/// The next skeleton, being made.
struct Spare {
    shape: Shape,
    making: tokio::task::JoinHandle<Result<Skeleton>>,
}

/// `None`: this process does not prewarm; `Some(None)`: it does, and no
/// spare is being made right now.
static PREWARM: Mutex<Option<Option<Spare>>> = Mutex::new(None);

/// A skeleton of `shape`: the spare when it has that shape (waiting for it
/// if it is still being made), otherwise a new one.
pub(crate) async fn take_or_create(docker: &Docker, shape: &Shape) -> Result<Skeleton> {
    let spare = {
        let mut slot = PREWARM.lock().expect("prewarm lock");
        match slot.as_mut() {
            Some(spare) if spare.as_ref().is_some_and(|s| &s.shape == shape) => spare.take(),
            _ => None,
        }
    };
    let skeleton = match spare {
        Some(spare) => match spare.making.await {
            Ok(Ok(skeleton)) => skeleton,
            // A spare that failed (or was cancelled) is no reason to fail this run.
            Ok(Err(e)) => {
                tracing::debug!("spare skeleton failed: {}", e.chain());
                create(docker, shape).await?
            }
            Err(_) => create(docker, shape).await?,
        },
        None => create(docker, shape).await?,
    };
    Ok(skeleton)
}

/// When prewarming and no spare is being made, starts making one of
/// `shape` in the background. Called once a stack is up: made during its
/// start, the spare slowed that start down (scale_up: services ready in
/// 3.2-3.7 s instead of 2.3 s).
pub(crate) fn make_spare(docker: &Docker, shape: &Shape) {
    let mut slot = PREWARM.lock().expect("prewarm lock");
    if let Some(spare @ None) = slot.as_mut() {
        let (docker, next) = (docker.clone(), shape.clone());
        *spare = Some(Spare {
            shape: shape.clone(),
            making: tokio::spawn(async move { create(&docker, &next).await }),
        });
    }
}

/// While it lives, every stack this process starts has the next one's
/// networks and hosts made meanwhile, in the background, for a design of
/// the same shape. End it with [`Prewarm::finish`], which removes the spare
/// that nobody took; dropping it instead cancels the spare, whose guard
/// then removes what it made.
#[derive(Debug)]
#[must_use = "prewarming lasts as long as the Prewarm; call finish() at the end"]
pub struct Prewarm(());

impl Prewarm {
    /// Starts prewarming (for a process that will start several stacks).
    pub fn start() -> Prewarm {
        *PREWARM.lock().expect("prewarm lock") = Some(None);
        Prewarm(())
    }

    /// Stops prewarming and removes the spare, waiting until it is gone.
    pub async fn finish(self) {
        let spare = take_spare();
        if let Some(spare) = spare {
            spare.making.abort();
            // A spare that was complete comes back here and is dropped:
            // its guard removes it before this returns.
            drop(spare.making.await);
        }
    }
}

impl Drop for Prewarm {
    fn drop(&mut self) {
        if let Some(spare) = take_spare() {
            spare.making.abort();
        }
    }
}

fn take_spare() -> Option<Spare> {
    PREWARM.lock().expect("prewarm lock").take().flatten()
}
