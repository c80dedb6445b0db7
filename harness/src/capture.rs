//! Packet captures on a host: what really crossed the wire, read with
//! tcpdump inside the host's own network namespace.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::host::Host;

/// How long a capture may run at most, whatever happens to the caller.
const CAPTURE_LIMIT_S: u32 = 15;

/// A running tcpdump on a host.
#[derive(Debug)]
pub struct Capture<'a> {
    host: &'a Host,
    file: String,
}

impl<'a> Capture<'a> {
    /// Starts capturing packets matching `filter` on every interface of
    /// `host`, printing payloads as text, and returns once tcpdump listens.
    pub async fn start(host: &'a Host, filter: &str) -> Result<Capture<'a>> {
        let file = format!("/tmp/capture-{:08x}", rand::random::<u32>());
        // `timeout` bounds the capture even if we never stop it.
        host.run(&format!(
            "setsid -f sh -c 'exec timeout {CAPTURE_LIMIT_S} tcpdump -i any -nn -l -A -s 0 {filter} > {file}.txt 2> {file}.err' < /dev/null"
        ))
        .await?;
        let started = Instant::now();
        loop {
            let out = host
                .exec(&format!("grep -q 'listening on' {file}.err"))
                .await?;
            if out.code == 0 {
                return Ok(Capture { host, file });
            }
            if started.elapsed() > Duration::from_secs(5) {
                return Err(Error::Timeout {
                    host: host.name.clone(),
                    service: "tcpdump".into(),
                    what: format!("listen for `{filter}`"),
                    waited: Duration::from_secs(5),
                    logs: host.tail(&[format!("{file}.err")], 10).await,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the capture (after a short flush) and returns what it printed.
    pub async fn finish(self) -> Result<String> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.host.exec("pkill -INT -x tcpdump").await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = self
            .host
            .run(&format!("cat {0}.txt; rm -f {0}.txt {0}.err", self.file))
            .await?;
        Ok(text)
    }
}
