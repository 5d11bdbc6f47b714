//! Fits on the cores: at most one per core at a time, a group's in the order asked for.
//!
//! A thread that ends a fit takes the next waiting one itself. Handing each over through
//! the async runtime instead (a permit released on the fit's thread, then a runtime
//! thread that must get a core to start the next fit while the other fits hold them)
//! left a core idle about a quarter of the time on 2 cores.
//!
//! A thread keeps to one group (a trial's fits) until it has none left to start, and
//! the other threads take other groups, helping with a taken one only when every group
//! is taken. The fits of one trial share its kernel: on one core its rows stay in that
//! core's caches, and the fit that computes it finishes before the next one asks. Taken
//! in plain order, two cores read each other's kernels and a trial's second fit
//! computed rows of its own while its first computed the kernel: a daemon on 2 cores
//! used 2.0-2.3 CPU seconds on 1,024 trials that one core ran in 1.7 (1.75-1.96 with
//! each thread keeping to its group).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// A job of a group that reports together ([`Cores::submit_all`]).
pub type GroupJob<T, E> = Box<dyn FnOnce() -> Result<T, E> + Send>;

/// Where a group's outcome goes: every result in order, or the first error.
type Outcome<T, E> = oneshot::Sender<Result<Vec<T>, E>>;

/// What the jobs of a group share: their results so far, how many are still to
/// succeed, and where the group's outcome goes (taken by whoever sends it).
struct Group<T, E> {
    results: Mutex<Vec<Option<T>>>,
    left: AtomicUsize,
    done: Mutex<Option<Outcome<T, E>>>,
}

