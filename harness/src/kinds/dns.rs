//! DNS kinds: what the run's DNS server answers for the site's name.

use hickory_proto::rr::{RData, RecordType};

use super::{Kind, Param, Params, Ty};
use crate::claim::{CheckResult, Failure, ensure_eq};
use crate::client::{self, DnsTransport};
use crate::stack::{Stack, ZONE};

/// `dns.a_record`: a name resolves to exactly one address, the one named.
pub const A_RECORD: Kind = Kind {
    name: "dns.a_record",
    doc: "Over UDP and over TCP, `name` has exactly one A record (no CNAME), equal to the address of `points_at`: a host (its address on its first network) or a design address such as `public.vip`.",
    params: &[
        Param::required(
            "points_at",
            Ty::Text,
            "a host of the design, or an address name of the run (`public.vip`, `lb-1.public`)",
        ),
        Param::optional(
            "name",
            Ty::Text,
            "the name asked, relative to the zone (foobar.com)",
            "\"www\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.dns.www"
says = "DNS resolves www to the load balancer"
kind = "dns.a_record"
points_at = "lb-1""#,
    check: crate::kind_check!(a_record),
};

/// The address `points_at` means: a host's main address, or a run address name.
pub(crate) fn address_of(stack: &Stack, points_at: &str) -> Result<String, Failure> {
    if let Ok(h) = stack.host(points_at) {
        return Ok(h.main_addr().to_string());
    }
    stack.vars.get(points_at).cloned().ok_or_else(|| {
        Failure::not_measured(
            format!(
                "`{points_at}` is neither a host nor an address of the run (hosts: {}; addresses look like `lb-1.public`, `public.vip`)",
                stack.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
            "",
        )
    })
}

async fn a_record(stack: &Stack, p: &Params) -> CheckResult {
    let points_at = p.text("points_at");
    let fqdn = format!("{}.{ZONE}", p.text("name"));
    let expected = address_of(stack, points_at)?;
    let mut evidence = Vec::new();
    for transport in [DnsTransport::Udp, DnsTransport::Tcp] {
        let resolver = client::resolver(stack.dns.addr, transport)?;
        let answers = client::query(&resolver, &fqdn, RecordType::A)
            .await
            .map_err(|e| {
                let mut f =
                    super::common::dns_failure(format!("{transport:?} query for {fqdn}: {e}"));
                f.evidence = evidence.join("; ");
                f
            })?;
        let seen: Vec<String> = answers
            .iter()
            .map(|r| match &r.data {
                RData::A(a) => format!("A {a}"),
                RData::CNAME(c) => format!("CNAME {}", c.0),
                other => format!("{:?} {other}", r.record_type()),
            })
            .collect();
        evidence.push(format!(
            "{transport:?} {} → {}",
            stack.dns.addr,
            seen.join(", ")
        ));
        ensure_eq(
            &format!("{fqdn} over {transport:?}"),
            vec![format!("A {expected}")],
            seen,
            &evidence.join("; "),
        )?;
    }
    Ok(format!(
        "{fqdn}: {}; {points_at} is {expected}",
        evidence.join("; ")
    ))
}
