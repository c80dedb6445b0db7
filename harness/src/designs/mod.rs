//! The designs of CLAIMS.md, each a list of claims over a design file in
//! `fixtures/designs/`. The topology comes from the design file; the claims
//! here say how each sentence of the design is proven.

use crate::claim::{Claim, Failure};
use crate::error::{Error, Result};
use crate::probe;

/// Turns `async fn check(&Stack) -> CheckResult` into a [`crate::claim::Check`].
/// Defined before the design modules so each can use it.
macro_rules! check {
    ($f:ident) => {{
        fn boxed(stack: &Stack) -> futures::future::BoxFuture<'_, CheckResult> {
            $f(stack).boxed()
        }
        boxed as Check
    }};
}

pub mod distributed;
pub mod scale_up;
pub mod secured_monitored;
pub mod simple_web;

/// Every design in the catalogue, in CLAIMS.md order, and whether it is built yet.
pub const CATALOGUE: &[(&str, bool)] = &[
    ("simple_web", true),
    ("distributed", false),
    ("secured_monitored", true),
    ("scale_up", true),
];

/// The claims of `design`, in catalogue order.
pub fn claims(design: &str) -> Result<Vec<Claim>> {
    match design {
        "simple_web" => Ok(simple_web::claims()),
        "distributed" => Ok(distributed::claims()),
        "scale_up" => Ok(scale_up::claims()),
        "secured_monitored" => Ok(secured_monitored::claims()),
        other => {
            let known = CATALOGUE
                .iter()
                .filter(|(_, built)| *built)
                .map(|(d, _)| *d)
                .collect::<Vec<_>>()
                .join(", ");
            if CATALOGUE.iter().any(|(d, _)| *d == other) {
                Err(Error::NotImplemented {
                    design: other.into(),
                    known,
                })
            } else {
                Err(Error::Unknown {
                    kind: "design",
                    name: other.into(),
                    known,
                })
            }
        }
    }
}

/// A response header as text ("" when absent).
fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// A failed request as a claim failure, with the whole error chain.
fn req_failed(path: &str, e: &reqwest::Error) -> Failure {
    Failure::new(format!("GET {path} failed: {}", probe::error_chain(e)), "")
}

/// Polls `cond` every 50 ms until it holds, at most `deadline`; returns how long that took.
async fn wait_for<F, Fut>(deadline: std::time::Duration, cond: F) -> Option<std::time::Duration>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < deadline {
        if cond().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    None
}

/// Asks the design's monitoring server (Prometheus on `mon-1`) an instant
/// query; returns its result vector.
async fn prometheus(
    stack: &crate::stack::Stack,
    query: &str,
) -> std::result::Result<Vec<serde_json::Value>, Failure> {
    let url = format!(
        "http://{}:9090/api/v1/query",
        stack.host("mon-1")?.main_addr()
    );
    let body: serde_json::Value = stack
        .client
        .fresh
        .get(&url)
        .query(&[("query", query)])
        .send()
        .await
        .map_err(|e| req_failed(&url, &e))?
        .json()
        .await
        .map_err(|e| req_failed(&url, &e))?;
    Ok(body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// The addresses www.foobar.com resolves to, asked of the run's DNS over UDP.
async fn www_addresses(stack: &crate::stack::Stack) -> std::result::Result<Vec<String>, Failure> {
    use hickory_proto::rr::RecordType;
    let resolver = crate::client::resolver(stack.dns.addr, crate::client::DnsTransport::Udp)?;
    Ok(
        crate::client::query(&resolver, crate::stack::WWW, RecordType::A)
            .await
            .map_err(|e| Failure::new(format!("DNS: {e}"), ""))?
            .iter()
            .filter_map(|r| r.data.ip_addr().map(|i| i.to_string()))
            .collect(),
    )
}
