//! A mutant laid on a running stack of its design instead of a fresh start.
//!
//! It is only done when it gives what a fresh start of the mutant would:
//! the mutant changes nothing but what services install (their files, the
//! app, as rendered with the design's variables), the DNS zone's records
//! and a variant's files (a claim that starts the variant takes it from
//! the laid fixtures), and no service it touches has a one-time `init` (a
//! restart would not redo it). The same hosts, networks, services and service
//! definitions; anything else starts fresh. What is compared is the
//! rendered result, file by file, so a changed design variable counts for
//! exactly the services whose files it reaches.

use std::collections::BTreeMap;

use super::Stack;
use super::fault::Undo;
use crate::error::Result;
use crate::fixtures::Fixtures;
use crate::mutant::Mutant;
use crate::spec::Parts;

/// What a mutant changes on a running stack (see [`Stack::in_place`]).
#[derive(Debug)]
pub struct InPlace {
    /// The mutant's fixtures: the design's with its patches.
    fixtures: Fixtures,
    /// The design variables it changes, by the mutant's values.
    overrides: BTreeMap<String, String>,
    /// The (host, service) pairs whose rendered files differ, in design order.
    users: Vec<(String, String)>,
    /// The zone as the mutant renders it, when its records differ.
    zone: Option<String>,
    /// The variant files it patches (a claim starts the variant beside).
    variants: Vec<String>,
}

impl InPlace {
    /// What it changes, in a few words: "nginx on web-1; the DNS zone".
    pub fn words(&self) -> String {
        let mut parts: Vec<String> = self
            .users
            .iter()
            .map(|(h, s)| format!("{s} on {h}"))
            .collect();
        if self.zone.is_some() {
            parts.push("the DNS zone".into());
        }
        parts.extend(
            self.variants
                .iter()
                .map(|f| format!("{f}, for a variant a claim starts")),
        );
        parts.join(", ")
    }
}

/// Whether a mutant's files (`theirs`) keep the design's topology: the
/// same networks, hosts, services and service definitions, and every
/// design variable (values may differ). Only such a mutant may run on a
/// running stack; [`Stack::in_place`] decides the rest on the stack.
pub fn same_topology(
    spec: &crate::spec::DesignSpec,
    services: &BTreeMap<String, crate::spec::ServiceSpec>,
    theirs: &Parts,
) -> bool {
    let (mut a, mut b) = (spec.clone(), theirs.spec.clone());
    let (ours, their_vars) = (std::mem::take(&mut a.vars), std::mem::take(&mut b.vars));
    a == b && *services == theirs.services && ours.keys().all(|k| their_vars.contains_key(k))
}

impl Stack {
    /// How this running stack can take `mutant` (whose fixtures, the
    /// design's with the mutant laid on, are `fixtures`), or `None` when only
    /// a fresh start gives what the mutant is.
    pub async fn in_place(&self, mutant: &Mutant, fixtures: Fixtures) -> Result<Option<InPlace>> {
        let Some(patched) = mutant.patched_files() else {
            return Ok(None);
        };
        let parts = Parts::read(&fixtures)?;
        if !same_topology(&self.spec, &self.services, &parts) {
            return Ok(None);
        }
        let overrides: BTreeMap<String, String> = parts
            .spec
            .vars
            .iter()
            .filter(|(k, v)| self.spec.vars.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // A patched file must be one a service installs, the zone, or a
        // variant's (a claim starts the variant from the laid fixtures):
        // any other (a health-check file a claim reads) only a fresh start has.
        let mut variants = false;
        for file in &patched {
            let installed = self.services.values().any(|s| s.installs(file));
            let variant = file.starts_with("variants/");
            variants |= variant;
            if !installed && !variant && *file != self.spec.zone {
                return Ok(None);
            }
        }
        // A changed variable must reach only services' files and the zone:
        // claims and their files read the run's variables as they are.
        if !overrides.is_empty() && self.other_design_files_use(&fixtures, &overrides)? {
            return Ok(None);
        }
        let mut users = Vec::new();
        for h in &self.spec.hosts {
            let host = self.host(&h.name)?;
            let ours = self.vars_for(host, Some(h), &BTreeMap::new()).await?;
            let theirs = self.vars_for(host, Some(h), &overrides).await?;
            for service in &h.services {
                let before = self.service_files(&self.fixtures, &h.name, service, &ours)?;
                let after = self.service_files(&fixtures, &h.name, service, &theirs)?;
                if before != after {
                    if self.service(service)?.init.is_some() {
                        return Ok(None);
                    }
                    users.push((h.name.clone(), service.clone()));
                }
            }
        }
        let zone_file = fixtures.path(&self.spec.zone)?;
        let mut zone_vars = self.vars.clone();
        for (k, v) in &overrides {
            zone_vars.insert(
                k.clone(),
                crate::fixtures::render(v, &self.vars, &zone_file)?,
            );
        }
        let their_zone = crate::fixtures::render(&parts.zone_text, &zone_vars, &zone_file)?;
        let our_zone = {
            let (file, text) = self.fixtures.read(&self.spec.zone)?;
            crate::fixtures::render(&text, &self.vars, &file)?
        };
        let zone = (their_zone != our_zone).then_some(their_zone);
        // A mutant that changes nothing here proves nothing here: fresh.
        if users.is_empty() && zone.is_none() && !variants {
            return Ok(None);
        }
        Ok(Some(InPlace {
            fixtures,
            overrides,
            users,
            zone,
            variants: patched
                .into_iter()
                .filter(|f| f.starts_with("variants/"))
                .collect(),
        }))
    }

    /// Whether a design file other than the design and the zone (a claims
    /// file, a health-check file) names one of `vars` as a placeholder.
    fn other_design_files_use(
        &self,
        fixtures: &Fixtures,
        vars: &BTreeMap<String, String>,
    ) -> Result<bool> {
        // Every layer but the shared library: the design's folder, overlays.
        let dirs = fixtures.layers().iter().skip(1);
        for e in dirs
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.path().is_file() || name == crate::spec::DESIGN_FILE || name == self.spec.zone {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if crate::fixtures::placeholders(&text).any(|p| vars.contains_key(p)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Lays `mutant` on the stack: its files installed and their services
    /// restarted, its zone served; undone like a fault (registered first,
    /// so a file a server refuses is put back too).
    pub(super) async fn lay(&self, mutant: &InPlace) -> Result<u64> {
        let zone = match &mutant.zone {
            Some(_) => Some(self.dns.snapshot().await),
            None => None,
        };
        let id = self.register(Undo::Mutant(mutant.users.clone(), zone));
        if let Some(text) = &mutant.zone {
            let file = mutant.fixtures.path(&self.spec.zone)?;
            self.dns.load_zone(text, &file).await?;
        }
        *self.laid.lock().expect("laid lock") =
            Some((mutant.fixtures.clone(), mutant.overrides.clone()));
        self.restart_with(&mutant.fixtures, &mutant.users, &mutant.overrides)
            .await?;
        Ok(id)
    }
}
