//! `word-count` (demo task 1): text in, a word-frequency table out.
//!
//! Output: one `word<TAB>count` line per distinct word, most frequent first (ties
//! by word). Words are runs of ASCII letters and digits and non-ASCII characters,
//! lowercased. Memory grows with the vocabulary, not with the input, and the
//! vocabulary is capped (`BATON_MAX_DISTINCT_WORDS`, default 5,000,000).

use std::collections::HashMap;
use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};

use super::{Job, JobIo, Lookup, job_error, setting};
use crate::settings::ConfigError;

/// Longer words are cut to this many bytes.
const MAX_WORD_BYTES: usize = 64;
const READ_BUFFER: usize = 64 * 1024;

pub struct WordCount {
    max_distinct: usize,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

struct Counter {
    counts: HashMap<String, u64>,
    max_distinct: usize,
}

impl Counter {
    fn add(&mut self, word: &[u8]) -> io::Result<()> {
        let text = if word.is_ascii() {
            // Lowercased while collected.
            String::from_utf8_lossy(word)
        } else {
            String::from_utf8_lossy(word).to_lowercase().into()
        };
        if let Some(count) = self.counts.get_mut(text.as_ref()) {
            *count += 1;
            return Ok(());
        }
        if self.counts.len() >= self.max_distinct {
            return Err(job_error(format!(
                "more than {} distinct words (BATON_MAX_DISTINCT_WORDS)",
                self.max_distinct
            )));
        }
        self.counts.insert(text.into_owned(), 1);
        Ok(())
    }
}

impl Job for WordCount {
    const CONTENT_TYPE: &'static str = "text/tab-separated-values; charset=utf-8";

    fn create(get: Lookup<'_>) -> Result<Self, ConfigError> {
        let max_distinct = setting(
            get,
            "BATON_MAX_DISTINCT_WORDS",
            5_000_000,
            "a positive whole number",
            |n: &usize| *n > 0,
        )?;
        Ok(WordCount { max_distinct })
    }

    async fn run(&self, io: JobIo<'_>) -> io::Result<()> {
        let JobIo { input, output, .. } = io;
        let mut counter = Counter {
            counts: HashMap::new(),
            max_distinct: self.max_distinct,
        };
        let mut buf = vec![0u8; READ_BUFFER];
        let mut word = Vec::with_capacity(MAX_WORD_BYTES);
        loop {
            let n = input.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if is_word_byte(b) {
                    if word.len() < MAX_WORD_BYTES {
                        word.push(b.to_ascii_lowercase());
                    }
                } else if !word.is_empty() {
                    counter.add(&word)?;
                    word.clear();
                }
            }
        }
        if !word.is_empty() {
            counter.add(&word)?;
        }
        let mut table: Vec<(&String, &u64)> = counter.counts.iter().collect();
        table.sort_unstable_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let mut out = BufWriter::with_capacity(READ_BUFFER, output);
        for (word, count) in table {
            out.write_all(format!("{word}\t{count}\n").as_bytes())
                .await?;
        }
        out.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::testing::{no_env, run_job};

    #[tokio::test]
    async fn counts_words_most_frequent_first() {
        let job = WordCount::create(&no_env).unwrap();
        let out = run_job(&job, b"The cat, the HAT; the end.\nCat!")
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "the\t3\ncat\t2\nend\t1\nhat\t1\n"
        );
    }

    #[tokio::test]
    async fn words_across_read_boundaries_and_unicode() {
        let job = WordCount::create(&no_env).unwrap();
        let mut text = "x ".repeat(READ_BUFFER / 2 - 1);
        text.push_str("bound ary Ünïcode ünïcode");
        let out = String::from_utf8(run_job(&job, text.as_bytes()).await.unwrap()).unwrap();
        assert!(
            out.contains("ünïcode\t2\n"),
            "{}",
            &out[..200.min(out.len())]
        );
        assert!(out.contains("bound\t1\n") && out.contains("ary\t1\n"));
    }

    #[tokio::test]
    async fn the_vocabulary_is_capped() {
        let get = |n: &str| (n == "BATON_MAX_DISTINCT_WORDS").then(|| "2".to_string());
        let job = WordCount::create(&get).unwrap();
        let err = run_job(&job, b"a b c").await.unwrap_err();
        assert!(err.to_string().contains("more than 2 distinct words"));
    }
}
