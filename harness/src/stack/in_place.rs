//! A mutant, or a user's files (a graded submission), laid on a running
//! stack of its design instead of a fresh start: a mutant as a fault each
//! claim undoes, a submission as the base every claim starts from.
//!
//! It is only done when it gives what a fresh start would:
//! the files change nothing but what services install (their files, the
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
        let laid = match self.taking(&patched, fixtures).await? {
            Ok(laid) => laid,
            Err(_) => return Ok(None),
        };
        // A mutant that changes nothing here proves nothing here: fresh.
        if laid.users.is_empty() && laid.zone.is_none() && laid.variants.is_empty() {
            return Ok(None);
        }
        Ok(Some(laid))
    }

    /// How this running stack can take `fixtures` (the design's with the
    /// files `changed` replaced: a mutant's patches, a user's mapped files),
    /// or, as `Err`, why only a fresh start gives what they are.
    pub async fn taking(
        &self,
        changed: &[String],
        fixtures: Fixtures,
    ) -> Result<std::result::Result<InPlace, String>> {
        let parts = Parts::read(&fixtures)?;
        if !same_topology(&self.spec, &self.services, &parts) {
            return Ok(Err(
                "its files change the design's hosts, networks or service definitions".into(),
            ));
        }
        let overrides: BTreeMap<String, String> = parts
            .spec
            .vars
            .iter()
            .filter(|(k, v)| self.spec.vars.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // A changed file must be one a service installs (a host's own copy
        // counts as the file it stands for), the zone, or a variant's (a
        // claim starts the variant from the laid fixtures): any other (a
        // health-check file a claim reads) only a fresh start has.
        for file in changed {
            let shared = match file.strip_prefix("hosts/") {
                Some(rest) => rest.split_once('/').map_or(rest, |(_, r)| r),
                None => file.as_str(),
            };
            let installed = self.services.values().any(|s| s.installs(shared));
            if !installed && !shared.starts_with("variants/") && shared != self.spec.zone {
                return Ok(Err(format!(
                    "{file} is read by the run itself, not installed by a service"
                )));
            }
        }
        // A changed variable must reach only services' files and the zone:
        // claims and their files read the run's variables as they are.
        if !overrides.is_empty() && self.other_design_files_use(&fixtures, &overrides)? {
            return Ok(Err(
                "it changes a design variable that files other than the services' read".into(),
            ));
        }
        let mut users = Vec::new();
        for h in &self.spec.hosts {
            let host = self.host(&h.name)?;
            let ours = self.vars_for(host, Some(h), &BTreeMap::new()).await?;
            let theirs = self.vars_for(host, Some(h), &overrides).await?;
            for service in &h.services {
                let before = self.service_files(&self.fixtures, &h.name, service, &ours)?;
                let after = self.service_files(&fixtures, &h.name, service, &theirs)?;
                if before == after {
                    continue;
                }
                let spec = self.service(service)?;
                if spec.init.is_some() {
                    return Ok(Err(format!(
                        "{service} on {} has a one-time init, which a restart would not redo",
                        h.name
                    )));
                }
                if let Some(why) = kernel_state_left(service, &spec.processes, &before, &after) {
                    return Ok(Err(format!("{why} on {}", h.name)));
                }
                users.push((h.name.clone(), service.clone()));
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
        Ok(Ok(InPlace {
            fixtures,
            overrides,
            users,
            zone,
            variants: changed
                .iter()
                .filter(|f| f.starts_with("variants/"))
                .cloned()
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

    /// Lays `files` (a user's, see [`Stack::taking`]) on the stack as the
    /// base every claim starts from until [`Stack::unlay_base`]: unlike a
    /// mutant's, never undone with a claim's faults. What a fresh start of
    /// them would have said is the stack's notes meanwhile (servers that
    /// did not settle, lint, the servers' warnings), and their zone is the
    /// one claims must leave as they found it. An error (a file the server
    /// refuses) leaves them laid: unlay them.
    pub async fn lay_base(&self, files: &InPlace) -> Result<()> {
        let design_zone = match &files.zone {
            Some(_) => Some(self.dns.snapshot().await),
            None => None,
        };
        *self.base.lock().expect("base lock") = Some(Base {
            users: files.users.clone(),
            design_zone,
            zone: None,
            notes: Vec::new(),
        });
        self.never_settled
            .lock()
            .expect("never_settled lock")
            .clear();
        self.check_warnings.lock().expect("not poisoned").clear();
        if let Some(text) = &files.zone {
            let file = files.fixtures.path(&self.spec.zone)?;
            self.dns.load_zone(text, &file).await?;
            let laid_zone = self.dns.snapshot().await;
            if let Some(base) = &mut *self.base.lock().expect("base lock") {
                base.zone = Some(laid_zone);
            }
        }
        *self.laid.lock().expect("laid lock") =
            Some((files.fixtures.clone(), files.overrides.clone()));
        let mut notes = self
            .restart_with(&files.fixtures, &files.users, &files.overrides)
            .await?;
        notes.extend(self.lint().await);
        notes.extend(std::mem::take(
            &mut *self.check_warnings.lock().expect("not poisoned"),
        ));
        if let Some(base) = &mut *self.base.lock().expect("base lock") {
            base.notes = notes;
        }
        Ok(())
    }

    /// Puts the design's files back where [`Stack::lay_base`] laid a
    /// user's (and the design's zone); a stack that cannot be put back is
    /// tainted, for its owner to discard.
    pub async fn unlay_base(&self) -> Result<()> {
        let Some(base) = self.base.lock().expect("base lock").take() else {
            return Ok(());
        };
        *self.laid.lock().expect("laid lock") = None;
        self.never_settled
            .lock()
            .expect("never_settled lock")
            .clear();
        if let Some(zone) = &base.design_zone {
            self.dns.put_back(zone).await;
        }
        let restarted = self
            .restart_with(&self.fixtures, &base.users, &BTreeMap::new())
            .await;
        self.check_warnings.lock().expect("not poisoned").clear();
        if restarted.is_err() {
            self.taint();
        }
        restarted.map(drop)
    }

    /// Whether a user's files are laid as the stack's base.
    pub fn has_base(&self) -> bool {
        self.base.lock().expect("base lock").is_some()
    }

    /// The zone claims must leave as they found it: a laid base's, or the design's.
    pub(crate) fn zone_at_rest(&self) -> crate::dns::ZoneSnapshot {
        self.base
            .lock()
            .expect("base lock")
            .as_ref()
            .and_then(|b| b.zone.clone())
            .unwrap_or_else(|| self.design_zone.clone())
    }

    /// What the servers said as they started: a laid base's (what a fresh
    /// start of its files would have said), or the stack's own.
    pub fn notes_now(&self) -> Vec<String> {
        match &*self.base.lock().expect("base lock") {
            Some(base) => base.notes.clone(),
            None => self.notes.clone(),
        }
    }
}

/// A user's files laid as a stack's base (see [`Stack::lay_base`]).
#[derive(Debug)]
pub(crate) struct Base {
    /// The (host, service) pairs restarted with them.
    users: Vec<(String, String)>,
    /// The design's zone, when theirs differs.
    design_zone: Option<crate::dns::ZoneSnapshot>,
    /// Their zone, once loaded.
    zone: Option<crate::dns::ZoneSnapshot>,
    /// What a fresh start of their files would have said.
    notes: Vec<String>,
}

/// Why a service whose state lives in the kernel (no process: firewall
/// rules) cannot take `after` in place, if it cannot. It is put back by
/// its stop and the design's start, and `iptables-restore` replaces only
/// the tables its input names (`*filter`): rules in a table only `after`
/// names (`*nat`) would outlive the design's restart.
fn kernel_state_left(
    service: &str,
    processes: &[String],
    before: &[(String, Vec<u8>, u32)],
    after: &[(String, Vec<u8>, u32)],
) -> Option<String> {
    if !processes.is_empty() {
        return None;
    }
    let tables = |files: &[(String, Vec<u8>, u32)]| -> std::collections::BTreeSet<String> {
        files
            .iter()
            .flat_map(|(_, bytes, _)| {
                String::from_utf8_lossy(bytes)
                    .lines()
                    .filter_map(|l| l.trim().strip_prefix('*').map(|t| t.trim().to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let extra: Vec<String> = tables(after)
        .difference(&tables(before))
        .map(|t| format!("*{t}"))
        .collect();
    (!extra.is_empty()).then(|| {
        format!(
            "{service}'s rules fill {}, which the design's rules do not name, so restarting with the design's would leave them behind",
            extra.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn firewall_rules_in_a_table_the_design_leaves_alone_keep_a_submission_off_a_running_stack() {
        let file = |text: &str| vec![("/etc/x".to_string(), text.as_bytes().to_vec(), 0o644)];
        let design = file("*filter\n:INPUT DROP [0:0]\nCOMMIT\n");
        let theirs = file("*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n");
        let nat = file("*filter\nCOMMIT\n*nat\n-A PREROUTING -j DNAT\nCOMMIT\n");
        let fw = "firewall-server";
        assert_eq!(super::kernel_state_left(fw, &[], &design, &theirs), None);
        let why = super::kernel_state_left(fw, &[], &design, &nat).unwrap();
        assert!(why.contains("*nat"), "{why}");
        // A service with processes is put back by its restart, whatever its files say.
        assert_eq!(
            super::kernel_state_left("haproxy", &["haproxy".into()], &design, &nat),
            None
        );
    }
}
