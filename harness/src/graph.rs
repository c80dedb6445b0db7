//! The topology of a design, drawn from the design itself (never a
//! hand-made picture): hosts with their services, the networks they are
//! on, the VIP a keepalived pair holds, and the site's name. As Mermaid
//! (GitHub renders it) or Graphviz DOT; coloured by verdict when a run's
//! outcomes are given (a host is red when a claim concerning it failed,
//! amber when one could not be measured, green when all held).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::claim::{Outcome, Verdict};
use crate::design::Design;

/// How the claims concerning one host came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Every claim concerning it held.
    Held,
    /// One could not be measured.
    NotMeasured,
    /// One failed.
    Broken,
}

impl Health {
    fn colour(self) -> (&'static str, &'static str) {
        match self {
            Health::Held => ("#d4edda", "#1e7e34"),
            Health::NotMeasured => ("#fff3cd", "#b8860b"),
            Health::Broken => ("#f8d7da", "#c82333"),
        }
    }
}

/// Each host's health from `outcomes` (worst wins; hosts no claim concerns are left out).
pub fn health(design: &Design, outcomes: &[Outcome]) -> BTreeMap<String, Health> {
    let mut out: BTreeMap<String, Health> = BTreeMap::new();
    for o in outcomes {
        let h = match o.verdict {
            Verdict::Pass => Health::Held,
            Verdict::Fail(_) | Verdict::Flaky(_) => Health::Broken,
            Verdict::Error(_) => Health::NotMeasured,
            Verdict::Skip(_) => continue,
        };
        let Some(c) = design.claims.iter().find(|c| c.id == o.id) else {
            continue;
        };
        for host in &c.hosts {
            let e = out.entry(host.clone()).or_insert(h);
            *e = (*e).max(h);
        }
    }
    out
}

fn id(name: &str) -> String {
    name.replace(['-', '.'], "_")
}

fn has_vip(design: &Design) -> Vec<&str> {
    design
        .spec
        .hosts
        .iter()
        .filter(|h| h.services.iter().any(|s| s == "keepalived"))
        .map(|h| h.name.as_str())
        .collect()
}

/// The topology as a Mermaid flowchart.
pub fn mermaid(design: &Design, health: &BTreeMap<String, Health>) -> String {
    let mut m = String::from("flowchart LR\n");
    let _ = writeln!(
        m,
        "  client([client]) --> www[/www.{}/]",
        crate::stack::ZONE
    );
    for n in &design.spec.networks {
        let _ = writeln!(m, "  net_{}{{{{{} network}}}}", id(&n.name), n.name);
    }
    let first = &design.spec.networks[0].name;
    let lbs = has_vip(design);
    if lbs.is_empty() {
        let _ = writeln!(m, "  www --> net_{}", id(first));
    } else {
        let _ = writeln!(m, "  www --> vip((VIP {first}.vip))");
        for lb in &lbs {
            let _ = writeln!(m, "  vip -.-> {}", id(lb));
        }
    }
    for h in &design.spec.hosts {
        let _ = writeln!(
            m,
            "  {}[\"<b>{}</b><br/>{}\"]",
            id(&h.name),
            h.name,
            h.services.join("<br/>")
        );
        for n in &h.networks {
            let _ = writeln!(m, "  net_{} --- {}", id(n), id(&h.name));
        }
    }
    for (host, hl) in health {
        let (fill, stroke) = hl.colour();
        let _ = writeln!(
            m,
            "  style {} fill:{fill},stroke:{stroke},stroke-width:2px",
            id(host)
        );
    }
    m
}

/// The topology as Graphviz DOT.
pub fn dot(design: &Design, health: &BTreeMap<String, Health>) -> String {
    let mut d = format!(
        "graph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"sans-serif\"];\n",
        design.name
    );
    let _ = writeln!(
        d,
        "  client [shape=oval];\n  www [label=\"www.{}\", shape=parallelogram];\n  client -- www;",
        crate::stack::ZONE
    );
    for n in &design.spec.networks {
        let _ = writeln!(
            d,
            "  net_{} [label=\"{} network\", shape=hexagon];",
            id(&n.name),
            n.name
        );
    }
    let lbs = has_vip(design);
    if lbs.is_empty() {
        let _ = writeln!(d, "  www -- net_{};", id(&design.spec.networks[0].name));
    } else {
        let _ = writeln!(d, "  vip [label=\"VIP\", shape=circle];\n  www -- vip;");
        for lb in &lbs {
            let _ = writeln!(d, "  vip -- {} [style=dashed];", id(lb));
        }
    }
    for h in &design.spec.hosts {
        let (fill, stroke) = health
            .get(&h.name)
            .map(|x| x.colour())
            .unwrap_or(("#ffffff", "#555555"));
        let _ = writeln!(
            d,
            "  {} [label=\"{}\\n{}\", fillcolor=\"{fill}\", color=\"{stroke}\"];",
            id(&h.name),
            h.name,
            h.services.join("\\n")
        );
        for n in &h.networks {
            let _ = writeln!(d, "  net_{} -- {};", id(n), id(&h.name));
        }
    }
    d.push_str("}\n");
    d
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_design_draws_every_host_and_network() {
        for name in crate::design::builtin_names() {
            let d = crate::design::Design::load(&name).unwrap();
            let m = super::mermaid(&d, &Default::default());
            let g = super::dot(&d, &Default::default());
            for h in &d.spec.hosts {
                assert!(m.contains(&format!("<b>{}</b>", h.name)), "{name}: {m}");
                assert!(g.contains(&format!("label=\"{}\\n", h.name)), "{name}: {g}");
            }
            for n in &d.spec.networks {
                assert!(m.contains(&format!("{} network", n.name)), "{name}: {m}");
            }
        }
        let scale = crate::design::Design::load("scale_up").unwrap();
        assert!(super::mermaid(&scale, &Default::default()).contains("vip -.-> lb_1"));
    }
}
