//! Peak memory of streaming a large fact object to S3, against buffering it whole.
//!
//!     cargo bench --bench stream_memory
//!
//! Starts moto's S3 server on loopback, then writes the same 200 MiB of fact records
//! twice, each in a child process of its own so the peaks do not mix: once through the
//! S3 sink as configured (8 MiB parts, multipart), once through the same sink with one
//! part as large as the object (everything buffered, one PutObject), the way an upload
//! of a finished file or buffer works. Prints both peaks (VmHWM) and their ratio.
//! Under `cargo test` it runs the streaming path once on 24 MiB as a smoke test.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use svr_etl::model::id::HyperIdGenerator;
use svr_etl::model::records::write_facts;
use svr_etl::sink::{Deadline, S3Settings, S3Sink, Sink};

const MIB: usize = 1024 * 1024;

/// Child: writes `total` bytes of fact lines with `part` sized parts; prints peak MiB.
fn child(endpoint: &str, bucket: &str, total: usize, part: usize) {
    std::env::set_var("AWS_ACCESS_KEY_ID", "bench");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "bench");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let settings = S3Settings::new("us-east-1", endpoint, true).unwrap();
        let sink = S3Sink::new(bucket.into(), "bench".into(), &settings, part).await;
        let id = HyperIdGenerator::new().next(chrono::Utc::now());
        let body = std::sync::Arc::new(move |w: &mut dyn Write| {
            // Fact records in batches, as a trial with millions of points would write them.
            let ids: Vec<i64> = (0..10_000).collect();
            let preds: Vec<f64> = ids.iter().map(|i| *i as f64 * 0.731).collect();
            let mut counter = Counter { inner: w, n: 0 };
            while counter.n < total {
                write_facts(id, &ids, &preds, &mut counter)?;
            }
            Ok(())
        });
        let key = format!("fact-{part}.json");
        let started = Instant::now();
        let written = sink
            .create(&key, body, &Deadline::after(Duration::from_secs(1800)))
            .await
            .unwrap();
        println!(
            "{} {:.1} {:.2}",
            written.bytes,
            support::peak_rss_mib(),
            started.elapsed().as_secs_f64()
        );
    });
}

struct Counter<'a> {
    inner: &'a mut dyn Write,
    n: usize,
}

impl Write for Counter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn run_child(endpoint: &str, bucket: &str, total: usize, part: usize) -> (u64, f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--child",
            endpoint,
            bucket,
            &total.to_string(),
            &part.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut f = text.split_whitespace();
    (
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
        f.next().unwrap().parse().unwrap(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let n = |i: usize| args[i].parse().unwrap();
        child(&args[2], &args[3], n(4), n(5));
        return;
    }
    let full = args.iter().any(|a| a == "--bench");

    let (mut moto, endpoint) = support::start_moto();

    if full {
        let total = 200 * MIB;
        let (bytes, stream, secs) = run_child(&endpoint, "bench", total, 8 * MIB);
        let (_, buffered, bsecs) = run_child(&endpoint, "bench", total, 512 * MIB);
        println!("fact object: {:.0} MiB", bytes as f64 / MIB as f64);
        println!("streaming, 8 MiB parts: peak RSS {stream:.1} MiB ({secs:.1} s)");
        println!("buffered, one PutObject: peak RSS {buffered:.1} MiB ({bsecs:.1} s)");
        println!("streaming / buffered peak memory: {:.3}", stream / buffered);
    } else {
        let (bytes, peak, _) = run_child(&endpoint, "bench", 24 * MIB, 5 * MIB);
        assert!(bytes >= 24 * MIB as u64);
        println!("smoke: streamed {bytes} bytes, peak RSS {peak:.1} MiB");
    }
    let _ = moto.kill();
    let _ = moto.wait();
}