impl<T, E> Group<T, E> {
    fn send(&self, outcome: Result<Vec<T>, E>) {
        if let Some(done) = lock(&self.done).take() {
            let _ = done.send(outcome);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Cores {
    state: Mutex<Queue<Job>>,
    max: usize,
}

struct Queue<J> {
    /// Groups with jobs not yet started, oldest first; a group leaves with its last.
    groups: VecDeque<Waiting<J>>,
    next_id: u64,
    running: usize,
}

struct Waiting<J> {
    id: u64,
    jobs: VecDeque<J>,
    /// Whether a thread keeps to this group.
    taken: bool,
}

impl<J> Queue<J> {
    fn new() -> Queue<J> {
        Queue {
            groups: VecDeque::new(),
            next_id: 0,
            running: 0,
        }
    }

    fn push_group(&mut self, jobs: Vec<J>) {
        if jobs.is_empty() {
            return;
        }
        self.groups.push_back(Waiting {
            id: self.next_id,
            jobs: jobs.into(),
            taken: false,
        });
        self.next_id += 1;
    }

    /// The next job for a thread keeping to group `mine`: that group's, else the first
    /// of the oldest group no thread has taken (which it then keeps to), else the first
    /// of the oldest group.
    fn next(&mut self, mine: &mut Option<u64>) -> Option<J> {
        let own = mine.and_then(|id| self.groups.iter().position(|g| g.id == id));
        let k = own
            .or_else(|| {
                let k = self.groups.iter().position(|g| !g.taken)?;
                self.groups[k].taken = true;
                *mine = Some(self.groups[k].id);
                Some(k)
            })
            .or((!self.groups.is_empty()).then_some(0))?;
        let job = self.groups[k].jobs.pop_front();
        if self.groups[k].jobs.is_empty() {
            self.groups.remove(k);
        }
        job
    }
}

impl Cores {
    pub fn new(max: usize) -> Arc<Cores> {
        Arc::new(Cores {
            state: Mutex::new(Queue::new()),
            max: max.max(1),
        })
    }

    /// Runs `jobs`, one group, on blocking threads, at most one per core at a time: the
    /// group's jobs in order, groups taken in the order they came ([`Queue::next`]).
    /// Jobs must not panic (fits catch their own).
    fn submit_group(self: &Arc<Self>, jobs: Vec<Job>) {
        let mut queue = lock(&self.state);
        let threads = self.max.saturating_sub(queue.running).min(jobs.len());
        queue.running += threads;
        queue.push_group(jobs);
        drop(queue);
        for _ in 0..threads {
            let cores = self.clone();
            // A blocking task (not a thread of our own), so that paused-time tests
            // see the runtime busy while a fit runs.
            tokio::task::spawn_blocking(move || cores.drain());
        }
    }

    /// Submits `jobs` as one group: the receiver gets their results in order once all
    /// have succeeded, or the first error as soon as a job fails. Whoever awaits the
    /// group is woken once, not once per job: a wake-up per fit, each a context switch
    /// and on a busy machine an interrupt on another core, was most of what two cores
    /// spent beyond one on the same trials.
    pub fn submit_all<T, E>(
        self: &Arc<Self>,
        jobs: Vec<GroupJob<T, E>>,
    ) -> oneshot::Receiver<Result<Vec<T>, E>>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let group = Arc::new(Group {
            results: Mutex::new(jobs.iter().map(|_| None).collect()),
            left: AtomicUsize::new(jobs.len()),
            done: Mutex::new(Some(tx)),
        });
        if jobs.is_empty() {
            group.send(Ok(Vec::new()));
        }
        let jobs = jobs.into_iter().enumerate().map(|(k, job)| -> Job {
            let group = group.clone();
            Box::new(move || match job() {
                Ok(value) => {
                    lock(&group.results)[k] = Some(value);
                    // The last to succeed reports for all.
                    if group.left.fetch_sub(1, Ordering::AcqRel) == 1 {
                        let results = std::mem::take(&mut *lock(&group.results));
                        group.send(Ok(results.into_iter().flatten().collect()));
                    }
                }
                Err(e) => group.send(Err(e)),
            })
        });
        self.submit_group(jobs.collect());
        rx
    }

    /// Runs queued jobs until none is left. Meanwhile the thread keeps each fit's kernel
    /// row storage for the next, however large; it is let go when the queue runs dry.
    fn drain(&self) {
        let _rows = svr_exact::KeepRows::new();
        let mut mine = None;
        loop {
            let job = {
                let mut queue = lock(&self.state);
                match queue.next(&mut mine) {
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
            cores.submit_group(vec![Box::new(move || {
                order.lock().unwrap().push(i);
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = tx.send(());
            })]);
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

    #[test]
    fn a_thread_keeps_to_its_group_and_helps_with_another_only_when_all_are_taken() {
        let mut queue = Queue::new();
        queue.push_group(vec!["a0", "a1", "a2"]);
        queue.push_group(vec!["b0", "b1"]);
        queue.push_group(vec!["c0"]);
        queue.push_group(Vec::new());
        let (mut one, mut two) = (None, None);
        assert_eq!(queue.next(&mut one), Some("a0"));
        assert_eq!(queue.next(&mut two), Some("b0"));
        assert_eq!(queue.next(&mut one), Some("a1"));
        assert_eq!(queue.next(&mut two), Some("b1"));
        // Its group started, the thread takes the next group no thread has taken,
        assert_eq!(queue.next(&mut two), Some("c0"));
        // then, every group taken, helps with the oldest.
        assert_eq!(queue.next(&mut two), Some("a2"));
        assert_eq!(queue.next(&mut one), None);
        assert!(queue.groups.is_empty());
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
    async fn a_group_reports_its_results_in_order_or_its_first_failure_at_once() {
        let cores = Cores::new(2);
        let jobs: Vec<GroupJob<usize, String>> = (0..6)
            .map(|k| -> GroupJob<usize, String> {
                Box::new(move || {
                    // Later jobs finish first.
                    std::thread::sleep(std::time::Duration::from_millis(12 - 2 * k as u64));
                    Ok(k * 10)
                })
            })
            .collect();
        assert_eq!(
            cores.submit_all(jobs).await.unwrap(),
            Ok(vec![0, 10, 20, 30, 40, 50])
        );
        assert_eq!(
            cores.submit_all::<usize, String>(Vec::new()).await.unwrap(),
            Ok(vec![])
        );

        // The failure is reported while the other job is still held back.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held_back: GroupJob<usize, String> = Box::new(move || {
            held.recv().unwrap();
            Ok(1)
        });
        let failing: GroupJob<usize, String> = Box::new(|| Err("broken".to_string()));
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            cores.submit_all(vec![held_back, failing]),
        )
        .await
        .expect("the failure reported before the other job ended");
        assert_eq!(outcome.unwrap(), Err("broken".to_string()));
        release.send(()).unwrap();
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
