//! TLS kinds: what the site's TLS endpoint offers, from real handshakes and
//! a capture of the wire.

use super::common::{header, req_failed};
use super::{Facts, Kind, Param, Params, Ty};
use crate::capture::Capture;
use crate::failure::{CheckResult, Failure, ensure, ensure_eq};
use crate::measure::http;
use crate::recorder::Recorder;
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
    facts: Facts::PLAIN,
    check: crate::kind_check!(no_https),
};

async fn no_https(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
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
    ensure(
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

fn https(path: &str) -> String {
    format!("https://{WWW}{path}")
}

/// `tls.certificate`: the certificate verifies, and only modern TLS is spoken.
pub const CERTIFICATE: Kind = Kind {
    name: "tls.certificate",
    doc: "An HTTPS request trusting only the run's CA succeeds (the chain and the name verify), the certificate names www.foobar.com, and real openssl handshakes from `from` (security level 0, so the client can offer old versions at all) are accepted for exactly the TLS versions in `accepted`.",
    params: &[
        Param::required("lb", Ty::Host, "the host terminating TLS"),
        Param::required(
            "from",
            Ty::Host,
            "a client host with openssl and the run's CA",
        ),
        Param::optional(
            "accepted",
            Ty::Texts,
            "the versions that must be accepted (the rest refused)",
            "[\"1.2\", \"1.3\"]",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.https.valid_cert"
says = "the load balancer serves HTTPS"
kind = "tls.certificate"
lb = "lb-1"
from = "client""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(certificate),
};

async fn certificate(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let from_name = p.host("from");
    // reqwest trusts the run's CA only: success means the chain and the name verify.
    let verified = stack
        .client
        .fresh
        .get(https("/static/hello.txt"))
        .send()
        .await;
    let lb = stack.host(p.host("lb"))?.main_addr();
    let client = stack.host(from_name)?;
    // A port a firewall drops never answers: openssl would wait for minutes.
    let answer = client
        .exec(&format!(
            "timeout 5 openssl s_client -connect {lb}:443 -servername {WWW} </dev/null >/dev/null 2>&1"
        ))
        .await?;
    ensure(
        answer.code != 124,
        "nothing answered on port 443",
        &format!(
            "openssl s_client from {from_name} to {lb}:443: no answer within 5 s (the connection is dropped on the way); HTTPS GET: {}",
            match &verified {
                Ok(r) => r.status().to_string(),
                Err(e) => format!("FAILED ({})", crate::probe::error_chain(e)),
            }
        ),
    )?;
    // Nothing on 443 at all: say so, and where TLS answers instead (a
    // `bind *:403 ssl` typo), rather than "does not verify".
    if let Err(e) = &verified
        && crate::probe::error_chain(e).contains("nothing listens on that port")
    {
        // Asked on the load balancer itself: its own firewall may well
        // drop the port from outside.
        let lb_host = stack.host(p.host("lb"))?;
        let mut tls_on = Vec::new();
        for l in crate::reach::listeners(lb_host).await? {
            let handshake = lb_host
                .exec(&format!(
                    "timeout 2 openssl s_client -connect 127.0.0.1:{} -servername {WWW} </dev/null >/dev/null 2>&1",
                    l.port
                ))
                .await?;
            if handshake.code == 0 && !tls_on.contains(&l.port) {
                tls_on.push(l.port);
            }
        }
        return Err(crate::failure::Failure::new(
            format!(
                "nothing listens on port 443 of {} (connection refused){}",
                p.host("lb"),
                match tls_on.as_slice() {
                    [] => ", and no port of it answers TLS".to_string(),
                    ports => format!(
                        "; TLS answers on port {} instead",
                        ports
                            .iter()
                            .map(u16::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            ),
            format!("HTTPS GET: FAILED ({})", crate::probe::error_chain(e)),
        ));
    }
    let san = client
        .run(&format!(
            "timeout 5 openssl s_client -connect {lb}:443 -servername {WWW} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName | tail -n +2"
        ))
        .await?;
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (flag, name) in [
        ("-tls1", "1.0"),
        ("-tls1_1", "1.1"),
        ("-tls1_2", "1.2"),
        ("-tls1_3", "1.3"),
    ] {
        // Security level 0 lets this client offer the old versions at all.
        let cmd = format!(
            "timeout 5 openssl s_client -connect {lb}:443 -servername {WWW} {flag} -cipher 'DEFAULT:@SECLEVEL=0' -CAfile /etc/stackproof/ca.pem -verify_return_error </dev/null >/dev/null 2>&1"
        );
        if client.exec(&cmd).await?.code == 0 {
            accepted.push(name)
        } else {
            refused.push(name)
        }
    }
    let evidence = format!(
        "HTTPS GET with only the run's CA trusted: {}; SAN: {}; TLS accepted [{}], refused [{}] (openssl s_client from {from_name})",
        match &verified {
            Ok(r) => format!("{} (chain verified for {WWW})", r.status()),
            Err(e) => format!("FAILED ({})", crate::probe::error_chain(e)),
        },
        san.trim(),
        accepted.join(", "),
        refused.join(", ")
    );
    // Which name failed comes first: a certificate for the apex only also
    // fails verification, for that reason.
    let names: Vec<&str> = san
        .split(',')
        .filter_map(|n| n.trim().strip_prefix("DNS:"))
        .collect();
    ensure(
        san.trim().is_empty() || names.contains(&WWW),
        format!(
            "the certificate names {} but not {WWW}, the name users ask for",
            if names.is_empty() {
                "no DNS name".to_string()
            } else {
                names.join(", ")
            }
        ),
        &evidence,
    )?;
    ensure(
        verified.is_ok(),
        "the certificate does not verify against the run's CA",
        &evidence,
    )?;
    ensure(
        names.contains(&WWW),
        format!("the certificate does not name {WWW}"),
        &evidence,
    )?;
    ensure_eq(
        "TLS versions accepted",
        p.list("accepted"),
        accepted,
        &evidence,
    )?;
    Ok(evidence)
}

/// `tls.redirect_hsts`: plain HTTP moves permanently to HTTPS, which insists on itself.
pub const REDIRECT_HSTS: Kind = Kind {
    name: "tls.redirect_hsts",
    doc: "For each of `paths`, http:// answers 301 with a Location that is the same URL over https://, and the HTTPS answer carries Strict-Transport-Security with a max-age of at least `min_age_days`.",
    params: &[
        Param::optional(
            "paths",
            Ty::Texts,
            "paths tried (a static and a dynamic one)",
            "[\"/index.php?from=plain\", \"/static/hello.txt\"]",
        ),
        Param::optional(
            "min_age_days",
            Ty::Int,
            "the least HSTS max-age that protects returning users",
            "180",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.https.redirect"
says = "HTTPS protects user data"
kind = "tls.redirect_hsts""#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(redirect_hsts),
};

async fn redirect_hsts(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let min_age = p.int("min_age_days") * 24 * 3600;
    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for path in p.list("paths") {
        let plain = stack
            .client
            .fresh
            .get(format!("http://{WWW}{path}"))
            .send()
            .await
            .map_err(|e| req_failed(path, &e))?;
        let location = header(&plain, "location");
        let status = plain.status().as_u16();
        let secure = stack
            .client
            .fresh
            .get(https(path))
            .send()
            .await
            .map_err(|e| req_failed(path, &e))?;
        let hsts = header(&secure, "strict-transport-security");
        let max_age = hsts_max_age(&hsts);
        seen.push(format!(
            "http://{WWW}{path} → {status} Location: {}; https:// → {} with Strict-Transport-Security: {}",
            if location.is_empty() { "(none)" } else { &location },
            secure.status().as_u16(),
            if hsts.is_empty() { "(none)" } else { &hsts }
        ));
        if status != 301 {
            wrong.push(format!(
                "{path}: plain HTTP answered {status}, not 301 (a permanent redirect)"
            ));
        }
        if location != https(path) {
            wrong.push(format!(
                "{path}: redirected to `{location}`, not the same URL over HTTPS `{}`",
                https(path)
            ));
        }
        if max_age.is_none_or(|a| a < min_age) {
            wrong.push(format!(
                "{path}: HSTS max-age {} is not at least {min_age} s ({} days)",
                max_age
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "missing".into()),
                p.int("min_age_days")
            ));
        }
    }
    let evidence = seen.join("; ");
    ensure_eq(
        "redirect and HSTS problems",
        Vec::<String>::new(),
        wrong,
        &evidence,
    )?;
    Ok(evidence)
}

/// The max-age of a Strict-Transport-Security header, in seconds.
fn hsts_max_age(header: &str) -> Option<u64> {
    header.split(';').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

/// Sends two HTTPS requests carrying a secret (in the URL, which no proxy
/// can strip without breaking the request, and in a header) while every
/// packet between `lb` (its address on `network`) and each backend is
/// captured on the backend, on any port. Returns (requests answered, per
/// backend: bytes captured, whether the secret was seen in clear text).
async fn secret_on_the_wire(
    stack: &Stack,
    lb: &str,
    backends: &[&str],
    network: &str,
) -> Result<(usize, Vec<(String, usize, bool)>), Failure> {
    let secret = format!("secret{:016x}", rand::random::<u64>());
    let lb_addr = stack
        .host(lb)?
        .addr(network)
        .ok_or_else(|| Failure::not_measured(format!("{lb} is not on `{network}`"), ""))?;
    let filter = format!("tcp and host {lb_addr}");
    let mut captures = Vec::new();
    for b in backends {
        captures.push(Capture::start(stack.host(b)?, &filter).await?);
    }
    let mut sent = 0;
    for _ in 0..2 {
        let request = stack
            .client
            .fresh
            .get(https(&format!("/static/hello.txt?{secret}")))
            .header("X-Stackproof-Secret", &secret);
        if request.send().await.is_ok_and(|r| r.status().is_success()) {
            sent += 1;
        }
    }
    let mut seen = Vec::new();
    for (b, c) in backends.iter().zip(captures) {
        let text = c.finish().await?;
        seen.push((b.to_string(), text.len(), text.contains(&secret)));
    }
    Ok((sent, seen))
}

/// The captures as text: `server-1 812 bytes, secret SEEN in clear text`.
fn captured(seen: &[(String, usize, bool)]) -> String {
    seen.iter()
        .map(|(s, n, c)| {
            format!(
                "{s} {n} bytes, secret {}",
                if *c { "SEEN in clear text" } else { "not seen" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `tls.clear_behind_lb`: TLS ends at the load balancer; behind it, clear text.
pub const CLEAR_BEHIND_LB: Kind = Kind {
    name: "tls.clear_behind_lb",
    doc: "A capture on the backends of all traffic with `lb` (its address on `network`, any port) shows the secret of an HTTPS request (in its URL) in clear text: SSL termination leaves the path behind the load balancer unencrypted.",
    params: &[
        Param::required("lb", Ty::Host, "the host terminating TLS"),
        Param::required(
            "backends",
            Ty::Hosts,
            "the hosts behind it, where the capture runs",
        ),
        Param::optional(
            "network",
            Ty::Network,
            "the network between them",
            "\"private\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.issue.ssl_termination_plaintext"
says = "SSL terminated at the LB leaves LB→server traffic unencrypted"
kind = "tls.clear_behind_lb"
lb = "lb-1"
backends = ["web-1", "web-2"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(clear_behind_lb),
};

async fn clear_behind_lb(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let lb = p.host("lb");
    let (sent, seen) =
        secret_on_the_wire(stack, lb, &p.list("backends"), p.text("network")).await?;
    let evidence = format!(
        "{sent} of 2 HTTPS requests with a secret answered; captures on the backends of all traffic with {lb}: {}",
        captured(&seen)
    );
    ensure(
        sent > 0,
        "no HTTPS request to www on 443 was answered, so nothing crossed the path",
        &evidence,
    )?;
    ensure(
        seen.iter().any(|(_, n, _)| *n > 0),
        format!("HTTPS requests were answered but {lb} sent the backends nothing the captures saw"),
        &evidence,
    )?;
    ensure(
        seen.iter().any(|(_, _, c)| *c),
        "the secret never crossed the LB→server path in clear text",
        &evidence,
    )?;
    Ok(evidence)
}

/// `tls.reencrypt_remedy`: no clear text crosses the LB→server path.
pub const REENCRYPT_REMEDY: Kind = Kind {
    name: "tls.reencrypt_remedy",
    doc: "The capture of `tls.clear_behind_lb` (two HTTPS requests with a secret, captured on every backend) finds the backends' traffic with `lb` and no clear text in it. Meant for a remedy: give the claim `variant = \"<folder under variants/>\"` to measure it on the design with that variant laid over it, started beside the running one, and `still_hold = [claim IDs]` for the claims that must hold with it too.",
    params: &[
        Param::required("lb", Ty::Host, "the host terminating TLS"),
        Param::required("backends", Ty::Hosts, "the hosts behind it"),
        Param::optional(
            "network",
            Ty::Network,
            "the network between them",
            "\"private\"",
        ),
    ],
    example: r#"
[[claim]]
id = "my_site.remedy.reencrypt"
says = "(the fix) TLS re-encryption to the backends"
kind = "tls.reencrypt_remedy"
variant = "reencrypt"
lb = "lb-1"
backends = ["web-1", "web-2"]
still_hold = ["my_site.https.valid_cert"]"#,
    facts: Facts::PLAIN,
    check: crate::kind_check!(reencrypt_remedy),
};

async fn reencrypt_remedy(stack: &Stack, p: &Params, _: &Recorder) -> CheckResult {
    let (sent, seen) =
        secret_on_the_wire(stack, p.host("lb"), &p.list("backends"), p.text("network")).await?;
    let evidence = format!(
        "{sent} of 2 HTTPS requests with a secret answered; captures on the backends: {}",
        captured(&seen)
    );
    ensure_eq("requests answered", 2, sent, &evidence)?;
    ensure(
        seen.iter().all(|(_, n, c)| *n > 0 && !c),
        "the secret still crossed the LB→server path in clear text",
        &evidence,
    )?;
    Ok(evidence)
}
