//! Benchmark: forwarding a 1 MB and a 200 MB quitus from S3 (moto) to Intent (the
//! simulator) through the real document forwarder, printing the process's peak memory
//! (VmHWM, reset between runs) and the wall time of each. Memory must stay flat in the
//! document's size: the PDF is streamed, never buffered.
//!
//! Needs the emulators (`infra/scripts/emulators.sh start`, then
//! `eval "$(infra/scripts/emulators.sh env)"`), then:
//! `cargo run --release -p system-tests --bin forward-memory-bench [SIZE_MB ...]`

use document_forwarder::handle;
use oncall_domain::documents::DocumentPolicy;
use oncall_domain::intent_examples::SEED_OPENING;
use std::io::Write;
use std::time::Instant;
use system_tests::*;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

/// Resets the peak resident set size (Linux: writing 5 to clear_refs).
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

/// Writes a PDF of `size` bytes to a temporary file, chunk by chunk.
fn pdf_file(size: usize) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("quitus-bench-{size}.pdf"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let header = pdf_bytes(64 * 1024);
    let mut written = 0;
    while written < size {
        let chunk = &header[..header.len().min(size - written)];
        file.write_all(chunk).unwrap();
        written += chunk.len();
    }
    file.flush().unwrap();
    path
}

#[tokio::main]
async fn main() {
    let sizes_mb: Vec<usize> = {
        let args: Vec<usize> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if args.is_empty() { vec![1, 200] } else { args }
    };
    let bridge = Bridge::start().await;
    let s3 = s3_client(&bridge.sdk);
    let bucket = create_versioned_bucket(&s3).await;
    let forwarder = bridge.forwarder(DocumentPolicy {
        max_bytes: 1024 * 1024 * 1024,
        ..DocumentPolicy::default()
    });
    assert_eq!(bridge.post(SEED_OPENING).await.status, 201);

    // Every object is uploaded first, so each forwarding starts from the same process (the
    // upload's own buffers are not counted against one size and not the other).
    let mut objects = Vec::new();
    for size_mb in sizes_mb {
        let size = size_mb * 1024 * 1024;
        let path = pdf_file(size);
        let key = format!("operator-quitus/contract1/INTER-0500/bench-{size_mb}mb.pdf");
        let output = s3
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(
                aws_sdk_s3::primitives::ByteStream::from_path(&path)
                    .await
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        std::fs::remove_file(&path).ok();
        let object = StoredObject {
            bucket: bucket.clone(),
            key,
            size,
            etag: output
                .e_tag()
                .unwrap_or_default()
                .trim_matches('"')
                .to_string(),
            version: output.version_id().unwrap_or_default().to_string(),
        };
        objects.push((size_mb, size, object));
    }

    println!("size_mb,peak_rss_mib,rss_before_mib,wall_s,throughput_mib_s");
    for (size_mb, size, object) in objects {
        reset_peak();
        let before = status_kib("VmRSS:");
        let started = Instant::now();
        let summary = handle(&forwarder, s3_event(&[&object])).await.unwrap();
        let wall = started.elapsed().as_secs_f64();
        let peak = status_kib("VmHWM:");
        assert_eq!(summary.published, 1);
        let received = bridge.simulator.received_documents();
        assert_eq!(received.last().unwrap().file_size, size as u64);
        println!(
            "{size_mb},{:.1},{:.1},{wall:.2},{:.1}",
            peak as f64 / 1024.0,
            before as f64 / 1024.0,
            size_mb as f64 / wall
        );
    }
}
