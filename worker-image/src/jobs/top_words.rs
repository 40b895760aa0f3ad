//! `top-words` (demo task 2): a word-frequency table in, a small JSON report out:
//! `{"distinctWords", "totalWords", "top": [{"word", "count"}, …]}`. Keeps only the
//! top `BATON_TOP_N` (default 10) in memory, however long the table.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{Job, JobIo, Lookup, job_error, setting};
use crate::settings::ConfigError;

const MAX_LINE_BYTES: u64 = 64 * 1024;

pub struct TopWords {
    n: usize,
}

impl Job for TopWords {
    const CONTENT_TYPE: &'static str = "application/json";

    fn create(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let n = setting(get, "BATON_TOP_N", 10, "1 to 10000", |n: &usize| {
            (1..=10_000).contains(n)
        })?;
        Ok(TopWords { n })
    }

    async fn run(&self, io: JobIo<'_>) -> io::Result<()> {
        let JobIo { input, output, .. } = io;
        let mut reader = BufReader::new(input);
        // Min-heap of the best `n`: (count, Reverse(word)) orders ties by word.
        let mut top: BinaryHeap<Reverse<(u64, Reverse<String>)>> = BinaryHeap::new();
        let (mut distinct, mut total) = (0u64, 0u64);
        let mut line = Vec::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                break;
            }
            number += 1;
            if line.len() as u64 > MAX_LINE_BYTES {
                return Err(job_error(format!(
                    "line {number} is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            let text = std::str::from_utf8(&line)
                .map_err(|_| job_error(format!("line {number} is not UTF-8")))?
                .trim_end_matches(['\n', '\r']);
            let Some((word, count)) = text.split_once('\t') else {
                return Err(job_error(format!(
                    "line {number} is not word<TAB>count: {text:.80?}"
                )));
            };
            let count: u64 = count.parse().map_err(|_| {
                job_error(format!("line {number}: count {count:.40?} is not a number"))
            })?;
            distinct += 1;
            total += count;
            top.push(Reverse((count, Reverse(word.to_string()))));
            if top.len() > self.n {
                top.pop();
            }
        }
        let mut best: Vec<_> = top
            .into_iter()
            .map(|Reverse((count, Reverse(word)))| (count, word))
            .collect();
        best.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let report = json!({
            "distinctWords": distinct,
            "totalWords": total,
            "top": best.iter().map(|(count, word)| json!({"word": word, "count": count})).collect::<Vec<_>>(),
        });
        output.write_all(report.to_string().as_bytes()).await?;
        output.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::testing::{no_env, run_job};

    #[tokio::test]
    async fn reports_top_words_and_totals() {
        let get = |n: &str| (n == "BATON_TOP_N").then(|| "2".to_string());
        let job = TopWords::create(&get).unwrap();
        let out = run_job(&job, b"the\t5\nb\t3\na\t3\nz\t1\n").await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["distinctWords"], 4);
        assert_eq!(v["totalWords"], 12);
        assert_eq!(
            v["top"],
            json!([{"word": "the", "count": 5}, {"word": "a", "count": 3}])
        );
    }

    #[tokio::test]
    async fn malformed_tables_fail_with_the_line() {
        let job = TopWords::create(&no_env).unwrap();
        let err = run_job(&job, b"a\t1\nno tab here\n").await.unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = run_job(&job, b"a\tmany\n").await.unwrap_err();
        assert!(err.to_string().contains("not a number"), "{err}");
    }

    #[tokio::test]
    async fn an_empty_table_is_an_empty_report() {
        let job = TopWords::create(&no_env).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&run_job(&job, b"").await.unwrap()).unwrap();
        assert_eq!(v, json!({"distinctWords": 0, "totalWords": 0, "top": []}));
    }
}
