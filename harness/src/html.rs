//! The HTML report: one self-contained file (inline SVG, CSS and a few
//! lines of script, nothing fetched), readable offline and attachable as a
//! CI artifact. The topology is drawn from the design itself, each host
//! coloured by the claims that concern it; hovering a claim highlights its
//! hosts; every claim that probed through a fault gets a timeline (each
//! request a point: when it was sent, how long it took, whether it was
//! answered; the fault's window shaded, the budget drawn, the recovery
//! marked). SVG is built with the `svg` crate, which escapes text, so no
//! markup is assembled by hand where a crate does it better.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use svg::Document;
use svg::node::element::{Circle, Group, Line, Rectangle, Text, Title};

use crate::claim::{Timeline, Verdict};
use crate::design::Design;
use crate::graph::{Health, health};
use crate::report::{RunReport, strip_ansi};

/// Escapes text for HTML.
/// `s` escaped for HTML text and attributes.
pub fn esc(s: &str) -> String {
    strip_ansi(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fill(h: Option<&Health>) -> (&'static str, &'static str) {
    match h {
        Some(Health::Held) => ("#d4edda", "#1e7e34"),
        Some(Health::NotMeasured) => ("#fff3cd", "#b8860b"),
        Some(Health::Broken) => ("#f8d7da", "#c82333"),
        None => ("#ffffff", "#6c757d"),
    }
}

/// The topology: networks as bands, hosts as boxes under them, a line from
/// each host to every network it is on; the client and the site's name on
/// the left; the VIP on the first network when a keepalived pair holds one.
pub fn topology(design: &Design, health: &BTreeMap<String, Health>) -> String {
    topology_doc(design, health).to_string()
}

/// The topology as a standalone SVG file (its own style inside), for `stackproof graph --format svg`.
pub fn topology_standalone(design: &Design, health: &BTreeMap<String, Health>) -> String {
    let css: String = STYLE
        .lines()
        .filter(|l| l.starts_with("svg "))
        .map(|l| l.replace("svg .", "."))
        .collect::<Vec<_>>()
        .join("\n");
    topology_doc(design, health)
        .add(svg::node::element::Style::new(format!(
            "{css}\ntext{{font-family:sans-serif}}"
        )))
        .to_string()
}

fn topology_doc(design: &Design, health: &BTreeMap<String, Health>) -> Document {
    let hosts = &design.spec.hosts;
    let nets = &design.spec.networks;
    let (box_w, gap, left) = (150.0, 20.0, 190.0);
    let width = left + hosts.len() as f64 * (box_w + gap) + 20.0;
    let band_y = |i: usize| 40.0 + i as f64 * 44.0;
    let hosts_y = band_y(nets.len()) + 30.0;
    let tallest = hosts.iter().map(|h| h.services.len()).max().unwrap_or(1) as f64;
    let height = hosts_y + 36.0 + tallest * 15.0 + 20.0;
    let mut doc = Document::new()
        .set("viewBox", (0, 0, width as i64, height as i64))
        .set("width", width as i64)
        .set("class", "topology")
        .set("role", "img");
    for (i, n) in nets.iter().enumerate() {
        doc = doc
            .add(
                Rectangle::new()
                    .set("x", left - 10.0)
                    .set("y", band_y(i))
                    .set("width", width - left - 10.0)
                    .set("height", 24)
                    .set("rx", 12)
                    .set("class", "net"),
            )
            .add(
                Text::new(format!("{} network", n.name))
                    .set("x", left)
                    .set("y", band_y(i) + 16.0)
                    .set("class", "netlabel"),
            );
    }
    // The client and the name it asks for.
    doc = doc
        .add(
            Rectangle::new()
                .set("x", 10)
                .set("y", band_y(0) - 4.0)
                .set("width", 150)
                .set("height", 32)
                .set("rx", 16)
                .set("class", "client"),
        )
        .add(
            Text::new(format!("client → www.{}", crate::stack::ZONE))
                .set("x", 20)
                .set("y", band_y(0) + 16.0)
                .set("class", "small"),
        );
    let lbs: Vec<&str> = hosts
        .iter()
        .filter(|h| h.services.iter().any(|s| s == "keepalived"))
        .map(|h| h.name.as_str())
        .collect();
    let x_of = |i: usize| left + i as f64 * (box_w + gap);
    for (i, h) in hosts.iter().enumerate() {
        let x = x_of(i);
        let (bg, stroke) = fill(health.get(&h.name));
        let mut g = Group::new()
            .set("class", "host")
            .set("data-host", h.name.clone())
            .add(Title::new(format!("{}: {}", h.name, h.services.join(", "))));
        for n in &h.networks {
            if let Some(ni) = nets.iter().position(|x| &x.name == n) {
                let mut link = Line::new()
                    .set("x1", x + box_w / 2.0)
                    .set("y1", band_y(ni) + 24.0)
                    .set("x2", x + box_w / 2.0)
                    .set("y2", hosts_y)
                    .set("class", "link");
                // A link takes its host's colour once a claim concerns the host.
                if health.contains_key(&h.name) {
                    link = link.set("style", format!("stroke:{stroke}"));
                }
                g = g.add(link);
            }
        }
        g = g
            .add(
                Rectangle::new()
                    .set("x", x)
                    .set("y", hosts_y)
                    .set("width", box_w)
                    .set("height", 30.0 + h.services.len() as f64 * 15.0)
                    .set("rx", 8)
                    .set("fill", bg)
                    .set("stroke", stroke)
                    .set("stroke-width", 2),
            )
            .add(
                Text::new(h.name.clone())
                    .set("x", x + 10.0)
                    .set("y", hosts_y + 20.0)
                    .set("class", "hostname"),
            );
        for (k, s) in h.services.iter().enumerate() {
            g = g.add(
                Text::new(s.clone())
                    .set("x", x + 10.0)
                    .set("y", hosts_y + 38.0 + k as f64 * 15.0)
                    .set("class", "small"),
            );
        }
        doc = doc.add(g);
    }
    if !lbs.is_empty() {
        let xs: Vec<f64> = lbs
            .iter()
            .filter_map(|lb| hosts.iter().position(|h| h.name == *lb))
            .map(|i| x_of(i) + box_w / 2.0)
            .collect();
        let cx = xs.iter().sum::<f64>() / xs.len() as f64;
        doc = doc
            .add(
                Circle::new()
                    .set("cx", cx)
                    .set("cy", band_y(0) + 12.0)
                    .set("r", 14)
                    .set("class", "vip"),
            )
            .add(
                Text::new("VIP")
                    .set("x", cx - 10.0)
                    .set("y", band_y(0) + 16.0)
                    .set("class", "small"),
            );
    }
    doc
}

/// One fault's timeline: requests as points (x: when sent, y: how long it
/// took; green answered, red not), the fault's window shaded, the budget as
/// a dashed line, the recovery (first answer after the last failure) marked.
pub fn timeline(t: &Timeline) -> String {
    let (w, h, pad) = (640.0, 150.0, 36.0);
    let end = t
        .samples
        .iter()
        .map(|s| s.0 + s.1)
        .fold(t.fault.1, f64::max)
        .max(1.0);
    let slowest = t
        .samples
        .iter()
        .map(|s| s.1)
        .fold(10.0, f64::max)
        .min(5000.0);
    let x = |ms: f64| pad + ms / end * (w - 2.0 * pad);
    let y = |ms: f64| h - pad - ms.min(slowest) / slowest * (h - 2.0 * pad);
    let mut doc = Document::new()
        .set("viewBox", (0, 0, w as i64, h as i64))
        .set("class", "timeline")
        .add(
            Rectangle::new()
                .set("x", x(t.fault.0))
                .set("y", pad - 10.0)
                .set("width", (x(t.fault.1) - x(t.fault.0)).max(1.0))
                .set("height", h - 2.0 * pad + 10.0)
                .set("class", "fault")
                .add(Title::new(format!(
                    "fault: {:.0} ms to {:.0} ms",
                    t.fault.0, t.fault.1
                ))),
        )
        .add(
            Text::new(t.name.clone())
                .set("x", x(t.fault.0) + 4.0)
                .set("y", pad - 14.0)
                .set("class", "small"),
        )
        .add(
            Line::new()
                .set("x1", pad)
                .set("y1", h - pad)
                .set("x2", w - pad)
                .set("y2", h - pad)
                .set("class", "axis"),
        )
        .add(
            Text::new("0")
                .set("x", pad)
                .set("y", h - pad + 14.0)
                .set("class", "small"),
        )
        .add(
            Text::new(format!("{end:.0} ms"))
                .set("x", w - pad - 40.0)
                .set("y", h - pad + 14.0)
                .set("class", "small"),
        )
        .add(
            Text::new(format!("{slowest:.0} ms"))
                .set("x", 2)
                .set("y", pad)
                .set("class", "small"),
        )
        .add(
            Text::new("answer time")
                .set("x", 2)
                .set("y", pad + 12.0)
                .set("class", "small"),
        );
    // A dashed vertical line across the plot with its label: the budget, the
    // recovery ("back"), and each mark ("VIP moved after 146 ms").
    let vline = |doc: Document, at: f64, class: &str, label: String, label_y: f64| {
        let vx = x(at);
        doc.add(
            Line::new()
                .set("x1", vx)
                .set("y1", pad - 10.0)
                .set("x2", vx)
                .set("y2", h - pad)
                .set("class", class),
        )
        .add(
            Text::new(label)
                .set("x", vx + 3.0)
                .set("y", label_y)
                .set("class", "small"),
        )
    };
    if let Some(b) = t.budget_ms {
        doc = vline(
            doc,
            t.fault.0 + b,
            "budget",
            format!("budget {b:.0} ms"),
            h - pad - 4.0,
        );
    }
    if let Some(last_bad) = t.samples.iter().rposition(|s| !s.2)
        && let Some(back) = t.samples.get(last_bad + 1)
    {
        doc = vline(doc, back.0, "back", "back".into(), pad);
    }
    for (k, (at, what)) in t.marks.iter().enumerate() {
        let label = format!("{what} ({:.0} ms)", at - t.fault.0);
        doc = vline(doc, *at, "mark", label, pad + 12.0 + 12.0 * k as f64);
    }
    for s in &t.samples {
        doc = doc.add(
            Circle::new()
                .set("cx", x(s.0))
                .set("cy", y(s.1))
                .set("r", 2.5)
                .set("class", if s.2 { "ok" } else { "bad" })
                .add(Title::new(format!(
                    "sent at {:.0} ms, {} after {:.0} ms",
                    s.0,
                    if s.2 { "answered" } else { "FAILED" },
                    s.1
                ))),
        );
    }
    doc.to_string()
}

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:24px;color:#212529;max-width:1200px}
h1{font-size:1.4em;margin-bottom:4px} .facts{color:#555;margin-bottom:16px}
.sum span{display:inline-block;padding:2px 10px;border-radius:10px;margin-right:6px;font-weight:600}
.PASS{background:#d4edda;color:#1e7e34}.FAIL{background:#f8d7da;color:#c82333}.FLAKY{background:#fde2c8;color:#a04a00}
.ERROR{background:#fff3cd;color:#8a6d00}.SKIP{background:#e2e3e5;color:#41464b}
svg.topology{max-width:100%;height:auto;border:1px solid #dee2e6;border-radius:8px;background:#fcfcfd}
svg .net{fill:#e9f2fb;stroke:#9ec5fe} svg .netlabel{font-size:12px;fill:#0a58ca}
svg .client{fill:#f1f3f5;stroke:#adb5bd} svg .link{stroke:#9ec5fe;stroke-width:2}
svg .hostname{font-weight:700;font-size:13px} svg .small{font-size:11px;fill:#444}
svg .vip{fill:#fff;stroke:#6f42c1;stroke-width:2}
svg .host.hl rect{stroke:#0d6efd!important;stroke-width:4!important}
table{border-collapse:collapse;width:100%;margin-top:16px} td,th{border-bottom:1px solid #dee2e6;padding:6px;text-align:left;vertical-align:top}
tr.claim:hover{background:#f8f9fa} td.v{white-space:nowrap} code{font-size:.9em}
details pre{background:#f8f9fa;padding:8px;overflow:auto;max-height:300px;font-size:12px}
svg.timeline{width:100%;max-width:640px;display:block;margin:6px 0}
svg .fault{fill:#fff3cd;stroke:#ffe69c} svg .ok{fill:#198754} svg .bad{fill:#dc3545}
svg .budget{stroke:#dc3545;stroke-dasharray:4 3} svg .mark{stroke:#6f42c1;stroke-dasharray:3 3} svg .back{stroke:#198754;stroke-dasharray:2 2} svg .axis{stroke:#adb5bd}
.measured{color:#333;font-size:.92em}
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('tr.claim').forEach(function(row){
  var hosts=(row.dataset.hosts||'').split(' ').filter(Boolean);
  var scope=row.closest('section')||document;
  function mark(on){scope.querySelectorAll('g.host').forEach(function(g){
    if(hosts.indexOf(g.dataset.host)>=0){g.classList.toggle('hl',on);}});}
  row.addEventListener('mouseenter',function(){mark(true);});
  row.addEventListener('mouseleave',function(){mark(false);});
});
"#;

/// The whole page of one run.
pub fn page(design: &Design, report: &RunReport<'_>, total_s: f64) -> String {
    let title = format!("stackproof check {}", report.design);
    wrap(&title, &section(design, report, total_s, "h1"))
}

/// A self-contained page around `body`.
pub fn wrap(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>{body}<script>{SCRIPT}</script></body></html>\n",
        esc(title)
    )
}

/// One run's part of a page: its facts, topology and claims, under a
/// `heading` (`h1` alone, `h2` among others).
pub fn section(design: &Design, report: &RunReport<'_>, total_s: f64, heading: &str) -> String {
    let hl = health(design, report.claims);
    let count = |f: fn(&Verdict) -> bool| report.claims.iter().filter(|o| f(&o.verdict)).count();
    let mut h = format!("<section id=\"{}\">", esc(report.design));
    let _ = write!(
        h,
        "<{heading}>stackproof check {}</{heading}><div class=\"facts\">{}<br>run <code>{}</code>, image <code>{}</code>{}{}, up in {} ms, checked in {total_s:.1} s</div>",
        esc(report.design),
        esc(&design.spec.summary),
        esc(report.run),
        esc(report.image),
        if report.platform.is_empty() {
            String::new()
        } else {
            format!(" on <code>{}</code>", esc(report.platform))
        },
        if report.image_built {
            " (built for this run)"
        } else {
            ""
        },
        report.up_ms
    );
    if !report.versions.is_empty() {
        let _ = write!(
            h,
            "<div class=\"facts\">servers: {}</div>",
            report
                .versions
                .iter()
                .map(|(s, v)| format!("{} <code>{}</code>", esc(s), esc(v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = write!(
        h,
        "<div class=\"sum\"><span class=\"PASS\">{} held</span><span class=\"FAIL\">{} broken</span><span class=\"ERROR\">{} not measured</span><span class=\"SKIP\">{} skipped</span></div>",
        count(Verdict::passed),
        count(Verdict::failed),
        count(|v| matches!(v, Verdict::Error(_))),
        count(Verdict::skipped)
    );
    h.push_str(&topology(design, &hl));
    h.push_str("<p class=\"measured\">Each host is coloured by the claims that concern it: green when all held, red when one failed, amber when one could not be measured. Hover a claim to see its hosts.</p>");
    h.push_str("<table><tr><th>verdict</th><th>claim</th><th>the design says, and what was measured</th><th>ms</th></tr>");
    for o in report.claims {
        let hosts = design
            .claims
            .iter()
            .find(|c| c.id == o.id)
            .map(|c| c.hosts.join(" "))
            .unwrap_or_default();
        let label = o.verdict.label();
        let _ = write!(
            h,
            "<tr class=\"claim\" data-hosts=\"{}\"><td class=\"v\"><span class=\"{label}\">{label}</span></td><td><code>{}</code></td><td>{}<div class=\"measured\">measured: {}</div>",
            esc(&hosts),
            esc(&o.id),
            esc(&o.says),
            esc(&o.evidence)
        );
        for t in &o.timelines {
            h.push_str(&timeline(t));
        }
        if let Verdict::Skip(why) = &o.verdict {
            let _ = write!(h, "<div class=\"measured\">skipped: {}</div>", esc(why));
        }
        if let Some(f) = o.verdict.failure() {
            let diff = f.diff().unwrap_or_default();
            let _ = write!(
                h,
                "<details open><summary>why: {}</summary>{}</details>",
                esc(&f.summary),
                if diff.is_empty() {
                    String::new()
                } else {
                    format!("<pre>{}</pre>", esc(&diff))
                }
            );
            if !f.logs.is_empty() {
                let _ = write!(
                    h,
                    "<details><summary>last log lines</summary><pre>{}</pre></details>",
                    esc(&f.logs)
                );
            }
        }
        let _ = write!(h, "</td><td>{}</td></tr>", o.millis);
    }
    h.push_str("</table></section>");
    h
}
