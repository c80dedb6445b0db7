//! Traffic the claims send: single requests, bursts, and probe loops that
//! run at a fixed interval through a fault and measure the outage.
//! Every loop is bounded in count and time.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One request's result as the client saw it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent, from the loop's start.
    pub at: Duration,
    /// The HTTP status, or the error if there was no response.
    pub result: Result<u16, String>,
    /// How long it took to answer (or to fail).
    pub took: Duration,
}

/// Sends `n` requests at once, each on a fresh connection; returns
/// (successes, the first error seen).
pub async fn burst(client: &reqwest::Client, url: &str, n: usize) -> (usize, Option<String>) {
    burst_within(client, url, n, None).await
}

/// As [`burst`], each request given `timeout` instead of the client's own
/// (a request queued on a slowed link must be answered, not abandoned).
pub async fn burst_within(
    client: &reqwest::Client,
    url: &str,
    n: usize,
    timeout: Option<Duration>,
) -> (usize, Option<String>) {
    let sends = (0..n).map(|_| async {
        let request = client.get(url);
        let Some(t) = timeout else {
            return request
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map(drop);
        };
        // The whole body too, so the server's session ends as the client's does.
        match request
            .timeout(t)
            .send()
            .await
            .and_then(|r| r.error_for_status())
        {
            Ok(r) => r.bytes().await.map(drop),
            Err(e) => Err(e),
        }
    });
    let results = futures::future::join_all(sends).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let first_err = results
        .into_iter()
        .find_map(|r| r.err())
        .map(|e| error_chain(&e));
    (ok, first_err)
}

/// What a probe loop saw.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Every request, in order.
    pub samples: Vec<Sample>,
    /// The interval it aimed for.
    pub interval: Duration,
    /// When the fault (the future the loop ran through) began and ended,
    /// from the loop's start.
    pub fault: (Duration, Duration),
}

impl ProbeReport {
    /// Whether a request sent before the fault began was answered (2xx):
    /// the site was up before it.
    pub fn up_before_fault(&self) -> bool {
        self.samples
            .iter()
            .any(|s| s.at < self.fault.0 && matches!(s.result, Ok(200..=299)))
    }

    /// Requests sent.
    pub fn sent(&self) -> usize {
        self.samples.len()
    }

    /// Requests without a 2xx answer.
    pub fn failed(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| !matches!(s.result, Ok(200..=299)))
            .count()
    }

    /// From the first failed request to the first success after the last
    /// failure: the outage a user saw, in ms (0 when nothing failed).
    pub fn outage_ms(&self) -> u128 {
        let bad = |s: &Sample| !matches!(s.result, Ok(200..=299));
        let (Some(first), Some(last)) = (
            self.samples.iter().position(bad),
            self.samples.iter().rposition(bad),
        ) else {
            return 0;
        };
        let end = self
            .samples
            .get(last + 1)
            .map(|s| s.at)
            .unwrap_or(self.samples[last].at);
        (end - self.samples[first].at).as_millis()
    }

    /// The first failure's message.
    pub fn first_error(&self) -> Option<String> {
        self.samples.iter().find_map(|s| match &s.result {
            Ok(200..=299) => None,
            Ok(code) => Some(format!("HTTP {code}")),
            Err(e) => Some(e.clone()),
        })
    }

    /// "3 of 120 failed, outage 41 ms".
    pub fn summary(&self) -> String {
        format!(
            "{} of {} requests failed, outage {} ms",
            self.failed(),
            self.sent(),
            self.outage_ms()
        )
    }
}

/// Requests `url` every `interval` while `during` runs, and for `settle`
/// after it ends; at most `max` requests. Returns the samples and `during`'s output.
pub async fn probe_through<F: Future>(
    client: &reqwest::Client,
    url: &str,
    interval: Duration,
    settle: Duration,
    max: usize,
    during: F,
) -> (ProbeReport, F::Output) {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let prober = {
        let (client, url, stop) = (client.clone(), url.to_string(), stop.clone());
        let answered = answered.clone();
        async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) && samples.len() < max {
                tick.tick().await;
                let at = started.elapsed();
                let result = match client.get(&url).send().await {
                    Ok(r) => Ok(r.status().as_u16()),
                    Err(e) => Err(error_chain(&e)),
                };
                let took = started.elapsed() - at;
                if matches!(result, Ok(200..=299)) {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                samples.push(Sample { at, result, took });
            }
            samples
        }
    };
    let handle = tokio::spawn(prober);
    // Let the loop show the service healthy before the fault: five
    // intervals, and until a request has been answered (at most 2 s). On
    // a loaded machine the first request, on a fresh connection, outlasted
    // five 10 ms intervals and the fault cut it: the claim could not tell
    // the site had been up (CI, 2026-11-30).
    tokio::time::sleep(interval * 5).await;
    let waiting = Instant::now();
    while answered.load(Ordering::Relaxed) == 0 && waiting.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fault_from = started.elapsed();
    let output = during.await;
    let fault_to = started.elapsed();
    tokio::time::sleep(settle).await;
    stop.store(true, Ordering::Relaxed);
    let samples = handle.await.unwrap_or_default();
    (
        ProbeReport {
            samples,
            interval,
            fault: (fault_from, fault_to),
        },
        output,
    )
}

/// An error with its causes, on one line ("error sending request: connect: refused").
/// The run's traffic endpoint reports a failed connection in SOCKS terms;
/// those become what happened at the server ("nothing listens on that
/// port"), since the endpoint is ours, not the design's.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    in_plain_words(&s)
}

/// `chain` with the SOCKS endpoint's reply codes said as what they mean.
fn in_plain_words(chain: &str) -> String {
    const SAID: &[(&str, &str)] = &[
        (
            "connection refused",
            "connection refused: nothing listens on that port",
        ),
        (
            "host unreachable",
            "host unreachable: no host answers at that address",
        ),
        ("network unreachable", "network unreachable"),
        ("ttl expired", "connection timed out: nothing answered"),
        ("general server failure", "the connection failed"),
    ];
    for (socks, plain) in SAID {
        for prefix in [
            format!("error connecting to socks proxy: SOCKS error: {socks}"),
            format!("SOCKS error: {socks}"),
        ] {
            if chain.contains(&prefix) {
                return chain.replacen(&prefix, plain, 1);
            }
        }
    }
    chain.to_string()
}

/// Sends each URL in turn on a fresh connection; returns how many got a 2xx.
pub async fn successes(client: &reqwest::Client, urls: impl IntoIterator<Item = String>) -> usize {
    let mut ok = 0;
    for url in urls {
        if client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            ok += 1;
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_endpoints_socks_words_become_what_happened_at_the_server() {
        assert_eq!(
            super::in_plain_words(
                "error sending request for url (https://www.foobar.com/): client error (Connect): error connecting to socks proxy: SOCKS error: connection refused"
            ),
            "error sending request for url (https://www.foobar.com/): client error (Connect): connection refused: nothing listens on that port"
        );
        assert_eq!(
            super::in_plain_words("operation timed out"),
            "operation timed out"
        );
    }
}
