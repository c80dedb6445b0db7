//! `Schedule::OnStacks`: claims shared among stacks started together.

use super::Event;
use crate::claim::{Claim, Outcome};
use crate::error::Result;
use crate::stack::Stack;

/// Shares `claims` among `first` and the `more` stacks that started with
/// it: each stack takes the next claim when it is free, and every outcome
/// is reported in the claims' order as soon as the claims before it have
/// ended. A stack a claim left changed takes no more claims, unless every
/// other has stopped too. The stacks of `more` that started are returned,
/// for the caller to remove.
pub(super) async fn on_stacks(
    first: &Stack,
    more: Vec<Result<Stack>>,
    claims: &[Claim],
    on: &impl Fn(Event<'_>),
) -> (Vec<Outcome>, Vec<Stack>) {
    use std::sync::Mutex;
    let mut started = Vec::new();
    // Every stack up before any claim: bringing a stack up takes both
    // cores, and a failover measured meanwhile saw outages of 1.7-2.3 s
    // instead of 0.3 s.
    for s in more {
        match s {
            Ok(s) => {
                on(Event::Note(format!(
                    "stack {} up in {} ms",
                    s.run.id,
                    s.up_time.as_millis()
                )));
                started.push(s);
            }
            Err(e) => on(Event::Note(format!(
                "another stack did not start ({}); its share goes to the others",
                e.chain().lines().next().unwrap_or("")
            ))),
        }
    }
    let shared = Shared {
        claims,
        next: Mutex::new(0),
        done: Mutex::new(vec![None; claims.len()]),
        reported: Mutex::new(0),
        healthy: std::sync::atomic::AtomicUsize::new(1 + started.len()),
        on,
    };
    let workers = std::iter::once(first)
        .chain(started.iter())
        .map(|s| shared.worker(s));
    futures::future::join_all(workers).await;
    let outcomes = shared
        .done
        .into_inner()
        .expect("outcomes lock")
        .into_iter()
        .map(|o| o.expect("every claim ran"))
        .collect();
    (outcomes, started)
}

/// What the stacks of [`on_stacks`] share.
struct Shared<'a, F: Fn(Event<'_>)> {
    claims: &'a [Claim],
    next: std::sync::Mutex<usize>,
    done: std::sync::Mutex<Vec<Option<Outcome>>>,
    /// How many outcomes, in order, have been reported.
    reported: std::sync::Mutex<usize>,
    /// Stacks still taking claims.
    healthy: std::sync::atomic::AtomicUsize,
    on: &'a F,
}

impl<F: Fn(Event<'_>)> Shared<'_, F> {
    /// One stack's share: takes the next claim until none is left.
    async fn worker(&self, stack: &Stack) {
        use std::sync::atomic::Ordering;
        let mut counted_out = false;
        loop {
            let i = {
                let mut n = self.next.lock().expect("queue lock");
                *n += 1;
                *n - 1
            };
            let Some(c) = self.claims.get(i) else { return };
            let o = super::one_claim(stack, c, &Default::default()).await;
            let mut done = self.done.lock().expect("outcomes lock");
            done[i] = Some(o);
            let mut reported = self.reported.lock().expect("report lock");
            while let Some(Some(o)) = done.get(*reported) {
                (self.on)(Event::Ended(o));
                *reported += 1;
            }
            drop((reported, done));
            if stack.tainted() && !counted_out {
                counted_out = true;
                if self.healthy.fetch_sub(1, Ordering::SeqCst) == 1 {
                    continue;
                }
                (self.on)(Event::Note(format!(
                    "a claim left stack {} changed; the other stacks take the claims left",
                    stack.run.id
                )));
                return;
            }
        }
    }
}
