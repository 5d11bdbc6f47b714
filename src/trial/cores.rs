//! Fits on the cores: at most one per core at a time, in the order they were asked for.
//!
//! A thread that ends a fit takes the next waiting one itself. Handing each over through
//! the async runtime instead (a permit released on the fit's thread, then a runtime
//! thread that must get a core to start the next fit while the other fits hold them)
//! left a core idle about a quarter of the time on 2 cores.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

type Job = Box<dyn FnOnce() + Send>;

pub struct Cores {
    state: Mutex<Queue>,
    max: usize,
}

struct Queue {
    jobs: VecDeque<Job>,
    running: usize,
}

impl Cores {
    pub fn new(max: usize) -> Arc<Cores> {
        Arc::new(Cores {
            state: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: 0,
            }),
            max: max.max(1),
        })
    }

    /// Runs `job` on a blocking thread after the jobs queued before it, once fewer
    /// than one per core are running. `job` must not panic (fits catch their own).
    pub fn submit(self: &Arc<Self>, job: Job) {
        let mut queue = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        queue.jobs.push_back(job);
        if queue.running < self.max {
            queue.running += 1;
            drop(queue);
            let cores = self.clone();
            // A blocking task (not a thread of our own), so that paused-time tests
            // see the runtime busy while a fit runs.
            tokio::task::spawn_blocking(move || cores.drain());
        }
    }

    /// Runs queued jobs until none is left.
    fn drain(&self) {
        loop {
            let job = {
                let mut queue = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                match queue.jobs.pop_front() {
                    Some(job) => job,
                    None => {
                        queue.running -= 1;
                        return;
                    }
                }
            };
            job();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Runs `n` jobs of 2 ms on `cores`; the order they started in, and the most that
    /// ran at once.
    async fn run(cores: &Arc<Cores>, n: usize) -> (Vec<usize>, usize) {
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut done = Vec::new();
        for i in 0..n {
            let (running, peak, order) = (running.clone(), peak.clone(), order.clone());
            let (tx, rx) = tokio::sync::oneshot::channel();
            cores.submit(Box::new(move || {
                order.lock().unwrap().push(i);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(());
            }));
            done.push(rx);
        }
        for rx in done {
            rx.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        (order, peak.load(Ordering::SeqCst))
    }

    /// Waits until every thread of `cores` has left (each finds the queue empty just
    /// after its last job).
    async fn drained(cores: &Arc<Cores>) {
        for _ in 0..1000 {
            if cores.state.lock().unwrap().running == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("the queue's threads did not leave");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_start_in_the_order_asked_for() {
        let cores = Cores::new(1);
        let (order, peak) = run(&cores, 10).await;
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        assert_eq!(peak, 1);
        drained(&cores).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_one_job_per_core_runs_at_once() {
        let cores = Cores::new(2);
        let (order, peak) = run(&cores, 20).await;
        assert_eq!(order.len(), 20);
        assert!(peak <= 2, "{peak}");
        drained(&cores).await;
        // The threads come back for later jobs.
        assert_eq!(run(&cores, 4).await.0.len(), 4);
    }
}
