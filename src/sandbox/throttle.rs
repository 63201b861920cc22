//! The `rate_limit` feature: at most N requests per client in a sliding 10 s window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) const WINDOW: Duration = Duration::from_secs(10);

#[derive(Default)]
pub(crate) struct Throttle {
    hits: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    /// Counts a request of `client`; `Err(wait)` when it is over `limit` in the window.
    /// Refused requests are not counted, so a client that waits gets through again.
    pub(crate) fn admit(&self, client: &str, limit: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let mut hits = self.hits.lock().unwrap_or_else(|e| e.into_inner());
        hits.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        let queue = hits.entry(client.to_owned()).or_default();
        while queue
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            queue.pop_front();
        }
        if queue.len() >= limit as usize {
            let oldest = queue.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        queue.push_back(now);
        Ok(())
    }
}
