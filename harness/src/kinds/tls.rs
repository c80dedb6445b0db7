//! TLS kinds: what the site's TLS endpoint offers, from real handshakes and
//! a capture of the wire.

use super::{Kind, Param, Params, Ty};
use crate::claim::{CheckResult, ensure, ensure_measured};
use crate::measure::http;
use crate::stack::{Stack, WWW};

/// `tls.no_https`: the design serves no HTTPS, and requests cross in clear text.
pub const NO_HTTPS: Kind = Kind {
    name: "tls.no_https",
    doc: "Nothing on `lb` completes a TLS handshake on 443 (told apart: nothing listens, or something listens without TLS; any certificate at all would count as HTTPS), asked from `from` with openssl trusting nothing; and a plain-HTTP request's secret header is seen in clear text in a capture on `lb`.",
    params: &[
        Param::required("lb", Ty::Host, "the host clients reach"),
        Param::required(
            "from",
            Ty::Host,
            "a host on the same network to handshake from",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.no_https"
says = "no HTTPS: traffic is in clear text"
kind = "tls.no_https"
lb = "lb-1"
from = "web-1""#,
    check: crate::kind_check!(no_https),
};

async fn no_https(stack: &Stack, p: &Params) -> CheckResult {
    let name = p.host("lb");
    let lb = stack.host(name)?;
    let lb_addr = lb.main_addr();
    let listens_443 = crate::reach::listeners(lb)
        .await?
        .into_iter()
        .find(|l| l.port == 443);
    let from = stack.host(p.host("from"))?;
    let handshake = from
        .exec(&format!(
            "timeout 5 openssl s_client -connect {lb_addr}:443 -servername {WWW} -brief </dev/null 2>&1"
        ))
        .await?;
    let tcp = from.exec(&format!("nc -z -w 1 {lb_addr} 443")).await?.code == 0;
    let tls_text = match (&listens_443, tcp, handshake.code) {
        (None, false, _) => format!("nothing listens on {name}:443 (connection refused)"),
        (_, _, 0) => format!(
            "{name}:443 completed a TLS handshake: {}",
            handshake
                .stdout
                .lines()
                .filter(|l| l.starts_with("Protocol") || l.starts_with("Ciphersuite"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (l, _, _) => format!(
            "{name}:443 accepts TCP ({}) but completes no TLS handshake",
            l.as_ref()
                .map(|l| l.process.clone())
                .unwrap_or_else(|| "?".into())
        ),
    };
    let secret = format!("secret-{:016x}", rand::random::<u64>());
    let capture = crate::capture::Capture::start(lb, "tcp port 80").await?;
    let sent = stack
        .client
        .fresh
        .get(http("/static/hello.txt"))
        .header("X-Stackproof-Secret", &secret)
        .send()
        .await;
    let seen = capture.finish().await?;
    let evidence = format!(
        "{tls_text}; plain-HTTP request {}; capture on {name} (tcp port 80, {} bytes): secret header {}",
        if sent.is_ok() { "answered" } else { "failed" },
        seen.len(),
        if seen.contains(&secret) {
            "seen in clear text"
        } else {
            "NOT seen"
        }
    );
    ensure(
        handshake.code != 0,
        format!("{name} serves HTTPS on 443 (a TLS handshake completed)"),
        &evidence,
    )?;
    ensure_measured(
        sent.is_ok(),
        "the plain-HTTP request failed, so nothing crossed the wire",
        &evidence,
    )?;
    ensure(
        seen.contains(&secret),
        "the secret header was not seen in clear text on the wire",
        &evidence,
    )?;
    Ok(evidence)
}
