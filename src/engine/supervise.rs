//! Supervised tasks: a task that panics is reported as `EngineEvent::TaskFailed` and, where
//! running it again is safe, restarted with backoff. Its panic never touches the terminal:
//! every task is polled inside `Contained`, which marks the thread as running background
//! work, and the cockpit's panic hook only restores the terminal for a panic of the screen's
//! own code (see `app::runtime`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};

use super::EngineEvent;

thread_local! {
    static IN_BACKGROUND_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Whether the code running now on this thread is a background task's.
pub fn in_background_task() -> bool {
    IN_BACKGROUND_TASK.with(Cell::get)
}

/// A future whose polls count as background work (see `in_background_task`).
pub struct Contained<F> {
    inner: Pin<Box<F>>,
}

impl<F: Future> Future for Contained<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        struct Reset(bool);
        impl Drop for Reset {
            fn drop(&mut self) {
                IN_BACKGROUND_TASK.with(|f| f.set(self.0));
            }
        }
        let _reset = Reset(IN_BACKGROUND_TASK.with(|f| f.replace(true)));
        self.inner.as_mut().poll(cx)
    }
}

/// `tokio::spawn`, polled as background work.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(Contained {
        inner: Box::pin(future),
    })
}

/// The text of a panic payload.
pub fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

const RESTART_BASE: Duration = Duration::from_secs(1);
const RESTART_CAP: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts its backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs `make()` as a task named `name` until `stop` turns true. A panic is reported;
/// with `restart` the task runs again after a backoff, otherwise supervision ends with the
/// failure's text. A task that returns on its own (its channel closed) is not restarted.
pub fn supervise(
    name: String,
    restart: bool,
    events: mpsc::Sender<EngineEvent>,
    mut stop: watch::Receiver<bool>,
    make: impl Fn() -> BoxFuture<'static, ()> + Send + 'static,
) -> tokio::task::JoinHandle<Option<String>> {
    spawn(async move {
        let mut failures = 0u32;
        loop {
            let started = Instant::now();
            let mut task = spawn(make());
            let ended = tokio::select! {
                ended = &mut task => ended,
                _ = stop.wait_for(|s| *s) => {
                    task.abort();
                    return None;
                }
            };
            let error = match ended {
                Ok(()) => return None,
                Err(e) if e.is_cancelled() => return None,
                Err(e) => panic_text(&*e.into_panic()),
            };
            if started.elapsed() >= HEALTHY_RUN {
                failures = 0;
            }
            let wait = crate::backoff::jittered(RESTART_BASE, RESTART_CAP, failures);
            failures = failures.saturating_add(1);
            tracing::error!(task = %name, %error, restarting = restart, "background task failed");
            let report = EngineEvent::TaskFailed {
                task: name.clone(),
                error: error.clone(),
                restart_in: restart.then_some(wait),
            };
            if events.send(report).await.is_err() || !restart {
                return Some(error);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    })
}
