//! The local sink against a temporary directory.

use super::*;

fn sink() -> (tempfile::TempDir, LocalSink) {
    let dir = tempfile::tempdir().unwrap();
    let sink = LocalSink::new(dir.path().to_path_buf());
    (dir, sink)
}

fn body(text: &'static str) -> BodyWriter {
    Arc::new(move |w: &mut dyn Write| w.write_all(text.as_bytes()))
}

fn t() -> Deadline {
    Deadline::after(std::time::Duration::from_secs(5))
}

#[tokio::test]
async fn a_replaced_object_holds_the_new_bytes_and_leaves_no_partial_file() {
    let (dir, sink) = sink();
    for text in ["first, longer version", "second"] {
        let written = sink
            .replace("report/latest.html", text.into(), "text/html", &t())
            .await
            .unwrap();
        assert_eq!(written.bytes, text.len() as u64);
        let got = sink.get("report/latest.html").await.unwrap().unwrap();
        assert_eq!(got, text.as_bytes());
    }
    let names: Vec<_> = fs::read_dir(dir.path().join("report"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["latest.html"]);
}

#[tokio::test]
async fn creates_once_and_reads_back() {
    let (_dir, sink) = sink();
    let w = sink.create("a/b.json", body("x\n"), &t()).await.unwrap();
    assert_eq!(w.bytes, 2);
    assert!(w.location.starts_with("file:///"));
    let err = sink
        .create("a/b.json", body("y\n"), &t())
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Exists { .. }), "{err}");
    // The same bytes again: a retry that finds its own write.
    let again = sink.create("a/b.json", body("x\n"), &t()).await.unwrap();
    assert_eq!(again, w);
    assert_eq!(sink.get("a/b.json").await.unwrap().unwrap(), b"x\n");
    assert_eq!(sink.get("a/c.json").await.unwrap(), None);
    assert_eq!(sink.list("a/").await.unwrap(), ["a/b.json"]);
}

#[tokio::test]
async fn stale_partial_files_are_removed_and_fresh_ones_kept() {
    let (dir, sink) = sink();
    let sub = dir.path().join("fact/dt=2026-01-01");
    fs::create_dir_all(&sub).unwrap();
    let stale = sub.join(".1.json.partial-1-00000000");
    fs::write(&stale, "half").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let fresh = sub.join(".2.json.partial-1-00000001");
    fs::write(&fresh, "in progress").unwrap();
    fs::write(sub.join("3.json"), "whole").unwrap();
    assert_eq!(sink.clean_stale(Duration::from_secs(60)).await.unwrap(), 1);
    assert!(!stale.exists() && fresh.exists() && sub.join("3.json").exists());
}

#[tokio::test]
async fn a_failing_body_leaves_nothing() {
    let (dir, sink) = sink();
    let failing: BodyWriter = Arc::new(|w: &mut dyn Write| {
        w.write_all(b"half")?;
        Err(io::Error::other("serializer broke"))
    });
    let err = sink.create("a/b.json", failing, &t()).await.unwrap_err();
    assert!(err.to_string().contains("a/b.json"), "{err}");
    assert!(err.to_string().contains("serializer broke"), "{err}");
    let left: Vec<_> = fs::read_dir(dir.path().join("a")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_panicking_body_is_an_error_naming_the_object_and_nothing_is_visible() {
    let (_dir, sink) = sink();
    let panicking: BodyWriter = Arc::new(|_: &mut dyn Write| panic!("serializer panicked"));
    // Once on the asking task, once, after a slow write, on a blocking thread.
    for (key, slow_first) in [("a/b.json", false), ("a/c.json", true)] {
        if slow_first {
            sink.create("a/slow.json", sleeping(Duration::from_millis(50)), &t())
                .await
                .unwrap();
            assert!(!sink.times.quick());
        }
        let err = sink.create(key, panicking.clone(), &t()).await.unwrap_err();
        assert!(err.to_string().contains(key), "{err}");
        assert!(err.to_string().contains("serializer panicked"), "{err}");
        assert_eq!(sink.get(key).await.unwrap(), None);
    }
    assert_eq!(sink.list("a/").await.unwrap(), ["a/slow.json"]);
}

/// A body that takes `pause` to write.
fn sleeping(pause: Duration) -> BodyWriter {
    Arc::new(move |w: &mut dyn Write| {
        std::thread::sleep(pause);
        w.write_all(b"{}\n")
    })
}

#[tokio::test]
async fn quick_writes_run_on_the_asking_task_and_a_slow_one_sends_the_next_to_another_thread() {
    let (_dir, sink) = sink();
    let here = std::thread::current().id();
    let thread_of = |key: &'static str, pause: Duration| {
        let sink = sink.clone();
        async move {
            let seen = Arc::new(std::sync::Mutex::new(None));
            let inner = sleeping(pause);
            let record = seen.clone();
            let body: BodyWriter = Arc::new(move |w: &mut dyn Write| {
                *record.lock().unwrap() = Some(std::thread::current().id());
                inner(w)
            });
            sink.create(key, body, &t()).await.unwrap();
            let thread = seen.lock().unwrap().expect("the body was written");
            thread
        }
    };
    assert_eq!(thread_of("a/1.json", Duration::ZERO).await, here);
    assert_eq!(thread_of("a/2.json", Duration::from_millis(50)).await, here);
    assert_ne!(thread_of("a/3.json", Duration::ZERO).await, here);
}
