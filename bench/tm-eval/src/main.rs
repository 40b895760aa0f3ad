//! `tm-eval down s3://bucket/key` or `tm-eval up FILE s3://bucket/key`: one transfer
//! through aws-sdk-s3-transfer-manager, with a sha256 over the bytes in order (what
//! Baton must add on top), and a closing JSON line with bytes, sha256 and peak RSS.
//! Memory budget: `TM_MEMORY_MIB` (the crate's automatic sizing when unset).
//! The upload reads the file as a stream of unknown length, as a job's output is.

use aws_sdk_s3_transfer_manager::io::adapters::TokioIo;
use aws_sdk_s3_transfer_manager::io::{InputStream, SizeHint};
use aws_sdk_s3_transfer_manager::memory::{BufferPool, MemoryBudgetConfig, MemoryConfig};
use sha2::{Digest, Sha256};

fn split(uri: &str) -> (String, String) {
    let rest = uri.strip_prefix("s3://").expect("an s3:// URI");
    let (b, k) = rest.split_once('/').expect("s3://bucket/key");
    (b.into(), k.into())
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let sdk = aws_config::load_from_env().await;
    // Response checksums off (WhenRequired), as Baton reads (it checks its own
    // sha256): with them on, the crate realigns multipart objects with a
    // `partNumber=1` GET, which moto answers in a way it rejects (ObjectNotDiscoverable).
    let s3 = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(true)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    let mut config = aws_sdk_s3_transfer_manager::Config::builder().s3_config(s3);
    if let Some(mib) = std::env::var("TM_MEMORY_MIB").ok().and_then(|v| v.parse::<usize>().ok()) {
        let pool = BufferPool::builder()
            .memory_budget(MemoryBudgetConfig::Limit(mib << 20))
            .build()?;
        config = config.memory(MemoryConfig::Explicit(pool));
    }
    let tm = aws_sdk_s3_transfer_manager::Client::new(config.build());
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    match args.get(1).map(String::as_str) {
        Some("down") => {
            let (bucket, key) = split(&args[2]);
            let mut handle = tm.download().bucket(bucket).key(key).initiate()?;
            while let Some(chunk) = handle.body_mut().next().await {
                for segment in chunk?.data.into_segments() {
                    bytes += segment.len() as u64;
                    hasher.update(&segment);
                }
            }
            handle.join().await?;
        }
        Some("up") => {
            let (bucket, key) = split(&args[3]);
            let file = tokio::fs::File::open(&args[2]).await?;
            // Hash as the bytes go by, as Baton's store does for a job's output.
            let seen = std::sync::Arc::new(std::sync::Mutex::new((Sha256::new(), 0u64)));
            let reader = HashingReader { inner: file, seen: seen.clone() };
            let stream = InputStream::from_part_stream(TokioIo::new(reader, SizeHint::default()));
            tm.upload().bucket(bucket).key(key).body(stream).initiate()?.join().await?;
            let (h, n) = std::mem::take(&mut *seen.lock().unwrap());
            hasher = h;
            bytes = n;
        }
        _ => return Err("usage: tm-eval down s3://b/k | tm-eval up FILE s3://b/k".into()),
    }
    println!(
        "{{\"bytes\": {bytes}, \"sha256\": \"{}\", \"peak_rss_bytes\": {}}}",
        hex::encode(hasher.finalize()),
        peak_rss()
    );
    Ok(())
}

/// Hashes what passes through (shared with `main`, which reads it after the join).
struct HashingReader<R> {
    inner: R,
    seen: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = polled {
            let fresh = &buf.filled()[before..];
            let mut seen = self.seen.lock().unwrap();
            seen.0.update(fresh);
            seen.1 += fresh.len() as u64;
        }
        polled
    }
}
