//! A request's handler time for the `request_percentage` quota (KIP-124): the time spent
//! inside the polls of its handler's future, summed. Time the future waits between polls
//! (a long-polling Fetch, an fsync, the group coordinator) is not counted, as Kafka counts
//! the time its I/O threads spend on a request and not its time in purgatory.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Wraps a future; resolves to its output and the time spent inside its polls.
pub struct PollTimed<F> {
    inner: F,
    spent: Duration,
}

impl<F> PollTimed<F> {
    pub fn new(inner: F) -> PollTimed<F> {
        PollTimed {
            inner,
            spent: Duration::ZERO,
        }
    }
}

impl<F: Future + Unpin> Future for PollTimed<F> {
    type Output = (F::Output, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let started = Instant::now();
        let polled = Pin::new(&mut self.inner).poll(cx);
        self.spent += started.elapsed();
        match polled {
            Poll::Ready(output) => Poll::Ready((output, self.spent)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_between_polls_are_not_counted() {
        // Goal: a future that works 30 ms over two polls and sleeps 200 ms between them is
        // measured at its work, not its wall time.
        let work = Box::pin(async {
            std::thread::sleep(Duration::from_millis(15));
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::thread::sleep(Duration::from_millis(15));
            7
        });
        let started = Instant::now();
        let (out, spent) = PollTimed::new(work).await;
        assert_eq!(out, 7);
        assert!(started.elapsed() >= Duration::from_millis(230));
        assert!(spent >= Duration::from_millis(30), "spent {spent:?}");
        assert!(spent < Duration::from_millis(150), "spent {spent:?}");
    }
}
