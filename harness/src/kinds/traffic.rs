//! A representative mix of requests, for the claims that count them: a
//! parser or exporter that counts only 200s, only GETs or only one path
//! looks right under one kind of request and wrong under this mix.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::failure::Failure;
use crate::stack::{Stack, WWW};

/// One kind of request of the mix, and the status a working site gives it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask {
    pub method: &'static str,
    pub path: &'static str,
    pub status: u16,
    pub what: &'static str,
}

/// Methods GET, HEAD and POST; statuses 200, 301 and 404; static and
/// dynamic pages, in the order they are sent, round and round.
pub(crate) const MIX: &[Ask] = &[
    Ask {
        method: "GET",
        path: "/static/hello.txt",
        status: 200,
        what: "static page",
    },
    Ask {
        method: "GET",
        path: "/index.php",
        status: 200,
        what: "dynamic page",
    },
    Ask {
        method: "HEAD",
        path: "/static/hello.txt",
        status: 200,
        what: "static page",
    },
    Ask {
        method: "POST",
        path: "/index.php",
        status: 200,
        what: "dynamic page",
    },
    Ask {
        method: "GET",
        // A folder asked for without its slash: the web server redirects.
        path: "/static",
        status: 301,
        what: "folder without its slash",
    },
    Ask {
        method: "GET",
        path: "/static/no-such-page.txt",
        status: 404,
        what: "missing page",
    },
];

impl Ask {
    /// `GET 200`, as `leave_out` lists it.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.status)
    }
}

/// The mix less the kinds `leave_out` names (`"GET 200"`: the load balancers'
/// health checks are GET 200s, so a counter that also counts them cannot
/// tell ours apart).
pub(crate) fn mix_without(leave_out: &[&str]) -> Vec<Ask> {
    MIX.iter()
        .filter(|a| !leave_out.contains(&a.key().as_str()))
        .copied()
        .collect()
}

/// What was sent: request `i` is `asks[i % asks.len()]`, marked `<mark>-<i>`.
pub(crate) struct Sent {
    pub asks: Vec<Ask>,
    /// The status each request got, or None when it got no answer.
    pub statuses: Vec<Option<u16>>,
    /// From the first request to the last.
    pub span: Duration,
}

impl Sent {
    pub fn ask(&self, i: usize) -> Ask {
        self.asks[i % self.asks.len()]
    }

    pub fn answered(&self) -> usize {
        self.statuses.iter().flatten().count()
    }

    /// How many requests got each status.
    pub fn by_status(&self) -> BTreeMap<u16, usize> {
        let mut out = BTreeMap::new();
        for s in self.statuses.iter().flatten() {
            *out.entry(*s).or_default() += 1;
        }
        out
    }

    /// "GET static page 200 ×7, HEAD …": what was sent, as the site answered it.
    pub fn words(&self) -> String {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, s) in self.statuses.iter().enumerate() {
            let a = self.ask(i);
            let status = s.map_or("no answer".to_string(), |s| s.to_string());
            *seen
                .entry(format!("{} {} → {status}", a.method, a.what))
                .or_default() += 1;
        }
        seen.iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sends `n` requests of `asks` to `scheme://www…` (on `path` instead of
/// each ask's own when given), one every `interval`, each marked
/// `<mark>-<i>` in its query, on kept-alive connections.
pub(crate) async fn send(
    stack: &Stack,
    scheme: &str,
    asks: Vec<Ask>,
    path: Option<&str>,
    mark: &str,
    n: usize,
    interval: Duration,
) -> Result<Sent, Failure> {
    if asks.is_empty() {
        return Err(Failure::new(
            "the claim's `leave_out` leaves no request of the mix to send",
            "",
        ));
    }
    let started = Instant::now();
    let mut tick = tokio::time::interval(interval);
    let mut statuses = Vec::with_capacity(n);
    let mut last = started;
    for i in 0..n {
        tick.tick().await;
        last = Instant::now();
        let a = asks[i % asks.len()];
        let method = reqwest::Method::from_bytes(a.method.as_bytes()).unwrap_or_default();
        let url = format!("{scheme}://{WWW}{}?{mark}-{i}", path.unwrap_or(a.path));
        let mut request = stack.client.pooled.request(method.clone(), &url);
        if method == reqwest::Method::POST {
            request = request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body("from=stackproof");
        }
        statuses.push(request.send().await.ok().map(|r| r.status().as_u16()));
    }
    Ok(Sent {
        asks,
        statuses,
        span: last - started,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_has_every_method_status_and_kind_of_page() {
        let methods: std::collections::BTreeSet<_> = MIX.iter().map(|a| a.method).collect();
        let statuses: std::collections::BTreeSet<_> = MIX.iter().map(|a| a.status).collect();
        assert_eq!(
            methods.into_iter().collect::<Vec<_>>(),
            ["GET", "HEAD", "POST"]
        );
        assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [200, 301, 404]);
        assert!(MIX.iter().any(|a| a.what == "static page"));
        assert!(MIX.iter().any(|a| a.what == "dynamic page"));
    }

    #[test]
    fn leaving_out_get_200_keeps_the_other_kinds() {
        let left = mix_without(&["GET 200"]);
        assert_eq!(left.len(), MIX.len() - 2);
        assert!(left.iter().all(|a| a.key() != "GET 200"));
    }
}
