//! `svr-etl once --trials N` fits each trial while the one before is written, and
//! keeps the writes in order: a trial's fact object, then its hyper record, each trial's
//! writes done before the next trial's begin.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use svr_etl::commands::{once, OnceRequest};
use svr_etl::config::Settings;
use svr_etl::sink::{Connector, OpenSink, S3Settings, Sink, SinkSettings};
use svr_etl::trial::Clock;

use crate::helper::{Create, Hooked};

#[derive(Debug, Clone, PartialEq)]
enum Event {
    /// The pipeline read its clock: once when it opens, then once as each trial starts.
    Clock,
    Start(String),
    End(String),
}

type Log = Arc<Mutex<Vec<Event>>>;

struct Recorder(Log);

#[async_trait]
impl OpenSink for Recorder {
    async fn open(&self, sink: &SinkSettings, s3: &S3Settings) -> Arc<dyn Sink> {
        let log = self.0.clone();
        Arc::new(Hooked {
            inner: Connector.open(sink, s3).await,
            hook: Arc::new(move |create| {
                log.lock().unwrap().push(match create {
                    Create::Starting(key) => Event::Start(key.to_string()),
                    Create::Ended(key) => Event::End(key.to_string()),
                });
                None
            }),
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_trial_is_fitted_while_the_one_before_is_written_and_writes_stay_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::load(None)
        .unwrap()
        .with_sink_url(svr_etl::sink::SinkUrl::Local(dir.path().to_path_buf()));
    let log: Log = Arc::default();
    let clock_log = log.clone();
    let clock: Clock = Arc::new(move || {
        clock_log.lock().unwrap().push(Event::Clock);
        chrono::Utc::now()
    });
    let request = OnceRequest {
        params: None,
        seed: None,
        trials: 4,
    };
    let reports = once(settings, request, clock, &Recorder(log.clone()))
        .await
        .unwrap();
    assert_eq!(reports.len(), 4);
    assert!(reports.iter().all(|r| r.failure().is_none()));

    let events = log.lock().unwrap().clone();
    // The trials' writes, data set aside: fact then hyper record, each whole before
    // the next starts.
    let writes: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Start(k) | Event::End(k) if !k.starts_with("data/")))
        .collect();
    assert_eq!(writes.len(), 16, "{events:?}");
    for (trial, w) in writes.chunks(4).enumerate() {
        let name = |e: &Event| match e {
            Event::Start(k) | Event::End(k) => k.rsplit('/').next().unwrap().to_string(),
            Event::Clock => unreachable!(),
        };
        assert!(
            matches!((w[0], w[1], w[2], w[3]),
                (Event::Start(a), Event::End(b), Event::Start(c), Event::End(d))
                if a.starts_with("fact/") && b == a && c.starts_with("hyper/") && d == c),
            "trial {trial}: {w:?}"
        );
        assert_eq!(name(w[0]), name(w[2]), "trial {trial}: {w:?}");
    }
    // The clock is read when the pipeline opens and as each trial starts. The second
    // trial starts before the first one's hyper record is written.
    let first_hyper_end = events
        .iter()
        .position(|e| matches!(e, Event::End(k) if k.starts_with("hyper/")))
        .unwrap();
    let clocks_before = events[..first_hyper_end]
        .iter()
        .filter(|e| **e == Event::Clock)
        .count();
    assert_eq!(clocks_before, 3, "{events:?}");
}
