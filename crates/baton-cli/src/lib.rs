//! The `baton` command's pure parts, as a library for its binary and the fuzz targets.

pub mod exit;
pub mod history;
pub mod progress;
pub mod term;

#[cfg(test)]
mod fixtures;
