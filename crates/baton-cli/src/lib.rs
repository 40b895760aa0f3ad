//! The `baton` command's pure parts, as a library for its binary and the fuzz targets.

pub mod progress;
