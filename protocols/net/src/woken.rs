//! Waits that a session's select polls at every wake, cheap to poll. Why:
//! a session's task polls every branch of its select at every wake — each
//! message either way — and a `CancellationToken`'s wait takes two locks
//! per poll (the token's node, then its notify's waiters), a `Notify`'s
//! one, a socket read that is not ready its readiness and its waker's
//! lock. [`Woken`] polls the wait it wraps only once that wait woke it,
//! and otherwise looks at one flag.
//!
//! This module must never miss a wake: the wrapped wait stays registered
//! with a waker that raises the flag and wakes the task, and it is polled
//! again whenever it woke the task (which every correct future does
//! before it can make progress).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// `F`, polled only when it woke the task (and at its first poll).
pub struct Woken<F> {
    inner: Pin<Box<F>>,
    flag: Arc<Flag>,
    /// `flag` as the waker `inner` is polled with (made once).
    waker: Waker,
    /// `inner` has been polled (and so registered) once.
    registered: bool,
}

/// A wait for a session's end: completes when `token` is cancelled.
pub type ShutdownWait = Woken<WaitForCancellationFutureOwned>;

/// What the wrapped wait wakes: the flag, then the task.
#[derive(Default)]
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Woken<F> {
    /// `inner`, polled when it woke the task.
    pub fn new(inner: F) -> Self {
        let flag = Arc::<Flag>::default();
        Woken {
            inner: Box::pin(inner),
            waker: Waker::from(flag.clone()),
            flag,
            registered: false,
        }
    }
}

impl ShutdownWait {
    /// A wait for `token`'s cancellation.
    pub fn shutdown(token: &CancellationToken) -> Self {
        Woken::new(token.clone().cancelled_owned())
    }
}

impl<F: Future> Future for Woken<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Who to wake is current before the flag is read: a wake between
        // the two finds this task.
        self.flag.task.register(cx.waker());
        if self.registered && !self.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.registered = true;
        let this = &mut *self;
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

impl<F> std::fmt::Debug for Woken<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Woken")
            .field("registered", &self.registered)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Count(std::sync::atomic::AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(wait: &mut ShutdownWait, waker: &Waker) -> Poll<()> {
        Pin::new(wait).poll(&mut Context::from_waker(waker))
    }

    /// A wait that never completes nor wakes, and counts its polls.
    struct Polls(Arc<std::sync::atomic::AtomicUsize>);

    impl Future for Polls {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Poll::Pending
        }
    }

    #[test]
    fn the_wrapped_wait_is_polled_only_when_it_woke_the_task() {
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut wait = Woken::new(Polls(polls.clone()));
        let waker = Waker::from(Arc::new(Count::default()));
        for _ in 0..5 {
            assert!(Pin::new(&mut wait)
                .poll(&mut Context::from_waker(&waker))
                .is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1, "the first poll only");
    }

    #[test]
    fn a_cancellation_wakes_the_task_and_completes_the_wait() {
        let token = CancellationToken::new();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut wait = ShutdownWait::shutdown(&token);
        for _ in 0..3 {
            assert!(poll(&mut wait, &waker).is_pending());
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        token.cancel();
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the task is woken");
        assert!(poll(&mut wait, &waker).is_ready());
    }

    #[test]
    fn a_token_cancelled_before_the_first_poll_completes_it() {
        let token = CancellationToken::new();
        token.cancel();
        let waker = Waker::from(Arc::new(Count::default()));
        assert!(poll(&mut ShutdownWait::shutdown(&token), &waker).is_ready());
    }

    #[test]
    fn the_last_waker_given_is_the_one_woken() {
        let token = CancellationToken::new();
        let (first, second) = (Arc::new(Count::default()), Arc::new(Count::default()));
        let mut wait = ShutdownWait::shutdown(&token);
        assert!(poll(&mut wait, &Waker::from(first.clone())).is_pending());
        assert!(poll(&mut wait, &Waker::from(second.clone())).is_pending());
        token.cancel();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut wait, &Waker::from(second)).is_ready());
    }

    #[test]
    fn a_notify_before_or_after_the_first_poll_completes_a_wrapped_wait() {
        let notify = tokio::sync::Notify::new();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut wait = Woken::new(notify.notified());
        let poll = |w: &mut Woken<_>| Pin::new(w).poll(&mut Context::from_waker(&waker));
        assert!(poll(&mut wait).is_pending());
        assert!(poll(&mut wait).is_pending());
        notify.notify_one();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut wait).is_ready());
        // A permit stored before the wait exists.
        notify.notify_one();
        let mut wait = Woken::new(notify.notified());
        assert!(poll(&mut wait).is_ready());
    }

    #[test]
    fn a_parents_cancellation_reaches_a_childs_wait() {
        let parent = CancellationToken::new();
        let child = parent.child_token();
        let count = Arc::new(Count::default());
        let waker = Waker::from(count.clone());
        let mut wait = ShutdownWait::shutdown(&child);
        assert!(poll(&mut wait, &waker).is_pending());
        parent.cancel();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut wait, &waker).is_ready());
    }
}
